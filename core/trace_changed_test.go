package core_test

import (
	"context"
	"testing"

	"github.com/ponder-rlm/ponder/core"
)

// Changed is closed by the next event, also when events came before with
// nobody waiting (the tracer then keeps its channel).
func TestTracerChangedWakesAtTheNextEvent(t *testing.T) {
	t.Parallel()
	tr := core.NewTracer(false)
	tr.Record(core.OpInfo, nil, nil) // nobody waits
	ch := tr.Changed()
	select {
	case <-ch:
		t.Fatal("closed before any event after Changed")
	default:
	}
	tr.Record(core.OpInfo, nil, nil)
	select {
	case <-ch:
	default:
		t.Fatal("not closed by the next event")
	}
	again := tr.Changed()
	if again == ch {
		t.Fatal("a closed channel was handed out again")
	}
	tr.Close()
	<-again
	<-tr.Changed()
}

// The log keeps events in chunks; readers see one gapless sequence from any
// point, across chunk boundaries, before and after Close.
func TestTracerSinceAcrossChunks(t *testing.T) {
	t.Parallel()
	tr := core.NewTracer(false)
	const total = 20000
	for i := 0; i < total; i++ {
		tr.Record(core.OpInfo, []core.NodeID{core.NodeID(i)}, nil)
	}
	for _, from := range []int64{-1, 0, 1, 63, 64, 65, 127, 128, 8191, 8192, 16383, 16384, total - 1, total, total + 5} {
		evs := tr.Since(from)
		start := max(from, 0)
		if want := max(0, total-start); int64(len(evs)) != want {
			t.Fatalf("Since(%d): %d events, want %d", from, len(evs), want)
		}
		for i, e := range evs {
			if e.Seq != start+int64(i)+1 || e.Nodes[0] != core.NodeID(e.Seq-1) {
				t.Fatalf("Since(%d)[%d]: seq %d node %v", from, i, e.Seq, e.Nodes)
			}
		}
	}
	// A finished run's trace holds the whole log in one slice.
	reg := core.NewRegistry()
	reg.RegisterStrategy(core.StrategySpec{Name: "chatty", New: func(core.Params) (core.Strategy, error) {
		return core.StrategyFunc(func(ctx context.Context, env *core.Env) (core.Outcome, error) {
			for i := 0; i < total; i++ {
				env.Tracer.Record(core.OpInfo, nil, nil)
			}
			return core.Outcome{}, nil
		}), nil
	}})
	res, err := core.NewEngine(instantPolicy, reg, &core.EngineOptions{DefaultStrategy: "chatty"}).Solve(t.Context(), core.Task{Problem: "p"})
	if err != nil {
		t.Fatal(err)
	}
	evs := res.Trace.Events
	if len(evs) < total+3 || evs[0].Op != core.OpNode || evs[len(evs)-1].Op != core.OpEnd {
		t.Fatalf("trace of %d events from %s to %s", len(evs), evs[0].Op, evs[len(evs)-1].Op)
	}
	for i, e := range evs {
		if e.Seq != int64(i)+1 {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
	}
}

// Nodes counts the top structure's nodes as they are added, not those of
// nested structures, and matches the structure.
func TestTracerCountsTheTopStructuresNodes(t *testing.T) {
	t.Parallel()
	tr := core.NewTracer(false)
	s := core.NewStructure(core.Tree, "p", tr)
	if got := tr.Nodes(); got != 1 {
		t.Fatalf("a new structure: %d nodes, want the root", got)
	}
	a, _ := s.Add([]core.NodeID{0}, core.Node{Content: "a"})
	_, _ = s.Add([]core.NodeID{a}, core.Node{Content: "b"})
	_ = s.Update(a, func(n *core.Node) { n.Pruned = true }) // an update adds nothing
	sub := core.NewStructure(core.Tree, "sub", tr.Scope(a))
	_, _ = sub.Add([]core.NodeID{0}, core.Node{Content: "nested"})
	if got, want := tr.Nodes(), s.Len(); got != want {
		t.Fatalf("tracer counts %d nodes, the structure has %d", got, want)
	}
}
