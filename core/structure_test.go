package core_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ponder-rlm/ponder/core"
)

func TestStructureShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		kind    core.StructureKind
		adds    [][]core.NodeID // parents of each new node, in order
		wantErr []string        // "" for success
	}{
		{"chain grows one successor", core.Chain, [][]core.NodeID{{0}, {1}, {0}}, []string{"", "", "already has a successor"}},
		{"tree branches", core.Tree, [][]core.NodeID{{0}, {0}, {1}, {1, 2}}, []string{"", "", "", "one parent"}},
		{"graph aggregates", core.Graph, [][]core.NodeID{{0}, {0}, {1, 2}}, []string{"", "", ""}},
		{"missing parent", core.Tree, [][]core.NodeID{{5}}, []string{"does not exist"}},
		{"no parent", core.Graph, [][]core.NodeID{{}}, []string{"no parent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := core.NewStructure(tt.kind, "problem", nil)
			for i, parents := range tt.adds {
				_, err := s.Add(parents, core.Node{Content: "x"})
				if tt.wantErr[i] == "" && err != nil {
					t.Fatalf("add #%d: %v", i, err)
				}
				if tt.wantErr[i] != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr[i])) {
					t.Fatalf("add #%d: err = %v, want %q", i, err, tt.wantErr[i])
				}
			}
		})
	}
}

func TestStructurePathDepthAndUpdate(t *testing.T) {
	t.Parallel()
	s := core.NewStructure(core.Graph, "p", nil)
	a, _ := s.Add([]core.NodeID{0}, core.Node{Content: "a"})
	b, _ := s.Add([]core.NodeID{0}, core.Node{Content: "b"})
	c, _ := s.Add([]core.NodeID{a}, core.Node{Content: "c"})
	agg, _ := s.Add([]core.NodeID{b, c}, core.Node{Content: "merge", Kind: core.KindAggregate})
	if n := s.MustNode(agg); n.Depth != 3 {
		t.Fatalf("aggregate depth = %d, want 1 + deepest parent (2)", n.Depth)
	}
	var got []string
	for _, n := range s.Path(agg) {
		got = append(got, n.Content)
	}
	if strings.Join(got, ">") != "p>b>merge" {
		t.Fatalf("path follows first parents: got %v", got)
	}
	// Update may not rewire the structure.
	_ = s.Update(c, func(n *core.Node) { n.ID = 99; n.Parents = nil; n.Value = 0.5 })
	n := s.MustNode(c)
	if n.ID != c || len(n.Parents) != 1 || n.Value != 0.5 {
		t.Fatalf("update rewired the node: %+v", n)
	}
	// Copies are independent of the structure.
	n.Scores = map[string]float64{"value": 1}
	if _, ok := s.MustNode(c).Score(); ok {
		t.Fatal("changing a copy changed the structure")
	}
	if leaves := s.Leaves(); len(leaves) != 1 || leaves[0] != agg {
		t.Fatalf("leaves = %v, want [%d]", leaves, agg)
	}
}

func TestNodeScorePrecedence(t *testing.T) {
	t.Parallel()
	n := core.Node{Scores: map[string]float64{core.ScoreValue: 0.1, core.ScorePRM: 0.2}}
	if s, _ := n.Score(); s != 0.2 {
		t.Fatalf("score = %v, want the PRM's over the value's", s)
	}
	n.Scores[core.ScoreVerifier] = -1
	if s, _ := n.Score(); s != -1 {
		t.Fatalf("score = %v, want the verifier's", s)
	}
}

func TestExtractAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{`so \boxed{72}.`, "72"},
		{`\boxed{\frac{1}{2}} and later \boxed{\left( 3, \frac{\pi}{2} \right)}`, `\left( 3, \frac{\pi}{2} \right)`},
		{"work\n#### 1,234", "1,234"},
		{"The final answer is 18.", "18"},
		{"no answer here 12", ""},
		{"ANSWER: 7", "7"},
		{"The Answer = 3/4.", "3/4"},
		{"anſwer: 9", "9"}, // the expression's case folding takes ſ for s; the quick scan must not rule it out
		{"answered nothing", ""},
	}
	for _, tt := range tests {
		got, _ := core.ExtractAnswer(tt.in)
		if got != tt.want {
			t.Errorf("ExtractAnswer(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	nums := []struct{ in, want string }{{"$1,234.50", "1234.5"}, {"-3", "-3"}, {"7/2 cups", "7/2"}, {"10.0", "10"}}
	for _, tt := range nums {
		if got, _ := core.ExtractNumber(tt.in); got != tt.want {
			t.Errorf("ExtractNumber(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestResolveParams(t *testing.T) {
	t.Parallel()
	specs := []core.ParamSpec{
		{Name: "k", Type: core.ParamInt, Default: int64(4), Min: core.Bound(1)},
		{Name: "c1", Type: core.ParamFloat, Default: 1.25, Min: core.Bound(0)},
		{Name: "rule", Type: core.ParamString, Default: "x1", Enum: []string{"x1", "visits", "q"}},
		{Name: "rollouts", Type: core.ParamBool},
	}
	p, err := core.Resolve(specs, core.Params{"k": "16", "rollouts": "true"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Int("k") != 16 || p.Float("c1") != 1.25 || p.String("rule") != "x1" || !p.Bool("rollouts") {
		t.Fatalf("resolved = %v", p)
	}
	for _, bad := range []core.Params{{"k": "-1"}, {"c1": "-0.5"}, {"rule": "best"}, {"k": 1.5}, {"zz": 1}} {
		if _, err := core.Resolve(specs, bad); err == nil {
			t.Errorf("Resolve(%v) accepted bad input", bad)
		}
	}
}

// A value of the wrong type is named as the user wrote it, in JSON or on a
// command line: the errors said "got json.Number", "got <nil>" and "got
// map[string]interface {}".
func TestResolveNamesWrongValuesAsWritten(t *testing.T) {
	t.Parallel()
	specs := []core.ParamSpec{
		{Name: "widen", Type: core.ParamBool},
		{Name: "c1", Type: core.ParamFloat},
		{Name: "k", Type: core.ParamInt},
		{Name: "rule", Type: core.ParamString},
		{Name: "timeout", Type: core.ParamDuration},
	}
	for _, c := range []struct {
		p    core.Params
		want string
	}{
		{core.Params{"widen": json.Number("1")}, `invalid parameter "widen": want true or false, got 1`},
		{core.Params{"c1": nil}, `invalid parameter "c1": want a number, got null`},
		{core.Params{"k": map[string]any{"a": 1}}, `invalid parameter "k": want an integer, got an object`},
		{core.Params{"rule": []any{"x1"}}, `invalid parameter "rule": want a string, got an array`},
		{core.Params{"rule": 3.5}, `invalid parameter "rule": want a string, got 3.5`},
		{core.Params{"timeout": true}, `invalid parameter "timeout": want a duration, got true`},
	} {
		if _, err := core.Resolve(specs, c.p); err == nil || err.Error() != c.want {
			t.Errorf("Resolve(%v): got %v, want %s", c.p, err, c.want)
		}
	}
}

func TestStatsEventsReplayAndRejectMissingNodes(t *testing.T) {
	t.Parallel()
	tr := core.NewTracer(false)
	s := core.NewStructure(core.Tree, "problem", tr)
	a, _ := s.Add([]core.NodeID{0}, core.Node{Content: "a"})
	b, _ := s.Add([]core.NodeID{a}, core.Node{Content: "b"})
	if err := s.SetStatsBatch([]core.NodeStats{{ID: b, Value: 0.5, Visits: 2}, {ID: a, Value: 0.25, Visits: 3}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStatsBatch([]core.NodeStats{{ID: a, Value: 9, Visits: 9}, {ID: 42}}); err == nil || !strings.Contains(err.Error(), "node 42 does not exist") {
		t.Fatalf("stats for a missing node: err %v", err)
	}
	if n := s.MustNode(a); n.Value != 0.25 || n.Visits != 3 {
		t.Fatalf("a rejected batch changed node %d: Q %v N %d", a, n.Value, n.Visits)
	}
	if err := s.SetStats(0, -1, 4); err != nil {
		t.Fatal(err)
	}
	evs := tr.Since(0)
	if last := evs[len(evs)-1]; last.Op != core.OpStats || last.Node != nil || len(last.Stats) != 1 {
		t.Fatalf("last event %+v: want one stats entry and no node state", last)
	}
	replayed, err := core.Replay(core.Tree, evs)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range s.Nodes() {
		got := replayed.MustNode(want.ID)
		if got.Value != want.Value || got.Visits != want.Visits || got.Content != want.Content {
			t.Errorf("replayed node %d: Q %v N %d %q, want Q %v N %d %q", want.ID, got.Value, got.Visits, got.Content, want.Value, want.Visits, want.Content)
		}
	}
}

// The events of concurrent changes are in the order the changes were made,
// so Replay rebuilds the final structure: concurrent adds were recorded out
// of order ("adds node 12, want 11", seen in a tot-bfs run), and concurrent
// updates of one node replayed to a stale state.
func TestConcurrentChangesReplayExactly(t *testing.T) {
	t.Parallel()
	for round := 0; round < 50; round++ {
		tr := core.NewTracer(false)
		st := core.NewStructure(core.Tree, "p", tr)
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Go(func() {
				for i := 0; i < 20; i++ {
					id, err := st.Add([]core.NodeID{0}, core.Node{Content: fmt.Sprint(g, i)})
					if err != nil {
						t.Error(err)
						return
					}
					_ = st.Update(0, func(n *core.Node) { n.Content = fmt.Sprint("root by ", g) })
					_ = st.SetStatsBatch([]core.NodeStats{{ID: 0, Value: float64(g), Visits: g + i}, {ID: id, Value: 1, Visits: 1}})
				}
			})
		}
		wg.Wait()
		tr.Close()
		rep, err := core.Replay(core.Tree, tr.Since(0))
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		a, _ := json.Marshal(rep)
		b, _ := json.Marshal(st)
		if string(a) != string(b) {
			t.Fatalf("round %d: the replayed structure differs from the final one", round)
		}
	}
}
