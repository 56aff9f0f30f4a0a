// Package sdktest runs Ponder plugins in tests: in-process over real gRPC
// against a real engine (fast unit tests of a plugin's logic), or as the
// real subprocess the host starts (Build and Install).
//
//	func TestBeam(t *testing.T) {
//		res := sdktest.Solve(t, plugin, sdk.Task{Problem: "What is 6 times 7?"},
//			&sdktest.SolveOptions{Policy: sdktest.Replies("6 * 7 = 42. The answer is 42.")})
//		if res.Answer != "42" { t.Fatalf("answer %q", res.Answer) }
//	}
package sdktest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/plugins"
	"github.com/ponder-rlm/ponder/sdk"
	"github.com/ponder-rlm/ponder/standard"
)

// Connect serves p in-process and returns the host's view of it, connected
// over a real gRPC connection and broker, as the host would see the
// subprocess. The connection is closed when the test ends.
func Connect(t testing.TB, p sdk.Plugin) *sdk.Remote {
	t.Helper()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	reattach := make(chan *plugin.ReattachConfig, 1)
	closed := make(chan struct{})
	cfg := sdk.ServeConfig(p)
	cfg.Logger = hclog.NewNullLogger()
	cfg.Test = &plugin.ServeTestConfig{Context: ctx, ReattachConfigCh: reattach, CloseCh: closed}
	go plugin.Serve(cfg)
	var rc *plugin.ReattachConfig
	select {
	case rc = <-reattach:
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("sdktest: the plugin did not start serving")
	}
	client := plugin.NewClient(&plugin.ClientConfig{HandshakeConfig: sdk.Handshake, Plugins: sdk.PluginSet(), Reattach: rc,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC}, Logger: hclog.NewNullLogger()})
	t.Cleanup(func() {
		client.Kill()
		cancel()
		<-closed
	})
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("sdktest: connect: %v", err)
	}
	r, err := sdk.Dispense(rpc, p.Kind())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Describe(context.Background()); err != nil {
		t.Fatalf("describe: %v", err)
	}
	return r
}

// Tool serves a tool plugin in-process and returns it as the host sees it.
func Tool(t testing.TB, p sdk.Plugin) sdk.Tool { t.Helper(); return Connect(t, p).Tool() }

// Evaluator serves an evaluator plugin in-process and returns it as the
// host sees it.
func Evaluator(t testing.TB, p sdk.Plugin) sdk.Evaluator {
	t.Helper()
	return Connect(t, p).Evaluator()
}

// SolveOptions configure Solve. Policy is required.
type SolveOptions struct {
	// Policy answers the run's LLM calls (Replies, or an OpenAI client on
	// the simulator).
	Policy core.Policy
	// Registry holds the strategies and evaluators the plugin may use
	// (default: Ponder's built-ins).
	Registry *core.Registry
	// Tools the task may allow.
	Tools core.Toolbox
	// BudgetGrace is how long the plugin may run after the budget is
	// spent (default 2s).
	BudgetGrace time.Duration
}

// Solve runs the strategy plugin p in-process on task through a real
// engine, over real gRPC, and returns the result. Strategy parameters come
// from task.Params.
func Solve(t testing.TB, p sdk.Plugin, task core.Task, opts *SolveOptions) core.Result {
	t.Helper()
	if opts == nil || opts.Policy == nil {
		t.Fatal("sdktest.Solve: SolveOptions.Policy is required")
	}
	r := Connect(t, p)
	if r.Kind() != sdk.KindStrategy {
		t.Fatalf("sdktest.Solve: %s is a %s plugin, not a strategy", p.Name, r.Kind())
	}
	reg := opts.Registry
	if reg == nil {
		reg = standard.Registry()
	}
	name := p.Name
	if _, err := reg.Strategy(name); err != nil {
		reg.RegisterStrategy(core.StrategySpec{Name: name, Summary: p.Summary, Params: p.Params, Source: name,
			New: func(params core.Params) (core.Strategy, error) {
				return plugins.HostStrategy(name, r.Strategy(), params, opts.BudgetGrace), nil
			}})
	}
	task.Strategy = name
	eng := core.NewEngine(opts.Policy, reg, &core.EngineOptions{Packs: standard.Packs, Tools: opts.Tools, Logger: zerolog.Nop()})
	res, err := eng.Solve(context.Background(), task)
	if err != nil {
		t.Fatalf("sdktest.Solve: %v", err)
	}
	return res
}

// Replies is a policy that answers with texts in turn (one per sample,
// cycling), for scripted tests.
func Replies(texts ...string) core.Policy {
	var i atomic.Int64
	return core.PolicyFunc(func(_ context.Context, req core.CompletionRequest) (core.Completion, error) {
		if len(texts) == 0 {
			return core.Completion{}, fmt.Errorf("sdktest.Replies: no replies scripted")
		}
		c := core.Completion{PromptTokens: 10}
		for range max(1, req.N) {
			txt := texts[int(i.Add(1)-1)%len(texts)]
			c.Choices = append(c.Choices, core.Choice{Text: txt, FinishReason: "stop"})
			c.CompletionTokens += int64(len(txt)/4 + 1)
		}
		return c, nil
	})
}

// Build compiles the Go package pkg (an import path or a ./dir relative to
// the test's directory) into a plugin binary in a temporary directory and
// returns its path.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	name := filepath.Base(pkg)
	if abs, err := filepath.Abs(pkg); err == nil && (pkg == "." || len(pkg) > 0 && pkg[0] == '.') {
		name = filepath.Base(abs)
	}
	out := filepath.Join(t.TempDir(), name)
	if err := BuildTo(pkg, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// BuildTo compiles pkg into the binary out (for TestMain, which has no t).
func BuildTo(pkg, out string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Env = os.Environ()
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// Install installs the plugin binary into a temporary plugin directory, as
// `ponder plugins install` does, and returns a manager that has loaded it
// (the plugin starts on first use; the manager is closed when the test
// ends).
func Install(t testing.TB, binary string, opts *plugins.Options) (*plugins.Manager, plugins.Manifest) {
	t.Helper()
	dir := t.TempDir()
	m, err := plugins.Install(context.Background(), binary, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	var o plugins.Options
	if opts != nil {
		o = *opts
	}
	o.Dirs = []string{dir}
	mgr := plugins.New(&o)
	t.Cleanup(func() { mgr.Close() })
	if errs := mgr.Load(); len(errs) > 0 {
		t.Fatal(errs[0])
	}
	return mgr, m
}
