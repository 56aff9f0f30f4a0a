package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/sdk"
)

// Options configure a Manager. The zero value is valid.
type Options struct {
	// Dirs are searched for plugins, in order (the first plugin of a name
	// wins). Each plugin is a subdirectory with manifest.json and its
	// binary, as `ponder plugins install` lays it out.
	Dirs []string
	// Eager starts every plugin in Start and restarts crashed ones in the
	// background; otherwise plugins start on first use.
	Eager bool
	// CallTimeout bounds one tool or evaluator call and a health check
	// (default DefaultCallTimeout). A call that does not answer in time
	// fails and is abandoned (see AbandonGrace); a health check that does
	// not is a crash. Strategy runs are bounded by their budget.
	CallTimeout time.Duration
	// StartTimeout bounds a plugin's start and handshake (default 10s).
	StartTimeout time.Duration
	// HealthInterval is the time between health checks of a running
	// plugin (default 10s; negative: none).
	HealthInterval time.Duration
	// BudgetGrace is how long a strategy plugin may keep running after
	// the host refused a call for the budget, before the host stops it
	// (default 2s).
	BudgetGrace time.Duration
	// AbandonGrace (plugins.abandon_grace) is how long a call the host
	// gave up on (cancelled, past plugins.call_timeout, a run the host
	// stopped) may keep running in the plugin; past it the plugin is
	// restarted: at once when it has no call in flight or more than
	// MaxAbandoned such calls pile up, else new calls go to a fresh
	// process and the old one is stopped when its calls in flight end
	// (default 2s).
	AbandonGrace time.Duration
	// Env is added to each plugin's environment. Plugins do not inherit
	// the host's PONDER_* variables or anything named like a secret.
	Env    []string
	Logger zerolog.Logger
	// Taken, when set, says what of the host's own already has a
	// plugin's kind and name ("the built-in strategy cot"), "" for
	// nothing: the host skips such a plugin, so Install refuses it
	// (ErrNameTaken).
	Taken func(kind sdk.Kind, name string) string

	done chan struct{}
}

// DefaultCallTimeout is Options.CallTimeout when it is not positive.
const DefaultCallTimeout = 30 * time.Second

// Manager runs the plugins found in its directories and adapts them to
// Ponder's registries: strategies and evaluators to core.Registry, tools
// to core.Tool. It is safe for concurrent use; Close stops every plugin.
type Manager struct {
	opts Options

	mu     sync.Mutex
	procs  map[string]*Process
	closed bool
	once   sync.Once
}

// New returns a manager; call Load to discover plugins.
func New(opts *Options) *Manager {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 10 * time.Second
	}
	if o.HealthInterval == 0 {
		o.HealthInterval = 10 * time.Second
	}
	if o.BudgetGrace <= 0 {
		o.BudgetGrace = 2 * time.Second
	}
	if o.AbandonGrace <= 0 {
		o.AbandonGrace = 2 * time.Second
	}
	o.done = make(chan struct{})
	return &Manager{opts: o, procs: map[string]*Process{}}
}

// Load discovers the plugins in the manager's directories. Problems (a bad
// manifest, a duplicate name) are logged and returned; the plugins that
// are fine are added.
func (m *Manager) Load() []error {
	found, problems := Discover(m.opts.Dirs)
	for _, man := range found {
		if err := m.add(man, true); err != nil {
			problems = append(problems, err)
		}
	}
	for _, p := range problems {
		m.opts.Logger.Warn().Err(p).Msg("plugin skipped")
	}
	return problems
}

// Add adds a plugin by manifest.
func (m *Manager) Add(man Manifest) error { return m.add(man, false) }

// add adds a plugin; installed says that man was read from a plugin
// directory, whose manifest a reinstall replaces.
func (m *Manager) add(man Manifest, installed bool) error {
	if err := man.Validate(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("plugin %s: the manager is closed", man.Name)
	}
	if _, dup := m.procs[man.Name]; dup {
		return fmt.Errorf("plugin %s is already loaded", man.Name)
	}
	p := newProcess(man, &m.opts)
	p.installed = installed
	m.procs[man.Name] = p
	return nil
}

// Plugin returns the named plugin.
func (m *Manager) Plugin(name string) (*Process, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.procs[name]
	return p, ok
}

// Plugins returns every plugin, sorted by name.
func (m *Manager) Plugins() []*Process {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Process, 0, len(m.procs))
	for _, p := range m.procs {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].m.Name < out[j].m.Name })
	return out
}

// Statuses reports every plugin's state, sorted by name.
func (m *Manager) Statuses() []Status {
	var out []Status
	for _, p := range m.Plugins() {
		out = append(out, p.Status())
	}
	return out
}

// Start starts every plugin now (eager start). It returns the start
// failures; the plugins that failed are retried on first use.
func (m *Manager) Start(ctx context.Context) error {
	var errs []error
	for _, p := range m.Plugins() {
		if _, err := p.Remote(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Register adds the strategy and evaluator plugins to reg with Source set
// to the plugin's name. A plugin whose name is taken by a built-in is
// skipped with an error, never replacing the built-in.
func (m *Manager) Register(reg *core.Registry) []error {
	var errs []error
	for _, p := range m.Plugins() {
		man := p.m
		switch man.Kind {
		case sdk.KindStrategy:
			if prev, err := reg.Strategy(man.Name); err == nil {
				errs = append(errs, fmt.Errorf("plugin %s skipped: strategy %q is already provided by %s", man.Name, man.Name, prev.Source))
				continue
			}
			reg.RegisterStrategy(m.strategySpec(p))
			if k := core.StructureKind(man.Shape); k == core.Chain || k == core.Graph {
				core.SetShape(man.Name, k)
			}
		case sdk.KindEvaluator:
			if reg.HasEvaluator(man.Name) {
				errs = append(errs, fmt.Errorf("plugin %s skipped: evaluator %q is already registered", man.Name, man.Name))
				continue
			}
			reg.RegisterEvaluator(m.evaluatorSpec(p))
		}
	}
	for _, e := range errs {
		m.opts.Logger.Warn().Err(e).Msg("plugin not registered")
	}
	return errs
}

// Tools returns the tool plugins as core tools.
func (m *Manager) Tools() []core.Tool {
	var out []core.Tool
	for _, p := range m.Plugins() {
		if p.m.Kind == sdk.KindTool {
			out = append(out, &Tool{p: p})
		}
	}
	return out
}

// Close stops every plugin and waits for them to exit. It is safe to call
// more than once.
func (m *Manager) Close() error {
	m.once.Do(func() {
		m.mu.Lock()
		m.closed = true
		m.mu.Unlock()
		close(m.opts.done)
		var wg sync.WaitGroup
		for _, p := range m.Plugins() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.close()
			}()
		}
		wg.Wait()
	})
	return nil
}

// Tool is a tool plugin as a core.Tool.
type Tool struct{ p *Process }

var _ core.Tool = (*Tool)(nil)

// Spec returns the tool's spec from its manifest (no start needed).
func (t *Tool) Spec() core.ToolSpec { return *t.p.m.Tool }

// Call runs the tool in the plugin, within the call timeout.
func (t *Tool) Call(ctx context.Context, args json.RawMessage) (core.ToolResult, error) {
	var res core.ToolResult
	err := t.p.call(ctx, t.p.opts.CallTimeout, "tool call", func(ctx context.Context, r *sdk.Remote) error {
		var err error
		res, err = r.Tool().Call(ctx, args)
		return err
	})
	return res, err
}

// Evaluator is an evaluator plugin with its parameters as a core.Evaluator.
type Evaluator struct {
	p      *Process
	params core.Params
}

var _ core.Evaluator = (*Evaluator)(nil)

// Evaluate asks the plugin, within the call timeout; the request's policy
// is offered to the plugin for the length of the call.
func (e *Evaluator) Evaluate(ctx context.Context, req core.EvalRequest) (core.Evaluation, error) {
	var ev core.Evaluation
	path := make([]core.Node, len(req.Path))
	for i, n := range req.Path {
		n.Sub = nil
		path[i] = n
	}
	err := e.p.call(ctx, e.p.opts.CallTimeout, "evaluate", func(ctx context.Context, r *sdk.Remote) error {
		var err error
		ev, err = r.Evaluator().Evaluate(ctx, sdk.EvalRequest{Task: req.Task, Path: path, Params: e.params, Policy: req.Policy})
		return err
	})
	if errors.Is(err, core.ErrNotApplicable) {
		return core.Evaluation{}, core.ErrNotApplicable
	}
	return ev, err
}

func (m *Manager) evaluatorSpec(p *Process) core.EvaluatorSpec {
	return core.EvaluatorSpec{Name: p.m.Name, Summary: p.m.Summary, Params: p.m.Params, Source: p.m.Name,
		New: func(params core.Params) (core.Evaluator, error) { return &Evaluator{p: p, params: params}, nil }}
}

// Strategy is a strategy plugin with its parameters as a core.Strategy.
type Strategy struct {
	p      *Process
	params core.Params
}

var _ core.Strategy = (*Strategy)(nil)

func (m *Manager) strategySpec(p *Process) core.StrategySpec {
	return core.StrategySpec{Name: p.m.Name, Summary: p.m.Summary, Params: p.m.Params, Source: p.m.Name,
		New: func(params core.Params) (core.Strategy, error) { return &Strategy{p: p, params: params}, nil }}
}

// Run runs the strategy in the plugin against env. The plugin searches
// through env (policy, evaluators, tools, budget, trace); once the budget
// refuses a call, the plugin has BudgetGrace to return before the host
// cancels the run and answers with the best answer in the structure.
func (s *Strategy) Run(ctx context.Context, env *core.Env) (core.Outcome, error) {
	return runStrategy(ctx, env, s.p.m.Name, s.params, s.p.opts.BudgetGrace,
		func(ctx context.Context, h sdk.Host, req sdk.RunRequest) (core.Outcome, error) {
			var out core.Outcome
			err := s.p.call(ctx, 0, "run", func(ctx context.Context, r *sdk.Remote) error {
				var err error
				out, err = r.Strategy().Run(ctx, h, req)
				return err
			})
			return out, err
		})
}

// HostStrategy adapts any sdk.Strategy (a remote one, or one in-process in
// tests) to core.Strategy with the host semantics of a strategy plugin: it
// searches through the run's Env and is stopped grace after the budget
// refused a call.
func HostStrategy(name string, s sdk.Strategy, params core.Params, grace time.Duration) core.Strategy {
	if grace <= 0 {
		grace = 2 * time.Second
	}
	return core.StrategyFunc(func(ctx context.Context, env *core.Env) (core.Outcome, error) {
		return runStrategy(ctx, env, name, params, grace, s.Run)
	})
}

func runStrategy(ctx context.Context, env *core.Env, name string, params core.Params, grace time.Duration,
	run func(context.Context, sdk.Host, sdk.RunRequest) (core.Outcome, error)) (core.Outcome, error) {
	h := newEnvHost(env, name)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stopped atomic.Bool
	done := make(chan struct{})
	enforcerDone := make(chan struct{})
	go func() {
		defer close(enforcerDone)
		select {
		case <-done:
			return
		case <-h.exhausted:
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			stopped.Store(true)
			cancel()
		}
	}()
	out, err := run(runCtx, h, sdk.RunRequest{Task: env.Task, Params: params, Limits: env.Budget.Limits()})
	close(done)
	<-enforcerDone
	if stopped.Load() {
		env.Logger.Warn().Str("plugin", name).Dur("grace", grace).Msg("strategy plugin ignored the spent budget; stopped by the host")
		return bestSoFar(env), fmt.Errorf("plugin %s kept running %s after the budget was spent; stopped by the host: %w",
			name, grace, core.ErrBudgetExhausted)
	}
	h.capAnswer(&out)
	if out.Best != 0 {
		if _, ok := env.Structure.Node(out.Best); !ok {
			env.Logger.Warn().Str("plugin", name).Int("best", int(out.Best)).Msg("strategy plugin named a node that does not exist")
			out.Best = 0
		}
	}
	if err != nil && out.Answer == "" {
		out = bestSoFar(env)
	}
	return out, err
}
