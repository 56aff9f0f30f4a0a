package ui_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/server/ui"
	"github.com/ponder-rlm/ponder/server/ui/uitest"
	"github.com/ponder-rlm/ponder/traces"
)

// bigTrace builds an MCTS-shaped trace of n nodes the way a search would:
// a real structure recording into a real tracer, an llm_call per
// expansion, node and update events, scores and visits.
func bigTrace(n int, seed uint64) *core.Trace {
	rng := rand.New(rand.NewPCG(seed, 7))
	tr := core.NewTracer(true)
	st := core.NewStructure(core.Tree, "Use 4 9 10 13 and + - * / to make 24.", tr)
	open := []core.NodeID{0}
	for st.Len() < n {
		i := rng.IntN(len(open))
		parent := open[i]
		if pn := st.MustNode(parent); pn.Depth >= 12 {
			continue
		}
		k := 2 + rng.IntN(3)
		texts := make([]string, k)
		for j := range texts {
			texts[j] = fmt.Sprintf("Try %d %s %d = %d, which leaves the numbers %d and %d to combine next; check whether they reach 24 before going deeper.",
				rng.IntN(13), []string{"+", "-", "*", "/"}[rng.IntN(4)], rng.IntN(13), rng.IntN(40), rng.IntN(13), rng.IntN(13))
		}
		tr.Record(core.OpLLMCall, nil, map[string]any{"purpose": "generate", "n": k, "ms": 12.5,
			"messages":  []core.Message{{Role: "system", Content: "You solve Game of 24."}, {Role: "user", Content: strings.Repeat("Steps so far. ", 30)}},
			"responses": texts, "prompt_tokens": 120, "completion_tokens": 40 * k})
		for j := 0; j < k && st.Len() < n; j++ {
			node := core.Node{Kind: core.KindStep, Content: texts[j]}
			if rng.IntN(6) == 0 {
				node.Kind, node.Terminal, node.Answer = core.KindAnswer, true, "24"
			}
			id, err := st.Add([]core.NodeID{parent}, node)
			if err != nil {
				panic(err)
			}
			v := rng.Float64()*2 - 1
			_ = st.Update(id, func(nd *core.Node) {
				nd.Scores = map[string]float64{core.ScoreValue: v}
				nd.Value, nd.Visits = v, 1+rng.IntN(20)
			})
			if !node.Terminal {
				open = append(open, id)
			}
		}
		if rng.IntN(3) == 0 {
			open = append(open[:i], open[i+1:]...)
			if len(open) == 0 {
				open = []core.NodeID{0}
			}
		}
	}
	tr.Close()
	return &core.Trace{Schema: core.TraceSchema, ID: core.NewTraceID(), Problem: "Use 4 9 10 13 and + - * / to make 24.",
		Pack: "game24", Strategy: "mcts", Params: core.Params{}, Started: time.Now(), Ended: time.Now(), Status: core.StopDone,
		Answer: "24", Structure: st, Events: tr.Since(0), Usage: core.Usage{Nodes: int64(n)}}
}

// BenchmarkRender10k measures how long headless Chromium takes to show a
// 10,000-node trace: fetch, parse, layout and draw, up to the next painted
// frame (render-ms is the page's own measure, from navigation start).
// "all" draws every node, zoomed out to show them all; "auto" is what a
// user first sees (collapsed by depth to about 2,500 nodes, the part around
// the root drawn at a readable size).
func BenchmarkRender10k(b *testing.B) {
	st, err := traces.Open(b.TempDir(), 10, nil)
	if err != nil {
		b.Fatal(err)
	}
	t := bigTrace(10000, 1)
	st.Finish(t)
	done := make(chan struct{})
	srv := httptest.NewServer(http.StripPrefix("/ui", ui.Handler(st, &ui.Options{Done: done})))
	defer srv.Close()
	defer close(done)
	br := uitest.NewBrowser(b, 1440, 900)
	nav := 0 // every load is a new URL, so it is a real navigation
	for _, mode := range []string{"all", "auto"} {
		b.Run(mode, func(b *testing.B) {
			depth := ""
			if mode == "all" {
				depth = "&depth=all&fit=all"
			}
			var total float64
			i := 0
			for b.Loop() {
				i++
				nav++
				br.Do(b, chromedp.Navigate(fmt.Sprintf("%s/ui/?%s=%d#run=%s%s", srv.URL, mode, nav, t.ID, depth)))
				br.WaitFor(b, "the big tree", `document.body.dataset.state === "ready"`)
				ms, err := strconv.ParseFloat(uitest.Eval[string](b, br, `document.getElementById("tree").dataset.renderMs`), 64)
				if err != nil {
					b.Fatal(err)
				}
				total += ms
			}
			b.Logf("%s: %s", mode, uitest.Eval[string](b, br, `document.getElementById("tree").dataset.timing`))
			shown := uitest.Eval[string](b, br, `document.getElementById("tree").dataset.shown`)
			nodes := uitest.Eval[string](b, br, `document.getElementById("tree").dataset.nodes`)
			if nodes != "10000" {
				b.Fatalf("page has %s nodes, want 10000", nodes)
			}
			b.ReportMetric(total/float64(i), "render-ms")
			s, _ := strconv.Atoi(shown)
			b.ReportMetric(float64(s), "nodes-shown")
		})
	}
}

// TestLargeTraceStaysUsable opens a 10,000-node trace: it opens collapsed
// by depth, search reaches a node deep in a collapsed branch, and a click
// on it shows its text.
func TestLargeTraceStaysUsable(t *testing.T) {
	t.Parallel()
	st, err := traces.Open(t.TempDir(), 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := bigTrace(10000, 2)
	st.Finish(tr)
	var deep core.Node
	for _, n := range tr.Structure.Nodes() {
		if n.Depth > deep.Depth {
			deep = n
		}
	}
	marker := "needle-in-the-haystack"
	_ = tr.Structure.Update(deep.ID, func(n *core.Node) { n.Content += " " + marker })
	st.Finish(tr)
	done := make(chan struct{})
	srv := httptest.NewServer(ui.Handler(st, &ui.Options{Done: done}))
	defer srv.Close()
	defer close(done)
	br := uitest.NewBrowser(t, 1280, 800)
	br.Do(t, chromedp.Navigate(srv.URL+"/ui/#run="+tr.ID))
	br.WaitFor(t, "the big tree", `document.body.dataset.state === "ready"`)
	shown := uitest.Eval[int](t, br, `+document.getElementById("tree").dataset.shown`)
	if shown >= 10000 || shown < 100 {
		t.Fatalf("a 10,000-node run opens with %d nodes shown, want it collapsed by depth", shown)
	}
	if uitest.Eval[int](t, br, `document.querySelectorAll("#nodes .node").length`) > shown {
		t.Fatal("more circles than shown nodes")
	}
	br.Screenshot(t, "viewer-10k.png")
	br.Do(t, chromedp.SendKeys(chromedp.ID("search"), marker+"\n"))
	key := strconv.Itoa(int(deep.ID))
	br.WaitFor(t, "the deep match", fmt.Sprintf(`document.getElementById("details").dataset.node === %q && document.querySelector('#nodes circle[data-key="%s"]') !== null`, key, key))
	if d := uitest.Eval[string](t, br, `document.getElementById("details").textContent`); !strings.Contains(d, marker) {
		t.Fatalf("details of the match lack its text:\n%.400s", d)
	}
	br.Screenshot(t, "viewer-10k-search.png")
	br.Do(t, chromedp.Click(chromedp.ID("fit")), chromedp.Click(chromedp.CSS(`#nodes circle[data-key="0"]`)))
	br.WaitFor(t, "the root's details", `document.getElementById("details").dataset.node === "0"`)
}
