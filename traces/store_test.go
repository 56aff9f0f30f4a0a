package traces_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/traces"
)

func solveInto(t *testing.T, st *traces.Store, problem string) core.Result {
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
	if len(list) != 1 || list[0].Status != core.StopRunning || list[0].Usage.Nodes != 4 {
		t.Errorf("live run listed as %+v, want running with 4 nodes (root and 3 steps)", list)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
