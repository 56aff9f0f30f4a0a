package traces_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

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
