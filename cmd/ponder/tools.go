package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/core/evaluator"
	"github.com/ponder-rlm/ponder/internal/text"
	"github.com/ponder-rlm/ponder/tools"
	"github.com/ponder-rlm/ponder/tools/calc"
	"github.com/ponder-rlm/ponder/tools/mcpclient"
	"github.com/ponder-rlm/ponder/tools/sandbox"
)

func init() {
	extraCommands = append(extraCommands, newToolsCmd)
	appHooks = append(appHooks, toolsHook)
}

// toolsState is what the tools hook built for one app, for `ponder tools`.
type toolsState struct {
	bridge *mcpclient.Bridge
}

var toolStates sync.Map // *app → *toolsState

// toolsHook builds the tool registry from the configuration: calc, python
// (the bubblewrap sandbox) and the tools of the configured MCP servers
// (connected on first use). It registers into the registry another hook
// made (retrieve, plugin tools) and wires the sandbox into the unittest
// verifier.
func toolsHook(ctx context.Context, a *app) error {
	cfg := a.cfg.Tools
	if err := mcpclient.Validate(cfg.MCPServers); err != nil {
		return err
	}
	disabled := map[string]bool{}
	for _, n := range cfg.Disabled {
		switch n = strings.TrimSpace(n); n {
		case "python", "calc":
			disabled[n] = true
		case "":
		default:
			return fmt.Errorf("tools.disabled (PONDER_TOOLS_DISABLED): unknown built-in tool %q (built-ins: python, calc)", n)
		}
	}
	var reg *tools.Registry
	switch tb := a.tools.(type) {
	case nil:
		reg = tools.NewRegistry(&tools.Options{Timeout: cfg.Timeout, MaxOutput: cfg.MaxOutputBytes, Logger: a.log})
	case *tools.Registry:
		reg = tb
		reg.SetDefaults(cfg.Timeout, cfg.MaxOutputBytes)
	default:
		// Another toolbox: ours goes in front of it.
		reg = tools.NewRegistry(&tools.Options{Timeout: cfg.Timeout, MaxOutput: cfg.MaxOutputBytes, Logger: a.log})
		reg.AddProvider(tb, nil)
	}
	a.tools = reg
	if !disabled["calc"] {
		if err := reg.Register(calc.New(nil), nil); err != nil {
			return err
		}
	}
	if !disabled["python"] {
		sb, err := sandbox.New(sandboxOptions(cfg.Sandbox, a))
		if err != nil {
			a.log.Warn().Err(err).Msg("the python tool is unavailable")
			if err := reg.Register(unavailable{name: "python", err: err}, nil); err != nil {
				return err
			}
		} else {
			a.closers = append(a.closers, sb.Close)
			// The sandbox stops a program at its own timeout; the registry's
			// only guards against a sandbox that does not.
			if err := reg.Register(sb.Tool(), &tools.ToolOptions{Timeout: sb.Options().Timeout + 10*time.Second,
				MaxOutput: max(cfg.MaxOutputBytes, sb.Options().MaxOutput*2+256)}); err != nil {
				return err
			}
			a.reg.ReplaceEvaluator(evaluator.UnitTestSpec(sandbox.UnitTestRunner{Sandbox: sb}))
		}
	}
	st := &toolsState{}
	if len(cfg.MCPServers) > 0 {
		b, err := mcpclient.New(cfg.MCPServers, &mcpclient.Options{Logger: a.log, ClientVersion: version,
			MaxMessageBytes: cfg.MCPMaxMessageBytes})
		if err != nil {
			return err
		}
		reg.AddProvider(b, nil)
		a.closers = append(a.closers, b.Close)
		st.bridge = b
	}
	toolStates.Store(a, st)
	a.closers = append(a.closers, func() error { toolStates.Delete(a); return nil })
	return nil
}

func sandboxOptions(c config.Sandbox, a *app) *sandbox.Options {
	return &sandbox.Options{
		Python: c.Python, Bwrap: c.Bubblewrap, Timeout: c.Timeout, CPUSeconds: c.CPUSeconds,
		MemoryBytes: int64(c.MemoryMB) << 20, MaxProcs: c.MaxProcs, MaxOutput: c.OutputBytes,
		TmpBytes: int64(c.TmpMB) << 20, OpenFiles: c.OpenFiles, ReadOnlyPaths: c.ReadOnlyPaths,
		MaxParallel: c.MaxParallel, MaxSessions: c.MaxSessions, Logger: a.log,
	}
}

// unavailable stands in for a built-in tool that could not be set up, so
// that naming it gives the reason instead of "unknown tool".
type unavailable struct {
	name string
	err  error
}

func (u unavailable) Spec() core.ToolSpec {
	return core.ToolSpec{Name: u.name, Description: "UNAVAILABLE: " + u.err.Error(), Schema: json.RawMessage(sandbox.ToolSchema)}
}

func (u unavailable) Call(context.Context, json.RawMessage) (core.ToolResult, error) {
	return core.ToolResult{}, u.err
}

func newToolsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tools",
		Short: "List and call the tools searches may use (python sandbox, calc, MCP servers' tools)",
		Long: "Tools are operators inside reasoning: `ponder solve --tools python,calc` lets a search call them, and\n" +
			"the pal and react strategies are built on them. Built-in: python (Python 3 in a bubblewrap sandbox)\n" +
			"and calc (exact rational arithmetic). MCP servers listed in tools.mcp_servers add theirs as\n" +
			"SERVER.TOOL. See docs/tools.md.",
	}
	cmd.AddCommand(newToolsListCmd(), newToolsCallCmd())
	return cmd
}

func newToolsListCmd() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the tools with their descriptions (and, with --json, their argument schemas)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := toolsApp(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			if st, ok := toolStates.Load(a); ok && st.(*toolsState).bridge != nil {
				// Listing asks the bridge for its tools again below: a
				// server that failed here is not started a second time.
				st.(*toolsState).bridge.SingleAttempt()
				if err := st.(*toolsState).bridge.Connect(cmd.Context()); err != nil {
					for _, e := range splitJoined(err) {
						fmt.Fprintln(cmd.ErrOrStderr(), "warning: "+text.Terminal(oneLine(e)))
					}
				}
			}
			specs := a.tools.Specs()
			sort.Slice(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
			w := cmd.OutOrStdout()
			if jsonOut {
				if specs == nil {
					specs = []core.ToolSpec{}
				}
				return printJSON(w, specs)
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tDESCRIPTION")
			for _, s := range specs {
				// Names and descriptions come from MCP servers and plugins.
				fmt.Fprintf(tw, "%s\t%s\n", text.Terminal(s.Name), shorten(text.OneLine(text.Terminal(s.Description)), 100))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the specs as JSON (name, description, schema)")
	return cmd
}

func newToolsCallCmd() *cobra.Command {
	var (
		args    string
		jsonOut bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "call NAME [--args JSON | JSON]",
		Short: "Call a tool once and print what it returned",
		Example: `  ponder tools call python --args '{"code":"print(2**100)"}'
  ponder tools call python '{"code":"print(2**100)"}'
  ponder tools call calc --args '{"expression":"comb(52, 5) / 4"}'
  ponder tools call everything.echo --args '{"message":"hi"}' --json`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, pos []string) error {
			// The arguments may follow the name, as people first type
			// them: a JSON object there is --args.
			if len(pos) == 2 {
				switch {
				case cmd.Flags().Changed("args"):
					return usageError("arguments given twice: after the tool's name and in --args")
				case !strings.HasPrefix(strings.TrimSpace(pos[1]), "{"):
					return usageError("one tool at a time: %q is not a JSON object of arguments (give them as '{...}' or with --args)", shorten(pos[1], 40))
				}
				args = pos[1]
			}
			argText, err := readArgs(cmd, args)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("timeout") && timeout <= 0 {
				return usageError("--timeout must be positive, got %s", timeout)
			}
			a, err := toolsApp(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			name := pos[0]
			tool, ok := a.tools.Tool(name)
			if !ok {
				var names []string
				for _, s := range a.tools.Specs() {
					names = append(names, s.Name)
				}
				return usageError("unknown tool %q (known: %s; see `ponder tools list`)", name, strings.Join(names, ", "))
			}
			raw, err := parseArgs(argText, tool.Spec())
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			res, err := tool.Call(ctx, raw)
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) && timeout > 0 {
					return fmt.Errorf("tool %s: no result within --timeout %s", name, timeout)
				}
				return fmt.Errorf("tool %s: %w", name, err)
			}
			w := cmd.OutOrStdout()
			if jsonOut {
				if err := printJSON(w, res); err != nil {
					return err
				}
			} else {
				// A program's output is shown, not obeyed: its escape
				// sequences go (--json keeps them).
				out := text.Terminal(res.Text)
				io.WriteString(w, out)
				if out != "" && !strings.HasSuffix(out, "\n") {
					io.WriteString(w, "\n")
				}
			}
			if res.IsError {
				// Not "the tool reported an error": the result may be
				// the host's (arguments that do not meet the schema, a
				// plugin that did not answer in time); its text says.
				return exitError{code: 1, err: fmt.Errorf("tool %s: the call failed", name)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&args, "args", "{}", "arguments as a JSON object; @FILE reads them from a file, - from stdin")
	f.BoolVar(&jsonOut, "json", false, "print the whole result as JSON (text, structured, is_error)")
	f.DurationVar(&timeout, "timeout", 0, "give up after this long (the tool's own limits apply too)")
	return cmd
}

// readArgs reads --args: the text itself, @FILE or - (stdin). Whether it
// is a JSON object is checked by parseArgs, once the tool is known.
func readArgs(cmd *cobra.Command, s string) ([]byte, error) {
	switch {
	case s == "-":
		b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 16<<20))
		if err != nil {
			return nil, fmt.Errorf("read --args from stdin: %w", err)
		}
		return b, nil
	case strings.HasPrefix(s, "@"):
		b, err := os.ReadFile(s[1:])
		if err != nil {
			return nil, usageError("--args %s: %v", s, err)
		}
		return b, nil
	}
	return []byte(s), nil
}

// parseArgs checks that b is a JSON object. Its error shows an object of
// the tool's required arguments (from its schema), not python's for every
// tool.
func parseArgs(b []byte, spec core.ToolSpec) (json.RawMessage, error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, usageError("--args is not JSON (%v): pass an object such as '%s'", err, exampleArgs(spec.Schema))
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, usageError("--args must be a JSON object such as '%s', got %s", exampleArgs(spec.Schema), shorten(string(b), 40))
	}
	return json.RawMessage(b), nil
}

// exampleArgs is a JSON object of a schema's required properties, each
// with a placeholder of its type: {"expression":"..."} for calc.
func exampleArgs(schema json.RawMessage) string {
	var sch struct {
		Properties map[string]struct {
			Type any `json:"type"`
		} `json:"properties"`
		Required []string `json:"required"`
	}
	_ = json.Unmarshal(schema, &sch) // a schema we cannot read gives {}
	var b strings.Builder
	b.WriteByte('{')
	for i, name := range sch.Required {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(name)
		b.Write(k)
		b.WriteByte(':')
		typ, _ := sch.Properties[name].Type.(string)
		switch typ {
		case "number", "integer":
			b.WriteString("1")
		case "boolean":
			b.WriteString("true")
		case "array":
			b.WriteString("[]")
		case "object":
			b.WriteString("{}")
		default:
			b.WriteString(`"..."`)
		}
	}
	b.WriteByte('}')
	// Names come from MCP servers and plugins.
	return text.Terminal(b.String())
}

// toolsApp wires the app for the tools commands (no LLM needed). They
// only read documents (retrieve), so the store is opened read-only with a
// shared lock, as solve and eval open it: `tools call retrieve` runs
// beside a search, a solve or an eval instead of waiting for them.
func toolsApp(cmd *cobra.Command) (*app, error) {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return nil, err
	}
	return newAppWith(cmd.Context(), cfg, newLogger(cfg.Log, cmd.ErrOrStderr()), appOptions{readOnlyStore: true})
}

func splitJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// shorten clips s to fit n columns, the mark included.
func shorten(s string, n int) string { return text.Clip(s, n-1) }
