package strategy

import (
	"math"
	"testing"

	"github.com/ponder-rlm/ponder/core"
)

// x1's defaults: c1 1.25, c2 19652, γ 0.96, lr_td 1, values in [-1, 1].
func x1Defaults(t *testing.T, p core.Params) mcts {
	t.Helper()
	rp, err := core.Resolve(mctsSpec().Params, p)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newMCTS(rp)
	if err != nil {
		t.Fatal(err)
	}
	return s.(mcts)
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

func TestMCTSSelectionScoreByHand(t *testing.T) {
	t.Parallel()
	m := x1Defaults(t, nil)
	tests := []struct {
		name      string
		np, n     int
		q, want   float64
		explained string
	}{
		// norm(0.5) = 0.75; sqrt(4)/3 · (1.25 + ln(19657/19652)) = 0.8335029...
		{"visited child", 5, 2, 0.5, 1.5835029297795065, "0.75 + 2/3·1.2502544"},
		// norm(-0.2) = 0.4; sqrt(4)/2 · 1.2502544 = 1.2502544
		{"less visited, lower value", 5, 1, -0.2, 1.6502543946692598, "0.4 + 1·1.2502544"},
		// A parent visited once explores nothing: sqrt(0) = 0.
		{"parent visited once", 1, 1, 0.3, 0.65, "norm only"},
		{"parent never visited", 0, 1, 0.9, 0.95, "sqrt clipped at 0"},
	}
	for _, tt := range tests {
		if got := m.selectionScore(tt.np, tt.n, tt.q); !near(got, tt.want) {
			t.Errorf("%s: score(N=%d, N_i=%d, Q=%v) = %.16g, want %.16g (%s)", tt.name, tt.np, tt.n, tt.q, got, tt.want, tt.explained)
		}
	}
	// The exploration constants matter: c1 = 0 leaves (almost) the value.
	m0 := x1Defaults(t, core.Params{"c1": 0.0})
	want := 0.75 + 2.0/3*math.Log(19657.0/19652)
	if got := m0.selectionScore(5, 2, 0.5); !near(got, want) {
		t.Errorf("c1 = 0: score %.16g, want %.16g", got, want)
	}
	// Another value range normalises differently.
	mr := x1Defaults(t, core.Params{"value_min": 0.0, "value_max": 10.0})
	if got, want := mr.normalize(2.5), 0.25; !near(got, want) {
		t.Errorf("norm over [0, 10] of 2.5 = %v, want %v", got, want)
	}
}

func TestMCTSPickFollowsTheScoreAndTiesGoFirst(t *testing.T) {
	t.Parallel()
	m := x1Defaults(t, nil)
	parent := &mnode{n: 5}
	a := &mnode{id: 1, parent: parent, n: 2, q: 0.5}
	b := &mnode{id: 2, parent: parent, n: 1, q: -0.2}
	parent.children = []*mnode{a, b}
	all := func(*mnode) bool { return true }
	if got := m.pick(parent, all); got != b {
		t.Fatalf("picked node %d, want 2 (1.6503 > 1.5835)", got.id)
	}
	// Equal scores: the first child, as torch.argmax.
	c := &mnode{id: 3, parent: parent, n: 1, q: -0.2}
	parent.children = []*mnode{c, b}
	if got := m.pick(parent, all); got != c {
		t.Fatalf("tie went to node %d, want the first (3)", got.id)
	}
	// A virtual loss on a: N 2 → 3, Q (0.5·2 − 1)/3 = 0; parent N 5 → 6.
	parent.children = []*mnode{a, b}
	a.vl, parent.vl = 1, 1
	na, qa := m.effective(a)
	if na != 3 || !near(qa, 0) {
		t.Fatalf("effective stats with a virtual loss: N %v Q %v, want 3 and 0", na, qa)
	}
	np, _ := m.effective(parent)
	if sa, sb := m.selectionScoreF(np, na, qa), m.selectionScoreF(np, 1, -0.2); !near(sa, 1.1989418917599486) || !near(sb, 1.797883783519897) {
		t.Fatalf("scores with a virtual loss: %.16g %.16g", sa, sb)
	}
	// The descent without virtual losses ignores them.
	a.vl, parent.vl = 0, 0
	if got := m.pick(parent, func(c *mnode) bool { return c != b }); got != a {
		t.Fatal("pick ignored its filter")
	}
}

func TestMCTSBackupByHand(t *testing.T) {
	t.Parallel()
	build := func() (root, parent, leaf *mnode) {
		root = &mnode{n: 4, q: 0.1}
		parent = &mnode{parent: root, n: 3, q: 0.3}
		sib := &mnode{parent: root, n: 1, q: -0.5}
		root.children = []*mnode{parent, sib}
		leaf = &mnode{parent: parent, n: 1, q: 0.7}
		other := &mnode{parent: parent, n: 3, q: 0.8}
		parent.children = []*mnode{leaf, other}
		leaf.children = []*mnode{{parent: leaf, n: 1, q: 0.5}, {parent: leaf, n: 1, q: -1}}
		return
	}
	// lr_td = 1, γ = 0.96:
	//   leaf:   Q = 0.96·(1·0.5 + 1·(−1))/2          = −0.24,   N 1 → 2
	//   parent: Q = 0.96·(2·(−0.24) + 3·0.8)/5       = 0.36864, N 3 → 4
	//   root:   Q = 0.96·(4·0.36864 + 1·(−0.5))/5    = 0.18711552, N 4 → 5
	root, parent, leaf := build()
	m := x1Defaults(t, nil)
	touched := m.backup(leaf, nil)
	if len(touched) != 3 || touched[0] != leaf || touched[2] != root {
		t.Fatalf("backup touched %d nodes, want leaf, parent, root", len(touched))
	}
	for _, c := range []struct {
		name string
		s    *mnode
		q    float64
		n    int
	}{{"leaf", leaf, -0.24, 2}, {"parent", parent, 0.96 * (2*-0.24 + 3*0.8) / 5, 4}, {"root", root, 0.96 * (4*0.36864 - 0.5) / 5, 5}} {
		if !near(c.s.q, c.q) || c.s.n != c.n {
			t.Errorf("%s: Q %.16g N %d, want Q %.16g N %d", c.name, c.s.q, c.s.n, c.q, c.n)
		}
	}
	if !near(root.q, 0.18711552) {
		t.Errorf("root Q %.12g, want 0.18711552", root.q)
	}
	// lr_td = 0.5 keeps half of the old Q: leaf −0.24·0.5 + 0.7·0.5 = 0.23,
	// parent 0.5·0.3 + 0.5·0.96·(2·0.23 + 3·0.8)/5 = 0.42456.
	_, parent, leaf = build()
	m = x1Defaults(t, core.Params{"lr_td": 0.5})
	m.backup(leaf, nil)
	if !near(leaf.q, 0.23) || !near(parent.q, 0.42456) {
		t.Errorf("lr_td 0.5: leaf Q %.16g parent Q %.16g, want 0.23 and 0.42456", leaf.q, parent.q)
	}
	// γ = 1 and lr_td = 1: the visit-weighted mean of the children.
	_, _, leaf = build()
	m = x1Defaults(t, core.Params{"gamma": 1.0})
	m.backup(leaf, nil)
	if !near(leaf.q, -0.25) {
		t.Errorf("γ 1: leaf Q %v, want −0.25", leaf.q)
	}
}

func TestMCTSFinalRules(t *testing.T) {
	t.Parallel()
	root := &mnode{n: 10}
	// a: visited most, lower Q; b: fewer visits, best Q; c: barely visited.
	a := &mnode{id: 1, parent: root, n: 6, q: 0.2}
	b := &mnode{id: 2, parent: root, n: 3, q: 0.6}
	c := &mnode{id: 3, parent: root, n: 1, q: -0.9}
	root.children = []*mnode{a, b, c}
	// x1's rule: selection scores at N = 10: a 0.6 + 3/7·1.2504579 = 1.1359,
	// b 0.8 + 3/4·1.2504579 = 1.7378, c 0.05 + 3/2·1.2504579 = 1.9257.
	for rule, want := range map[string]*mnode{FinalX1: c, FinalMaxVisits: a, FinalMaxQ: b} {
		m := x1Defaults(t, core.Params{"final": rule})
		if got := m.finalPath(root); got != want {
			t.Errorf("rule %s picked node %d, want %d", rule, got.id, want.id)
		}
	}
}

func TestMCTSSelectableTerminals(t *testing.T) {
	t.Parallel()
	no, yes := false, true
	wrong := &mnode{terminal: true, correct: &no}
	right := &mnode{terminal: true, correct: &yes}
	unknown := &mnode{terminal: true}
	for rule, want := range map[string][3]bool{
		StopOnTerminal:    {false, true, true},
		StopOnAnyTerminal: {true, true, true},
		StopOnCorrect:     {false, false, false},
		StopOnNone:        {false, false, false},
	} {
		m := x1Defaults(t, core.Params{"stop_on": rule})
		got := [3]bool{m.selectable(wrong), m.selectable(right), m.selectable(unknown)}
		if got != want {
			t.Errorf("stop_on %s: selectable (wrong, right, unverified) = %v, want %v", rule, got, want)
		}
	}
}
