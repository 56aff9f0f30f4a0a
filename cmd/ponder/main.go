// Command ponder is Ponder's one binary: the reasoning server, its command
// line, the LLM simulator and the eval harness.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/internal/text"
)

// version is set by the build (-ldflags "-X main.version=...").
var version = "dev"

// globals are the flags every command shares.
type globals struct {
	configPath string
	logLevel   string
	logFormat  string
	dataDir    string
	llmURL     string
	llmKey     string
	model      string
	concurrent int
}

var g globals

func main() {
	ctx, stop := interruptContext(context.Background(), os.Stderr, os.Exit)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		// Errors quote models, tools, documents and upstream servers.
		fmt.Fprintln(os.Stderr, "ponder: "+text.Terminal(errorLine(ctx, err)))
		os.Exit(exitStatus(ctx, err))
	}
}

// exitStatus is the exit status of a command that failed with err (ctx is
// interruptContext's): an exitError's code, 130 (143 after SIGTERM) for a
// run a signal stopped, else 1. A command that just returns its
// context's error when a signal cancels it (ingest, tools call) was
// stopped by that signal, not failed: it exited 1 saying "context
// canceled".
func exitStatus(ctx context.Context, err error) int {
	var ee exitError
	if errors.As(err, &ee) {
		if ee.code == 130 {
			// A run stopped by a signal: 143 after SIGTERM.
			return interruptStatus(ctx)
		}
		return ee.code
	}
	if stoppedBySignal(ctx, err) {
		return interruptStatus(ctx)
	}
	return 1
}

// errorLine is err on one line, a signal's cancellation named as the
// signal ("ingest stopped: terminated", not "context canceled").
func errorLine(ctx context.Context, err error) string {
	msg := oneLine(err)
	if stoppedBySignal(ctx, err) {
		msg = strings.ReplaceAll(msg, context.Canceled.Error(), context.Cause(ctx).Error())
	}
	return msg
}

// stoppedBySignal reports whether err is ctx's cancellation by a signal.
func stoppedBySignal(ctx context.Context, err error) bool {
	var s signalled
	return errors.Is(err, context.Canceled) && errors.As(context.Cause(ctx), &s)
}

// interruptContext returns a context cancelled by the first SIGINT or
// SIGTERM: the run stops gracefully (a search prints its best answer so
// far, the server answers what is running and drains). A second signal
// calls exit at once (status 130 for SIGINT, 143 for SIGTERM): a run that
// hangs while stopping (a client that never finishes its request, a tool
// that ignores its cancellation, the shutdown timeout) must not need a
// kill -9 (one within sameSignal of the first is that one delivered
// twice). Plugin and sandbox processes die with Ponder (Pdeathsig).
// (signal.NotifyContext kept catching every later signal, so a second
// Ctrl-C did nothing.) stop undoes it all.
func interruptContext(parent context.Context, stderr io.Writer, exit func(int)) (context.Context, func()) {
	ctx, cancelCause := context.WithCancelCause(parent)
	cancel := func() { cancelCause(nil) }
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		first := true
		var firstAt time.Time
		for {
			select {
			case sig := <-sigs:
				if !first && time.Since(firstAt) < sameSignal {
					continue // the first one, delivered twice
				}
				if first {
					first, firstAt = false, time.Now()
					// Ctrl-C is a person waiting: say how to stop waiting.
					// SIGTERM comes from service managers, whose logs
					// need no hint.
					if sig == os.Interrupt {
						fmt.Fprintln(stderr, "ponder: interrupted: stopping (press Ctrl-C again to quit at once)")
					}
					cancelCause(signalled{sig})
					continue
				}
				fmt.Fprintf(stderr, "ponder: %s again: quitting at once, without waiting for the run to stop\n", signalName(sig))
				exit(signalStatus(sig))
				return
			case <-done:
				return
			}
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		<-finished
		cancel()
	}
}

// sameSignal is how soon after the first a signal counts as the same one
// delivered twice, not a second: timeout(1) sends its SIGTERM to Ponder
// and then to its whole process group, Ponder included, so `timeout 60
// ponder solve ...` quit at once without its best answer. A person's
// second Ctrl-C comes later than this.
const sameSignal = 100 * time.Millisecond

// signalled is the cause of the context the first signal cancelled.
type signalled struct{ sig os.Signal }

func (s signalled) Error() string { return signalName(s.sig) }

// Signal is the signal, for the server's "shutting down" log line.
func (s signalled) Signal() os.Signal { return s.sig }

// interruptStatus is the exit status of a run that a signal stopped
// gracefully (ctx is interruptContext's): 143 after SIGTERM, else 130.
func interruptStatus(ctx context.Context) int {
	var s signalled
	if errors.As(context.Cause(ctx), &s) {
		return signalStatus(s.sig)
	}
	return 130
}

func signalName(sig os.Signal) string {
	if sig == os.Interrupt {
		return "interrupted"
	}
	return "terminated"
}

// signalStatus is the shell's status for a process a signal ended: 128+n.
func signalStatus(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 1
}

// exitError carries a specific exit status. The statuses: 0 done; 1 a
// failure, a named trace, document or file that is not there included
// (any error without an exitError); 2 a bad command line (an unknown
// command or flag, a malformed argument: usageError); 130 (143 after
// SIGTERM) stopped by a signal.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// printJSON writes v to w as indented JSON, as every --json flag prints.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func oneLine(err error) string {
	return strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "ponder",
		Short:         "Ponder turns any OpenAI-compatible LLM into a reasoning language model",
		Long:          "Ponder searches over reasoning steps (chains, trees, graphs) with strategies such as\nself-consistency, beam search and MCTS, and serves the result over MCP and an OpenAI-compatible API.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	// A flag Ponder cannot read is a usage error, as every other mistake in
	// what the user typed (exit status 2).
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return exitError{code: 2, err: err} })
	pf := root.PersistentFlags()
	pf.StringVar(&g.configPath, "config", "", "configuration file (YAML or JSON; default ./ponder.yaml when present)")
	pf.StringVar(&g.logLevel, "log-level", "", "log level: trace, debug, info, warn, error (env PONDER_LOG_LEVEL)")
	pf.StringVar(&g.logFormat, "log-format", "", "log format: auto, console, json (env PONDER_LOG_FORMAT)")
	pf.StringVar(&g.dataDir, "data-dir", "", "data directory for traces, documents and plugins (env PONDER_DATA_DIR)")
	pf.StringVar(&g.llmURL, "llm-url", "", "OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1 (env PONDER_LLM_BASE_URL)")
	pf.StringVar(&g.model, "model", "", "model name sent to the LLM endpoint (env PONDER_LLM_MODEL)")
	pf.IntVar(&g.concurrent, "llm-concurrency", 0, "concurrent LLM requests (env PONDER_LLM_CONCURRENCY)")
	pf.StringArrayVar(&pluginDirFlag, "plugin-dir", nil, "directory of plugins to load, searched first (repeatable; see ponder plugins)")
	root.AddCommand(
		newServeCmd(),
		newSolveCmd(),
		newStrategiesCmd(),
		newSimLLMCmd(),
	)
	for _, add := range extraCommands {
		root.AddCommand(add())
	}
	// Cobra's own, made now so that the walk below covers them too.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	strictArgs(root)
	decimalFlags(root)
	// A group is runnable only so that its arguments are checked (see
	// strictArgs); its help shows "ponder trace [command]", not the
	// "ponder trace [flags]" cobra writes for a runnable command.
	root.SetUsageTemplate(strings.Replace(root.UsageTemplate(), groupUsageFrom, groupUsageTo, 1))
	return root
}

// groupAnnotation marks the commands strictArgs made runnable.
const groupAnnotation = "ponder.group"

// The usage line of cobra's template, and ours: no use line for a group.
const (
	groupUsageFrom = "Usage:{{if .Runnable}}"
	groupUsageTo   = `Usage:{{if and .Runnable (not (index .Annotations "` + groupAnnotation + `"))}}`
)

// strictArgs makes a wrong command line a usage error (exit status 2) in
// every command, as a flag Ponder cannot read is, so that no command's
// file has to remember it: each argument check is wrapped (cobra's errors
// exit 1), and a command that only groups others (ponder, trace, tools,
// plugins, ...) refuses an unknown subcommand, where cobra printed the
// help and exited 0 (`ponder trace lst` looked like it worked).
func strictArgs(c *cobra.Command) {
	if !c.Runnable() && c.HasSubCommands() {
		if c.Args == nil {
			c.Args = unknownSubcommand
		}
		// Runnable, so that its Args are checked at all; with no
		// arguments it shows its help, as before.
		c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[groupAnnotation] = "true"
	}
	if c.Args != nil {
		c.Args = usageArgs(c.Args)
	}
	for _, sub := range c.Commands() {
		strictArgs(sub)
	}
}

// usageArgs makes v's errors usage errors (exit status 2).
func usageArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			var ee exitError
			if errors.As(err, &ee) {
				return err
			}
			return exitError{code: 2, err: err}
		}
		return nil
	}
}

// unknownSubcommand is the argument check of a command that only groups
// others: any argument is a subcommand it does not have.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default, which it sets only on its own path
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return errors.New(msg + " (see `" + cmd.CommandPath() + " --help`)")
}

// extraCommands lets each capability add its commands from its own file
// (tools, ingest, plugins, eval, trace), keeping main.go free of merges.
var extraCommands []func() *cobra.Command

// loadConfig applies defaults, the config file, the environment and then
// the flags that were set, and validates the result.
func loadConfig(cmd *cobra.Command) (config.Config, error) {
	cfg, err := config.Load(g.configPath, os.Environ())
	if err != nil {
		return cfg, err
	}
	for _, w := range config.UnknownVariables(os.Environ()) {
		fmt.Fprintln(cmd.ErrOrStderr(), "ponder: warning: "+text.Terminal(w))
	}
	f := cmd.Flags()
	if f.Changed("log-level") {
		cfg.Log.Level = g.logLevel
	}
	if f.Changed("log-format") {
		cfg.Log.Format = g.logFormat
	}
	if f.Changed("data-dir") {
		cfg.DataDir = config.ExpandHome(g.dataDir)
	}
	if f.Changed("llm-url") {
		cfg.LLM.BaseURL = g.llmURL
	}
	if f.Changed("model") {
		cfg.LLM.Model = g.model
	}
	if f.Changed("llm-concurrency") {
		cfg.LLM.Concurrency = g.concurrent
	}
	return cfg, nil
}

// newLogger builds the process logger: console on a terminal, JSON
// otherwise, to stderr.
func newLogger(c config.Log, w io.Writer) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(c.Level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	format := c.Format
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			format = "console"
		}
	}
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000", FormatPrepare: inertEvent}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}

// inertEvent makes every string of a console log event inert for the
// terminal (text.Terminal) before the console writer prints it: messages
// and fields carry upstream text (an LLM endpoint's error, a plugin's
// relayed log line), and the writer prints a message as it is and nested
// values as JSON, which leaves ESC-free C1 controls and bidi overrides
// raw. It runs on the decoded event, so the writer's own colours stay.
// JSON mode needs none of this: its encoder escapes controls.
func inertEvent(evt map[string]any) error {
	inertValue(evt)
	return nil
}

func inertValue(v any) any {
	switch v := v.(type) {
	case string:
		return text.Terminal(v)
	case []any:
		for i, e := range v {
			v[i] = inertValue(e)
		}
	case map[string]any:
		for k, e := range v {
			// A key can be upstream text too (a nested field's name).
			if tk := text.Terminal(k); tk != k {
				delete(v, k)
				k = tk
			}
			v[k] = inertValue(e)
		}
	}
	return v
}
