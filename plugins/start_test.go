package plugins

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/sdk"
)

// TestSlowStartOutlivesImpatientCallers: a plugin that takes longer to
// start (slowStart) than any of its callers waits becomes ready after its
// first start: callers give up on their own deadline while the start goes
// on, and later calls use the process it started.
func TestSlowStartOutlivesImpatientCallers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	installMode(t, dir, "echo", sdk.KindTool, "tool-slow-start")
	m := newTestManager(t, Options{Dirs: []string{dir}, StartTimeout: 20 * time.Second})
	p, _ := m.Plugin("echo")
	tool := m.Tools()[0]
	const wait = 100 * time.Millisecond
	call := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_, err := tool.Call(ctx, []byte(`{"text":"hi"}`))
		return err
	}

	// Callers that wait together for the first start: each returns on its
	// own deadline, while the start is still in progress.
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { errs[i] = call() })
	}
	wg.Wait()
	p.mu.Lock()
	inProgress, starts := p.starting != nil, p.starts
	p.mu.Unlock()
	if !inProgress || starts != 0 {
		t.Fatalf("the callers returned at the start's end (in progress %v, starts %d), not on their deadline", inProgress, starts)
	}
	for i, err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "plugin echo: gave up waiting for the plugin to start") {
			t.Errorf("caller %d: %v, want its own deadline, waiting for the start", i, err)
		}
	}

	// Every call keeps its short deadline: one made once the start ended
	// finds the plugin ready.
	deadline := time.Now().Add(15 * time.Second)
	for err := call(); err != nil; err = call() {
		if !errors.Is(err, context.DeadlineExceeded) || time.Now().After(deadline) {
			t.Fatalf("the plugin never became ready for callers that wait %s: %v (status %+v)", wait, err, p.Status())
		}
		time.Sleep(wait / 2)
	}
	st := p.Status()
	p.mu.Lock()
	crashes := p.crashes
	p.mu.Unlock()
	if st.State != StateRunning || st.Starts != 1 || st.Restarts != 0 || st.Error != "" || crashes != 0 {
		t.Fatalf("after the slow start: %+v, %d failures; want one start, no failure", st, crashes)
	}
}

// TestStartFailureCountsWhoeverWaits: a start that fails (here: no
// handshake within StartTimeout) counts as a failure, with backoff, also
// when the caller that began it gave up first; a caller waiting for it
// gets its error.
func TestStartFailureCountsWhoeverWaits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	installMode(t, dir, "echo", sdk.KindTool, "tool-slow-start")
	m := newTestManager(t, Options{Dirs: []string{dir}, StartTimeout: 300 * time.Millisecond})
	p, _ := m.Plugin("echo")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.Remote(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("impatient caller: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.Status().State != StateFailed {
		if time.Now().After(deadline) {
			t.Fatalf("the abandoned start did not fail: %+v", p.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := p.Status(); !strings.Contains(st.Error, "did not answer the plugin handshake within 300ms") {
		t.Fatalf("status after the failed start: %+v", st)
	}
	// The first retry is immediate; the caller waits for it and gets its
	// failure.
	if _, err := p.Remote(context.Background()); !errors.Is(err, ErrNotPlugin) {
		t.Fatalf("second start: %v", err)
	}
	// Two failures in a row: the next start waits its backoff.
	if _, err := p.Remote(context.Background()); !errors.Is(err, sdk.ErrUnavailable) || !strings.Contains(err.Error(), "2 failures in a row") {
		t.Fatalf("within the backoff: %v", err)
	}
}

// TestCloseStopsAStartInProgress: Close stops a plugin that is still
// starting (here: one that never gets to its handshake) without waiting
// for StartTimeout, and the caller waiting for it is told.
func TestCloseStopsAStartInProgress(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	man := installMode(t, dir, "echo", sdk.KindTool, "tool-stuck-start")
	m := newTestManager(t, Options{Dirs: []string{dir}, StartTimeout: time.Minute})
	p, _ := m.Plugin("echo")
	got := make(chan error, 1)
	go func() {
		_, err := p.Remote(context.Background())
		got <- err
	}()
	pid := waitProcess(t, man.Path())
	closed := make(chan struct{})
	go func() {
		m.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close waits for the start to time out instead of stopping it")
	}
	waitGone(t, pid)
	if err := <-got; err == nil || !strings.Contains(err.Error(), "shutting down") {
		t.Fatalf("the caller waiting for the start: %v", err)
	}
	if st := p.Status(); st.State != StateClosed {
		t.Fatalf("after Close: %+v", st)
	}
}

// waitProcess returns the pid of the process running path (its argv[0]),
// waiting for it to start.
func waitProcess(t *testing.T, path string) int {
	t.Helper()
	want := []byte(path + "\x00")
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, f := range procs {
			b, err := os.ReadFile(f)
			if err != nil || !bytes.HasPrefix(b, want) {
				continue
			}
			if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(f))); err == nil && alive(pid) {
				return pid
			}
		}
	}
	t.Fatalf("no process runs %s", path)
	return 0
}
