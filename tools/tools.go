// Package tools is Ponder's tool registry: the tools a reasoning step may
// call (sandboxed Python, exact arithmetic, the tools of external MCP
// servers), each with a name, a description and a JSON Schema of its
// arguments. The Registry implements core.Toolbox; every tool it hands out
// validates its arguments against the schema (an error names the failing
// field), runs under a per-tool timeout and has its text output capped.
//
//	reg := tools.NewRegistry(nil)
//	if err := reg.Register(calc.New(nil), nil); err != nil { ... }
//	res, err := reg.Call(ctx, "calc", json.RawMessage(`{"expression":"2^100"}`))
//	// res.Text == "1267650600228229401496703205376"
//
// A tool that ran and failed returns a result with IsError (bad arguments
// included, so a policy can read what to fix); a Go error means the call
// could not run at all (unknown tool, cancelled context).
package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/text"
)

// Defaults of Options.
const (
	DefaultTimeout   = 30 * time.Second
	DefaultMaxOutput = 64 << 10
)

// Options configure a Registry. The zero value is valid.
type Options struct {
	// Timeout bounds a call of a tool registered without its own timeout
	// (default 30s).
	Timeout time.Duration
	// MaxOutput caps the text of a result in bytes (default 64 KiB).
	MaxOutput int
	Logger    zerolog.Logger
}

// ToolOptions override the registry's options for one tool.
type ToolOptions struct {
	Timeout   time.Duration
	MaxOutput int
}

// ErrUnknownTool is wrapped when a tool name is not registered.
var ErrUnknownTool = errors.New("unknown tool")

// ErrInvalidArguments is wrapped by argument validation errors.
var ErrInvalidArguments = errors.New("invalid arguments")

// Registry holds tools by name, and providers (toolboxes such as the MCP
// bridge) whose tools it looks up on demand. It is safe for concurrent use.
type Registry struct {
	mu        sync.RWMutex
	opts      Options
	tools     map[string]*guarded
	providers []*provider
}

// provider is a toolbox whose tools the registry guards as they are found.
type provider struct {
	box   core.Toolbox
	own   ToolOptions
	mu    sync.Mutex
	cache map[string]*guarded
}

var _ core.Toolbox = (*Registry)(nil)

// NewRegistry returns an empty registry.
func NewRegistry(opts *Options) *Registry {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxOutput <= 0 {
		o.MaxOutput = DefaultMaxOutput
	}
	return &Registry{opts: o, tools: map[string]*guarded{}}
}

// SetDefaults changes the timeout and output cap of tools registered
// without their own (zero leaves a value as it is).
func (r *Registry) SetDefaults(timeout time.Duration, maxOutput int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if timeout > 0 {
		r.opts.Timeout = timeout
	}
	if maxOutput > 0 {
		r.opts.MaxOutput = maxOutput
	}
}

func (r *Registry) limits(own ToolOptions) (time.Duration, int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t, m := r.opts.Timeout, r.opts.MaxOutput
	if own.Timeout > 0 {
		t = own.Timeout
	}
	if own.MaxOutput > 0 {
		m = own.MaxOutput
	}
	return t, m
}

func (r *Registry) guard(t core.Tool, spec core.ToolSpec, own ToolOptions) (*guarded, error) {
	g := &guarded{tool: t, spec: spec, own: own, reg: r, log: r.opts.Logger}
	if len(bytes.TrimSpace(spec.Schema)) > 0 {
		sch, err := CompileSchema(spec.Schema)
		if err != nil {
			return g, err
		}
		g.schema = sch
	}
	return g, nil
}

// Register adds t under its spec's name. It fails on an empty or
// duplicate name, a name with white space, control or bidi characters
// (a terminal would show it as another name, which could not be called)
// and on a schema that does not compile.
func (r *Registry) Register(t core.Tool, o *ToolOptions) error {
	spec := t.Spec()
	if spec.Name == "" {
		return errors.New("register tool: empty name")
	}
	if strings.ContainsAny(spec.Name, " \t\n") {
		return fmt.Errorf("register tool %q: the name has white space", spec.Name)
	}
	if text.Terminal(spec.Name) != spec.Name {
		return fmt.Errorf("register tool %q: the name has control or bidi characters, or bytes that are not UTF-8", spec.Name)
	}
	var own ToolOptions
	if o != nil {
		own = *o
	}
	g, err := r.guard(t, spec, own)
	if err != nil {
		return fmt.Errorf("register tool %s: %w", spec.Name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.tools[spec.Name]; dup {
		return fmt.Errorf("register tool %s: a tool of that name is already registered", spec.Name)
	}
	r.tools[spec.Name] = g
	return nil
}

// AddProvider adds a toolbox whose tools are looked up when asked for (the
// MCP bridge connects to a server then). Its tools get the same argument
// validation, timeout and output cap as registered ones; a schema that
// does not compile leaves the arguments unchecked. Registered tools win
// over a provider's of the same name, and earlier providers over later.
func (r *Registry) AddProvider(box core.Toolbox, o *ToolOptions) {
	p := &provider{box: box, cache: map[string]*guarded{}}
	if o != nil {
		p.own = *o
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.providers = append(r.providers, p)
}

// Tool implements core.Toolbox. The tool returned validates arguments,
// applies the timeout and caps the output.
func (r *Registry) Tool(name string) (core.Tool, bool) {
	r.mu.RLock()
	g, ok := r.tools[name]
	providers := r.providers
	r.mu.RUnlock()
	if ok {
		return g, true
	}
	for _, p := range providers {
		t, ok := p.box.Tool(name)
		if !ok {
			continue
		}
		p.mu.Lock()
		g, ok := p.cache[name]
		if !ok || g.tool != t {
			var err error
			g, err = r.guard(t, t.Spec(), p.own)
			if err != nil {
				r.opts.Logger.Warn().Err(err).Str("tool", name).Msg("tool schema does not compile; arguments are not checked")
			}
			p.cache[name] = g
		}
		p.mu.Unlock()
		return g, true
	}
	return nil, false
}

// Names lists the tools, sorted (providers' included).
func (r *Registry) Names() []string {
	specs := r.Specs()
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.Name
	}
	return out
}

// Specs implements core.Toolbox: every tool's spec, providers' included,
// sorted by name.
func (r *Registry) Specs() []core.ToolSpec {
	r.mu.RLock()
	out := make([]core.ToolSpec, 0, len(r.tools))
	seen := map[string]bool{}
	for name, g := range r.tools {
		out = append(out, g.spec)
		seen[name] = true
	}
	providers := r.providers
	r.mu.RUnlock()
	for _, p := range providers {
		for _, s := range p.box.Specs() {
			if !seen[s.Name] {
				seen[s.Name] = true
				out = append(out, s)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Call runs the named tool with args.
func (r *Registry) Call(ctx context.Context, name string, args json.RawMessage) (core.ToolResult, error) {
	t, ok := r.Tool(name)
	if !ok {
		return core.ToolResult{}, fmt.Errorf("%w %q (known: %s)", ErrUnknownTool, name, strings.Join(r.Names(), ", "))
	}
	return t.Call(ctx, args)
}

// Close closes every registered tool and provider that holds resources
// (io.Closer), and reports the errors together.
func (r *Registry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for name, g := range r.tools {
		if c, ok := g.tool.(io.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close tool %s: %w", name, err))
			}
		}
	}
	for _, p := range r.providers {
		if c, ok := p.box.(io.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close tool provider: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// guarded wraps a tool with validation, a timeout and an output cap.
// It passes a strategy's CloseSession on to the tool.
var _ core.SessionTool = (*guarded)(nil)

type guarded struct {
	tool   core.Tool
	spec   core.ToolSpec
	schema *jsonschema.Schema
	own    ToolOptions
	reg    *Registry
	log    zerolog.Logger
}

func (g *guarded) Spec() core.ToolSpec { return g.spec }

func (g *guarded) Call(ctx context.Context, args json.RawMessage) (core.ToolResult, error) {
	if err := ctx.Err(); err != nil {
		return core.ToolResult{}, err
	}
	if len(bytes.TrimSpace(args)) == 0 {
		args = json.RawMessage("{}")
	}
	if g.schema != nil {
		if err := ValidateArgs(g.schema, args); err != nil {
			return core.ToolResult{Text: fmt.Sprintf("%s: %v", g.spec.Name, err), IsError: true}, nil
		}
	}
	timeout, maxOutput := g.reg.limits(g.own)
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	res, err := g.tool.Call(cctx, args)
	if err != nil {
		if ctx.Err() != nil {
			return core.ToolResult{}, ctx.Err()
		}
		if cctx.Err() != nil {
			return core.ToolResult{Text: fmt.Sprintf("%s: timed out after %s", g.spec.Name, timeout), IsError: true}, nil
		}
		if errors.Is(err, context.DeadlineExceeded) {
			// The tool's own, shorter limit (a plugin's call timeout): its
			// message says which, and what was done about it.
			return core.ToolResult{Text: err.Error(), IsError: true}, nil
		}
		return core.ToolResult{}, err
	}
	res.Text = CapText(res.Text, maxOutput)
	g.log.Debug().Str("tool", g.spec.Name).Bool("is_error", res.IsError).Dur("took", time.Since(start)).Msg("tool call")
	return res, nil
}

// CloseSession implements core.SessionTool for a tool that keeps
// sessions; for any other it does nothing.
func (g *guarded) CloseSession(name string) {
	if st, ok := g.tool.(core.SessionTool); ok {
		st.CloseSession(name)
	}
}

// Unwrap returns the tool as registered.
func (g *guarded) Unwrap() core.Tool { return g.tool }

// CapText cuts s to at most max bytes on a rune boundary, saying how much
// was cut.
func CapText(s string, max int) string {
	if max <= 0 || len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("\n[output truncated: %d more bytes]", len(s)-cut)
}

// CompileSchema compiles a JSON Schema of tool arguments. Remote
// references are not fetched.
func CompileSchema(schema json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return nil, fmt.Errorf("schema is not JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(noLoader{})
	const loc = "ponder:tool-arguments.json"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	sch, err := c.Compile(loc)
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	return sch, nil
}

type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("schema reference %s is not fetched", url)
}

// Func is a tool made of a spec and a function.
type Func struct {
	ToolSpec core.ToolSpec
	Fn       func(ctx context.Context, args json.RawMessage) (core.ToolResult, error)
}

// Spec implements core.Tool.
func (f Func) Spec() core.ToolSpec { return f.ToolSpec }

// Call implements core.Tool.
func (f Func) Call(ctx context.Context, args json.RawMessage) (core.ToolResult, error) {
	return f.Fn(ctx, args)
}
