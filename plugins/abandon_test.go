package plugins

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/testutil"
	"github.com/ponder-rlm/ponder/sdk"
)

// cancelledCall calls the echo tool with args and cancels the call after
// d, as a client that gives up does.
func cancelledCall(t *testing.T, m *Manager, args string, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, err := m.Tools()[0].Call(ctx, []byte(args))
	return err
}

func busy(p *Process) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.busy
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// inFlight starts a call on the echo tool that runs until stop is called,
// and waits until it is the one call in flight on p.
func inFlight(t *testing.T, m *Manager, p *Process) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := m.Tools()[0].Call(ctx, []byte(`{"wait":true}`))
		errc <- err
	}()
	waitFor(t, "the call in flight", func() bool { return busy(p) == 1 })
	return func() error { cancel(); return <-errc }
}

// A call the host gave up on but the plugin keeps running (it ignores its
// context) would pile up in the plugin, which serves every run: the
// plugin is restarted, at once when it has no other call in flight or
// more than MaxAbandoned pile up, else by sending new calls to a fresh
// process and stopping the old one when its calls in flight end. One that
// stops as told is left alone.
func TestAbandonedCallsRestartThePlugin(t *testing.T) {
	t.Parallel()
	const grace = 100 * time.Millisecond
	setup := func(t *testing.T, mode string) (*Manager, *Process, *testutil.LockedBuffer) {
		dir := t.TempDir()
		installMode(t, dir, "echo", sdk.KindTool, mode)
		m, logs := loggedManager(t, Options{Dirs: []string{dir}, AbandonGrace: grace})
		if res, err := callEcho(t, m, "echo", `{"text":"warm"}`); err != nil || res.Text != "warm" {
			t.Fatalf("%+v, %v", res, err)
		}
		p, _ := m.Plugin("echo")
		return m, p, logs
	}

	t.Run("ignored cancellation restarts it once idle", func(t *testing.T) {
		t.Parallel()
		m, p, logs := setup(t, "tool")
		pid := p.Status().PID
		if err := cancelledCall(t, m, `{"hang":true}`, 200*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("cancelled call: %v", err)
		}
		waitGone(t, pid)
		if !strings.Contains(logs.String(), "plugin restarted: 1 call(s) still running") {
			t.Errorf("log does not say why it restarted:\n%s", logs.String())
		}
		if res, err := callEcho(t, m, "echo", `{"text":"back"}`); err != nil || res.Text != "back" {
			t.Fatalf("after the restart: %+v, %v", res, err)
		}
		if st := p.Status(); st.Starts != 2 || st.PID == pid {
			t.Fatalf("status %+v (old pid %d)", st, pid)
		}
	})

	t.Run("a call past the call timeout waits for the calls in flight", func(t *testing.T) {
		t.Parallel()
		const timeout = 600 * time.Millisecond
		dir := t.TempDir()
		installMode(t, dir, "echo", sdk.KindTool, "tool")
		m, logs := loggedManager(t, Options{Dirs: []string{dir}, AbandonGrace: grace, CallTimeout: timeout})
		if _, err := callEcho(t, m, "echo", `{"text":"warm"}`); err != nil {
			t.Fatal(err)
		}
		p, _ := m.Plugin("echo")
		pid := p.Status().PID
		// The hang times out at 600 ms, another call (started at 400 ms)
		// at 1 s: the plugin, which still runs the hang at 700 ms, is
		// restarted when that other call ends, not under it.
		hang := make(chan error, 1)
		go func() {
			_, err := callEcho(t, m, "echo", `{"hang":true}`)
			hang <- err
		}()
		time.Sleep(timeout * 2 / 3)
		other := make(chan error, 1)
		go func() {
			_, err := callEcho(t, m, "echo", `{"wait":true}`)
			other <- err
		}()
		err := <-hang
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not answer within 600ms") {
			t.Fatalf("hang: %v", err)
		}
		time.Sleep(150 * time.Millisecond)
		if !alive(pid) {
			t.Fatal("killed under a call in flight")
		}
		if err := <-other; !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not answer within") {
			t.Fatalf("the call in flight: %v", err)
		}
		waitGone(t, pid)
		if !strings.Contains(logs.String(), "the old one is stopped once its calls in flight end") {
			t.Errorf("log:\n%s", logs.String())
		}
	})

	t.Run("honoured cancellation keeps it", func(t *testing.T) {
		t.Parallel()
		m, p, _ := setup(t, "tool")
		pid := p.Status().PID
		if err := cancelledCall(t, m, `{"wait":true}`, 200*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("cancelled call: %v", err)
		}
		time.Sleep(5 * grace)
		if st := p.Status(); st.State != StateRunning || st.Starts != 1 || st.PID != pid {
			t.Fatalf("a plugin that stopped as told was restarted: %+v", st)
		}
	})

	t.Run("past MaxAbandoned at once", func(t *testing.T) {
		t.Parallel()
		m, p, logs := setup(t, "tool")
		pid := p.Status().PID
		stop := inFlight(t, m, p)
		var wg sync.WaitGroup
		for range MaxAbandoned + 1 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cancelledCall(t, m, `{"hang":true}`, 200*time.Millisecond)
			}()
		}
		wg.Wait()
		waitGone(t, pid) // while the call in flight still runs
		if err := stop(); err == nil {
			t.Fatal("the call in flight survived the restart")
		}
		// Asked once all four are seen cancelled, the plugin is restarted
		// at once; a plugin that saw some cancellations late (a loaded
		// machine) is retired first, and its watch stops it once it
		// reports all four.
		if log := logs.String(); !strings.Contains(log, "plugin restarted: 4 call(s) still running") &&
			!strings.Contains(log, "the old process holds too many abandoned calls; stopped now") {
			t.Errorf("log:\n%s", log)
		}
	})

	t.Run("a plugin that does not report is restarted once idle", func(t *testing.T) {
		t.Parallel()
		m, p, logs := setup(t, "tool-unreported")
		pid := p.Status().PID
		if err := cancelledCall(t, m, `{"wait":true}`, 200*time.Millisecond); err == nil {
			t.Fatal("cancelled call succeeded")
		}
		waitGone(t, pid)
		if !strings.Contains(logs.String(), "does not report whether its calls still run") {
			t.Errorf("log:\n%s", logs.String())
		}
	})
}

// A strategy run that ignores its context, given up on by its client (or
// stopped by the host at its deadline or budget), does not stay in the plugin: each such run restarts it, and
// repeated runs (as through `ponder serve`) do not pile up.
func TestHungStrategyRunsDoNotPileUp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	installMode(t, dir, "stuck", sdk.KindStrategy, "strategy-hang")
	m, _ := loggedManager(t, Options{Dirs: []string{dir}, AbandonGrace: 100 * time.Millisecond})
	reg := core.NewRegistry()
	if errs := m.Register(reg); len(errs) > 0 {
		t.Fatal(errs)
	}
	running := make(chan struct{}, 1)
	policy := core.PolicyFunc(func(context.Context, core.CompletionRequest) (core.Completion, error) {
		running <- struct{}{}
		return core.Completion{Choices: []core.Choice{{Text: "The answer is 7."}}}, nil
	})
	eng := core.NewEngine(policy, reg, nil)
	p, _ := m.Plugin("stuck")
	var pids []int
	for i := range 2 {
		// The client gives up once the run is under way in the plugin.
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-running
			cancel()
		}()
		res, err := eng.Solve(ctx, core.Task{Problem: "What is 3 + 4?", Strategy: "stuck"})
		cancel()
		if err == nil && res.Stopped == core.StopDone {
			t.Fatalf("run %d: a hung strategy finished: %+v", i, res)
		}
		p.mu.Lock()
		pid := p.pid // the last process started, restarted or not
		p.mu.Unlock()
		pids = append(pids, pid)
		waitGone(t, pid)
	}
	if pids[0] == pids[1] {
		t.Fatalf("the second run used the first process %d", pids[0])
	}
	if st := p.Status(); st.Starts != 2 {
		t.Fatalf("status %+v", st)
	}
}

// A restart that falls due while calls are in flight happens under a
// steady stream of calls too, which keeps the old process busy for good:
// new calls go to a fresh process at once, and the old one is stopped
// once the calls it has end, none of them cut short.
func TestRestartUnderSteadyCalls(t *testing.T) {
	t.Parallel()
	const grace = 100 * time.Millisecond
	dir := t.TempDir()
	installMode(t, dir, "echo", sdk.KindTool, "tool")
	m, logs := loggedManager(t, Options{Dirs: []string{dir}, AbandonGrace: grace})
	if _, err := callEcho(t, m, "echo", `{"text":"warm"}`); err != nil {
		t.Fatal(err)
	}
	p, _ := m.Plugin("echo")
	old := p.Status().PID

	// The stream: a call every 40 ms, each taking 150 ms, so that some
	// call is always in flight on whichever process serves them.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []error
	var once sync.Once
	end := func() {
		once.Do(func() { close(stop) })
		wg.Wait()
	}
	t.Cleanup(end) // a failed check ends the stream too
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := callEcho(t, m, "echo", `{"sleep_ms":150,"text":"s"}`)
				if err != nil || res.Text != "s" {
					mu.Lock()
					bad = append(bad, fmt.Errorf("%+v, %w", res, err))
					mu.Unlock()
				}
			}()
		}
	}()
	waitFor(t, "the stream's calls in flight", func() bool { return busy(p) > 0 })
	// One call that ignores its cancellation.
	if err := cancelledCall(t, m, `{"hang":true}`, 100*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the hung call: %v", err)
	}
	waitGone(t, old) // while the stream goes on
	if !strings.Contains(logs.String(), "plugin restarted: 1 call(s) still running") {
		t.Errorf("the log does not say why it restarted")
	}
	var fresh int
	waitFor(t, "a fresh process serving the stream", func() bool {
		st := p.Status()
		fresh = st.PID
		return st.State == StateRunning && st.PID != old && busy(p) > 0
	})
	end()
	if len(bad) > 0 {
		t.Fatalf("calls of the stream failed: %v", bad)
	}
	if res, err := callEcho(t, m, "echo", `{"text":"after"}`); err != nil || res.Text != "after" {
		t.Fatalf("after the restart: %+v, %v", res, err)
	}
	if st := p.Status(); st.PID != fresh || st.Starts != 2 {
		t.Fatalf("status %+v; want the one fresh process %d", st, fresh)
	}
}

// Retired processes still finishing their calls are bounded: retiring one
// more than MaxDraining stops the oldest at once, its call with it; the
// others are stopped as their calls end.
func TestDrainingProcessesAreBounded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	installMode(t, dir, "echo", sdk.KindTool, "tool")
	m, _ := loggedManager(t, Options{Dirs: []string{dir}, AbandonGrace: 100 * time.Millisecond})
	p, _ := m.Plugin("echo")
	draining := func() []int {
		p.mu.Lock()
		defer p.mu.Unlock()
		var pids []int
		for _, d := range p.draining {
			pids = append(pids, d.pid)
		}
		return pids
	}
	var pids []int
	var stops []func() error
	for i := range MaxDraining + 1 {
		// A call that runs until it is stopped, on a fresh process, and
		// one that hangs there: the process is retired under the first.
		stops = append(stops, inFlight(t, m, p))
		pids = append(pids, p.Status().PID)
		if err := cancelledCall(t, m, `{"hang":true}`, 100*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("the hung call: %v", err)
		}
		waitFor(t, fmt.Sprintf("process %d to be retired", i+1), func() bool {
			d := draining()
			return len(d) > 0 && d[len(d)-1] == pids[i]
		})
	}
	waitGone(t, pids[0])
	if err := stops[0](); err == nil {
		t.Fatal("the oldest retired process's call survived its stop")
	}
	if d := draining(); len(d) != MaxDraining || !alive(pids[1]) || !alive(pids[2]) {
		t.Fatalf("retired processes %v (started %v); want the last %d, running", d, pids, MaxDraining)
	}
	for i := 1; i < len(pids); i++ {
		if err := stops[i](); !errors.Is(err, context.Canceled) {
			t.Errorf("call %d: %v", i, err)
		}
		waitGone(t, pids[i])
	}
	if d := draining(); len(d) != 0 {
		t.Fatalf("retired processes %v left after their calls ended", d)
	}
}
