package traces_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/traces"
)

func solveInto(t testing.TB, st *traces.Store, problem string) core.Result {
	t.Helper()
	reg := core.NewRegistry()
	reg.RegisterStrategy(core.StrategySpec{Name: "one", New: func(core.Params) (core.Strategy, error) {
		return core.StrategyFunc(func(ctx context.Context, env *core.Env) (core.Outcome, error) {
			ids, err := core.Generate(ctx, env, 0, 2, core.GenerateOptions{Whole: true})
			if err != nil {
				return core.Outcome{}, err
			}
			n := env.Structure.MustNode(ids[0])
			return core.Outcome{Answer: n.Answer, Best: n.ID}, nil
		}), nil
	}})
	pol := core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
		c := core.Completion{}
		for i := 0; i < req.N; i++ {
			c.Choices = append(c.Choices, core.Choice{Text: `\boxed{7}`})
		}
		return c, nil
	})
	eng := core.NewEngine(pol, reg, &core.EngineOptions{OnStart: st.Start, OnEnd: st.Finish, DefaultStrategy: "one"})
	res, err := eng.Solve(t.Context(), core.Task{Problem: problem})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestStoreKeepsFinishedTracesOnDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := traces.Open(dir, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range []string{"a", "b", "c"} {
		ids = append(ids, solveInto(t, st, p).TraceID)
	}
	if got := len(st.List()); got != 2 {
		t.Fatalf("list has %d runs, want the newest 2", got)
	}
	if _, err := st.Get(ids[0]); !errors.Is(err, traces.ErrNotFound) {
		t.Fatalf("oldest trace still readable: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != 2 {
		t.Fatalf("%d trace files on disk, want 2", len(files))
	}
	// A new store over the same directory sees them.
	st2, err := traces.Open(dir, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := st2.Get(ids[2])
	if err != nil {
		t.Fatal(err)
	}
	if tr.Answer != "7" || tr.Structure.Len() != 3 {
		t.Fatalf("reopened trace: answer %q, %d nodes", tr.Answer, tr.Structure.Len())
	}
}

func TestStoreRejectsBadIDsAndFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "0123456789abcdef.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := traces.Open(dir, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.List()) != 0 {
		t.Fatal("a corrupt file was listed")
	}
	for _, id := range []string{"../etc/passwd", "", "0123456789abcdef"} {
		if _, err := st.Get(id); !errors.Is(err, traces.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", id, err)
		}
	}
}

// TestStoreSeesRunsOfOtherProcesses: a run finished by another process
// (ponder solve writing into the same data dir) appears in a store that is
// already open, and a reopened store reads summaries, not whole traces.
func TestStoreSeesRunsOfOtherProcesses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	server, err := traces.Open(dir, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := traces.Open(dir, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Directory modification times have a granularity; make sure the
	// second write is seen as a change.
	time.Sleep(20 * time.Millisecond)
	id := solveInto(t, other, "from another process").TraceID
	if _, err := server.Get(id); err != nil {
		t.Fatalf("open store does not see a run finished elsewhere: %v", err)
	}
	found := false
	for _, s := range server.List() {
		found = found || (s.ID == id && s.Answer == "7")
	}
	if !found {
		t.Fatalf("run %s missing from the list", id)
	}
	// A summary sits beside the trace; a corrupt trace with a good summary
	// is still listed (the summary is what opening reads).
	if _, err := os.Stat(filepath.Join(dir, id+".summary")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, id+".json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	reopened, err := traces.Open(dir, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(reopened.List()) != 1 {
		t.Fatalf("reopened store lists %d runs, want 1", len(reopened.List()))
	}
}

// A running run is listed with the nodes its structure has so far.
func TestStoreListsALiveRunsNodes(t *testing.T) {
	t.Parallel()
	st, err := traces.Open(t.TempDir(), 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	added, release := make(chan struct{}), make(chan struct{})
	reg := core.NewRegistry()
	reg.RegisterStrategy(core.StrategySpec{Name: "wait", New: func(core.Params) (core.Strategy, error) {
		return core.StrategyFunc(func(ctx context.Context, env *core.Env) (core.Outcome, error) {
			for i := 0; i < 3; i++ {
				if _, err := env.Structure.Add([]core.NodeID{0}, core.Node{Content: "step"}); err != nil {
					return core.Outcome{}, err
				}
			}
			close(added)
			<-release
			return core.Outcome{}, nil
		}), nil
	}})
	eng := core.NewEngine(nil, reg, &core.EngineOptions{OnStart: st.Start, OnEnd: st.Finish, DefaultStrategy: "wait"})
	done := make(chan error, 1)
	go func() {
		_, err := eng.Solve(context.Background(), core.Task{Problem: "p"})
		done <- err
	}()
	<-added
	list := st.List()
	close(release)
	if len(list) != 1 || list[0].Status != core.StopRunning || list[0].Usage.Nodes != 3 {
		t.Errorf("live run listed as %+v, want running with 3 nodes (the steps: usage.nodes counts no root)", list)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A server's store forgets the runs another process (ponder solve, keeping
// fewer) evicted: they leave its list, and asking for one is "not found",
// not an unreadable file.
func TestStoreForgetsRunsEvictedElsewhere(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	server, err := traces.Open(dir, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := solveInto(t, server, "kept by the server").TraceID
	other, err := traces.Open(dir, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // directory times have a granularity
	newest := solveInto(t, other, "evicts the server's run").TraceID
	if _, err := os.Stat(filepath.Join(dir, old+".json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the other store did not evict %s: %v", old, err)
	}
	if _, err := server.Get(old); !errors.Is(err, traces.ErrNotFound) {
		t.Fatalf("Get(evicted) = %v, want ErrNotFound", err)
	}
	list := server.List()
	if len(list) != 1 || list[0].ID != newest {
		t.Fatalf("server lists %+v, want only %s", list, newest)
	}
}

// A trace that cannot be written is not listed, leaves no summary behind,
// evicts none of the traces kept, and the store says why it was not kept.
func TestStoreUnsavedTraceKeepsTheOthers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := traces.Open(dir, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	kept := solveInto(t, st, "saved").TraceID
	// A trace that cannot be encoded fails to write as a full disk does.
	bad := &core.Trace{Schema: core.TraceSchema, ID: core.NewTraceID(), Problem: "p", Started: time.Now(),
		Usage: core.Usage{WallMS: math.NaN()}}
	st.Finish(bad)
	if err := st.SaveError(bad.ID); err == nil {
		t.Fatal("SaveError is nil for a trace that was not written")
	}
	if st.SaveError(kept) != nil {
		t.Fatal("SaveError set for a saved trace")
	}
	if list := st.List(); len(list) != 1 || list[0].ID != kept {
		t.Fatalf("list %+v, want only the saved run %s", list, kept)
	}
	if _, err := st.Get(kept); err != nil {
		t.Fatalf("the saved trace was evicted by one that was not saved: %v", err)
	}
	if _, err := st.Get(bad.ID); !errors.Is(err, traces.ErrNotFound) || !strings.Contains(err.Error(), "not saved") {
		t.Fatalf("Get(unsaved) = %v, want not found, saying it was not saved", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 2 {
		t.Fatalf("files %v, want the saved trace and its summary", files)
	}
}

// A store whose directory is removed while it runs (an operator clearing
// old traces) makes it again at the next finished run: every later run of
// the server was lost until a restart. So does one whose directory could
// not be made at Open (its disk not there yet, here a link to a folder
// that does not exist), once it can be.
func TestStoreMakesItsDirectoryAgain(t *testing.T) {
	t.Parallel()
	gone := filepath.Join(t.TempDir(), "traces")
	st, err := traces.Open(gone, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(gone); err != nil {
		t.Fatal(err)
	}
	id := solveInto(t, st, "its folder was removed").TraceID
	if err := st.SaveError(id); err != nil {
		t.Fatalf("SaveError = %v after the directory was removed, want it made again", err)
	}
	if _, err := st.Get(id); err != nil {
		t.Fatalf("Get: %v", err)
	}

	root := t.TempDir()
	target := filepath.Join(root, "disk")
	if err := os.Symlink(target, filepath.Join(root, "mnt")); err != nil {
		t.Fatal(err)
	}
	st2, err := traces.Open(filepath.Join(root, "mnt", "traces"), 10, nil)
	if err != nil {
		t.Fatalf("Open: %v, want a store that keeps nothing yet", err)
	}
	early := solveInto(t, st2, "before the disk").TraceID
	if err := st2.SaveError(early); err == nil {
		t.Fatal("SaveError is nil for a run finished while the directory could not be made")
	}
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	late := solveInto(t, st2, "after the disk").TraceID
	if err := st2.SaveError(late); err != nil {
		t.Fatalf("SaveError = %v once the directory can be made", err)
	}
	if list := st2.List(); len(list) != 1 || list[0].ID != late {
		t.Fatalf("list %+v, want the run saved once the directory could be made", list)
	}
	if _, err := os.Stat(filepath.Join(target, "traces", late+".json")); err != nil {
		t.Fatal(err)
	}
}

// A data directory that cannot be created (a read-only disk) does not stop
// runs: they run, and each says it was not kept.
func TestStoreOnAnUncreatableDirectoryStillRuns(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self"); err != nil {
		t.Skip("needs /proc: a directory nobody can create in")
	}
	st, err := traces.Open("/proc/ponder-no-such-dir/traces", 10, nil)
	if err != nil {
		t.Fatalf("Open: %v, want a store that keeps nothing", err)
	}
	res := solveInto(t, st, "still answers")
	if res.Answer != "7" {
		t.Fatalf("answer %q", res.Answer)
	}
	if err := st.SaveError(res.TraceID); err == nil || !strings.Contains(err.Error(), "/proc/ponder-no-such-dir") {
		t.Fatalf("SaveError = %v, want why the directory could not be made", err)
	}
	// An existing directory that cannot be read is still an error.
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := traces.Open(filepath.Join(f, "traces"), 10, nil); err == nil {
		t.Fatal("Open under a regular file succeeded")
	}
}

// Leftovers of writes that never ended (a killed process) are removed once
// they are old; young ones may be another process's write in progress.
func TestStoreRemovesStaleLeftovers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old := time.Now().Add(-2 * time.Hour)
	for _, name := range []string{".trace-123", "0123456789abcdef.summary", ".trace-456", "fedcba9876543210.summary"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
		if name == ".trace-123" || name == "0123456789abcdef.summary" {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := traces.Open(dir, 10, nil); err != nil {
		t.Fatal(err)
	}
	var left []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if len(left) != 2 || left[0] != ".trace-456" || left[1] != "fedcba9876543210.summary" {
		t.Fatalf("left %v, want only the young leftovers", left)
	}
}

// A damaged trace file is reported as damaged, not as missing.
func TestStoreGetSaysATraceIsDamaged(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "0123456789abcdef.json"), []byte(`{"schema":"ponder.tr`), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := traces.Open(dir, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get("0123456789abcdef"); !errors.Is(err, traces.ErrDamaged) {
		t.Fatalf("Get = %v, want ErrDamaged", err)
	}
}

// A running run's trace (get_trace, ponder://traces, the viewer's
// /api/runs/{id}) has the usage so far, counted as the engine counts it:
// it said 0 LLM calls whatever the run had done.
func TestLiveTraceHasItsUsageSoFar(t *testing.T) {
	t.Parallel()
	st, err := traces.Open(t.TempDir(), 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	used, release := make(chan core.Usage), make(chan struct{})
	reg := core.NewRegistry()
	reg.RegisterStrategy(core.StrategySpec{Name: "sub", New: func(core.Params) (core.Strategy, error) {
		return core.StrategyFunc(func(ctx context.Context, env *core.Env) (core.Outcome, error) {
			_, err := core.Generate(ctx, env, 0, 1, core.GenerateOptions{Whole: true})
			return core.Outcome{}, err
		}), nil
	}})
	reg.RegisterStrategy(core.StrategySpec{Name: "wait", New: func(core.Params) (core.Strategy, error) {
		return core.StrategyFunc(func(ctx context.Context, env *core.Env) (core.Outcome, error) {
			ids, err := core.Generate(ctx, env, 0, 3, core.GenerateOptions{Whole: true})
			if err != nil {
				return core.Outcome{}, err
			}
			if _, err := env.Complete(ctx, core.CompletionRequest{N: 2, Purpose: "fail"}); err == nil {
				return core.Outcome{}, errors.New("the failing call succeeded")
			}
			if _, err := env.SolveSub(ctx, ids[0], core.Task{Problem: "sub", Strategy: "sub"}); err != nil {
				return core.Outcome{}, err
			}
			used <- env.Budget.Used()
			<-release
			return core.Outcome{}, nil
		}), nil
	}})
	pol := core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
		if req.Purpose == "fail" {
			return core.Completion{}, errors.New("the endpoint failed")
		}
		c := core.Completion{PromptTokens: 11, CompletionTokens: 5}
		for i := 0; i < req.N; i++ {
			c.Choices = append(c.Choices, core.Choice{Text: `\boxed{7}`})
		}
		return c, nil
	})
	eng := core.NewEngine(pol, reg, &core.EngineOptions{OnStart: st.Start, OnEnd: st.Finish, DefaultStrategy: "wait"})
	done := make(chan core.Result, 1)
	go func() {
		res, _ := eng.Solve(context.Background(), core.Task{Problem: "p"})
		done <- res
	}()
	want := <-used
	list := st.List()
	live, err := st.Get(list[0].ID)
	close(release)
	res := <-done
	if err != nil {
		t.Fatal(err)
	}
	got := live.Usage
	if got.WallMS <= 0 {
		t.Errorf("live wall_ms %v", got.WallMS)
	}
	got.WallMS, want.WallMS = 0, 0
	if got != want || got.LLMCalls != 4 || got.Requests != 2 || got.Nodes != 4 {
		t.Errorf("live trace usage %+v, want %+v (4 samples in 2 requests, 4 nodes)", got, want)
	}
	if fin := res.Usage; fin.WallMS > 0 {
		fin.WallMS = 0
		if fin != want {
			t.Errorf("finished usage %+v, want what the live trace had, %+v", fin, want)
		}
	}
}

// A trace whose id is no trace id (one read from a file someone sent:
// `ponder trace view` of a trace with "id": "../../x") is not written: its
// id named the files, and the trace landed outside the store.
func TestStoreFinishRefusesIDsThatAreNoTraceIDs(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := filepath.Join(root, "a", "b")
	st, err := traces.Open(dir, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"../../x", "../escape", "/abs", "ABCDEF0123456789", ""} {
		st.Finish(&core.Trace{ID: id, Problem: "p", Structure: core.NewStructure(core.Tree, "p", nil)})
	}
	var written []string
	_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			written = append(written, path)
		}
		return nil
	})
	if len(written) != 0 || len(st.List()) != 0 {
		t.Errorf("wrote %q and lists %d runs; want nothing", written, len(st.List()))
	}
}

// A running run is listed with the calls and tokens it has spent so far
// (the viewer's runs list showed "0 calls · 0 tok" for every running run).
func TestStoreListsALiveRunsUsage(t *testing.T) {
	t.Parallel()
	st, err := traces.Open(t.TempDir(), 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	called, release := make(chan struct{}), make(chan struct{})
	reg := core.NewRegistry()
	reg.RegisterStrategy(core.StrategySpec{Name: "call-then-wait", New: func(core.Params) (core.Strategy, error) {
		return core.StrategyFunc(func(ctx context.Context, env *core.Env) (core.Outcome, error) {
			if _, err := core.Generate(ctx, env, 0, 3, core.GenerateOptions{}); err != nil {
				return core.Outcome{}, err
			}
			close(called)
			<-release
			return core.Outcome{}, nil
		}), nil
	}})
	pol := core.PolicyFunc(func(_ context.Context, req core.CompletionRequest) (core.Completion, error) {
		c := core.Completion{PromptTokens: 10, CompletionTokens: 5}
		for i := 0; i < req.N; i++ {
			c.Choices = append(c.Choices, core.Choice{Text: "step"})
		}
		return c, nil
	})
	eng := core.NewEngine(pol, reg, &core.EngineOptions{OnStart: st.Start, OnEnd: st.Finish, DefaultStrategy: "call-then-wait"})
	done := make(chan error, 1)
	go func() {
		_, err := eng.Solve(context.Background(), core.Task{Problem: "p"})
		done <- err
	}()
	<-called
	list := st.List()
	close(release)
	if len(list) != 1 || list[0].Usage.LLMCalls != 3 || list[0].Usage.PromptTokens != 10 || list[0].Usage.CompletionTokens != 5 || list[0].Usage.Nodes != 3 {
		t.Errorf("live run listed with usage %+v, want 3 calls, 10+5 tokens, 3 nodes", list[0].Usage)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
