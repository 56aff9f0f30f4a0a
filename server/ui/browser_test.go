package ui_test

import (
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/server/ui"
	"github.com/ponder-rlm/ponder/server/ui/uitest"
	"github.com/ponder-rlm/ponder/traces"
)

var update = flag.Bool("update", false, "rewrite docs/img/viewer.png from the browser test's screenshot")

// TestBrowserWatchesALiveSearch is the viewer as its users meet it: the
// page is open, a search starts, its tree appears and grows over
// server-sent events, nodes can be inspected, and model output that looks
// like HTML stays text.
func TestBrowserWatchesALiveSearch(t *testing.T) {
	t.Parallel()
	b := uitest.NewBrowser(t, 1440, 900)
	r := newRig(t, 2) // the root's expansion and one judge answer, then the LLM stalls
	r.hold = true     // and the root's statistics wait for statsNow
	b.Do(t, chromedp.Navigate(r.srv.URL+"/ui"))
	b.WaitFor(t, "the empty runs list", `!document.getElementById("runs-empty").hidden`)
	uitest.Eval[chromedp.Void](t, b, `window.__sameDocument = true`)

	wait := r.solve(t, `Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether? <img src=x onerror="window.__pwned=3">`)
	id := r.liveID(t)
	// The run appears by itself, the page follows it, and the root and its
	// three children arrive while the LLM is still busy with the judge.
	b.WaitFor(t, "the live tree", fmt.Sprintf(`document.getElementById("tree").dataset.run === %q && document.querySelectorAll("#nodes .node").length === 4`, id))
	// The root's visits come live in a stats event: its circle grows with
	// them (radius 5 + 2·log2(1 + 7) = 11 at 7 visits; 5 with none).
	rootR := `parseFloat(document.querySelector('#nodes circle[data-key="0"]').getAttribute("r"))`
	if got := uitest.Eval[float64](t, b, rootR); got >= 10.99 {
		t.Fatalf("the root's circle has radius %v before its statistics were recorded", got)
	}
	r.statsNow()
	b.WaitFor(t, "the root's visits from a stats event", rootR+` >= 10.99`)
	// A child is pruned: the prune event alone says so.
	b.WaitFor(t, "a node pruned by a prune event", `document.querySelectorAll('#nodes circle.pruned').length === 1`)
	// One judge answers while the others wait: its node takes the colour of
	// its score from the evaluate event (scored nodes are coloured, others
	// grey), while the run is still live.
	b.WaitFor(t, "a score from an evaluate event", `document.getElementById("tree").dataset.source !== "trace" && `+
		`[...document.querySelectorAll('#nodes circle')].filter((c) => c.dataset.key !== "0" && c.getAttribute("fill") !== "#a7b0b8").length === 1`)
	live, err := r.store.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if top, _ := countNodes(live.Structure); top != 4 || live.Status != "running" {
		t.Fatalf("mid-run the trace has %d nodes, status %s; want 4 running", top, live.Status)
	}
	if got := uitest.Eval[string](t, b, `document.getElementById("run-status").textContent`); got != "running" {
		t.Fatalf("status shows %q mid-run", got)
	}
	// The usage so far grows with the events too: the judge's call came
	// after the page loaded the run (it showed the calls and tokens of
	// that moment, and counted the problem as a node).
	u := live.Usage
	want := fmt.Sprintf("%d calls · %d tok · %d nodes · ", u.LLMCalls, u.PromptTokens+u.CompletionTokens, u.Nodes)
	if u.PromptTokens+u.CompletionTokens >= 1000 {
		t.Fatalf("%d tokens: the page shortens them", u.PromptTokens+u.CompletionTokens)
	}
	if got := uitest.Eval[string](t, b, `document.getElementById("run-usage").textContent`); !strings.HasPrefix(got, want) {
		t.Errorf("mid-run the usage reads %q, want the run's so far: %q…", got, want)
	}

	r.llm.release()
	res := wait()
	top, all := countNodes(res.Trace.Structure)
	b.WaitFor(t, "the finished run", fmt.Sprintf(`document.getElementById("tree").dataset.status === "done" && document.getElementById("tree").dataset.source === "trace" && document.querySelectorAll("#nodes .node").length === %d`, top))
	if !uitest.Eval[bool](t, b, `window.__sameDocument === true`) {
		t.Fatal("the page reloaded instead of updating live")
	}
	if got := uitest.Eval[string](t, b, `document.getElementById("run-answer").textContent`); got != res.Answer {
		t.Fatalf("answer shows %q, run answered %q", got, res.Answer)
	}
	if got := uitest.Eval[int](t, b, `document.querySelectorAll("#nodes .node.best").length`); got != len(res.Trace.BestPath) {
		t.Fatalf("%d nodes highlighted as best path, want %d", got, len(res.Trace.BestPath))
	}
	if got := uitest.Eval[int](t, b, `document.querySelectorAll("#edges .edges.best").length && document.querySelector("#edges .edges.best").getAttribute("d").split("M").length - 1`); got != len(res.Trace.BestPath)-1 {
		t.Fatalf("best path has %d highlighted edges, want %d", got, len(res.Trace.BestPath)-1)
	}

	// Nested searches open on demand; then every node of the trace is drawn.
	b.Do(t, chromedp.Click(chromedp.ID("subs")))
	b.WaitFor(t, "the nested search", fmt.Sprintf(`document.querySelectorAll("#nodes .node").length === %d`, all))

	// Clicking a node shows its full text, scores and the LLM call behind it.
	b.Do(t, chromedp.Click(chromedp.CSS(`#nodes circle[data-key="1"]`)))
	b.WaitFor(t, "node details", `document.getElementById("details").dataset.node === "1"`)
	details := uitest.Eval[string](t, b, `document.getElementById("details").textContent`)
	for _, want := range []string{xss, "made this node", "Natalia sold clips", "score orm", "Evaluations (1)", "evaluation call", "Score:"} {
		if !strings.Contains(details, want) {
			t.Errorf("node details lack %q:\n%s", want, details)
		}
	}
	// Model output is text: nothing ran, no element was made from it.
	if got := uitest.Eval[string](t, b, `String(window.__pwned)`); got != "undefined" {
		t.Fatalf("model output ran as script: window.__pwned = %s", got)
	}
	if got := uitest.Eval[int](t, b, `document.querySelectorAll("img, iframe, object, embed").length + document.scripts.length`); got != 1 {
		t.Fatalf("the page holds %d scripts/images, want only app.js", got)
	}
	// Arrow keys walk the tree: left is the parent.
	b.Do(t, chromedp.KeyEvent(kb.ArrowLeft))
	b.WaitFor(t, "the parent selected by keyboard", `document.getElementById("details").dataset.node === "0"`)
	b.Do(t, chromedp.KeyEvent("f")) // and f fits the whole tree in view again
	// The nested search's nodes carry their own LLM calls.
	b.Do(t, chromedp.Click(chromedp.CSS(`#nodes circle[data-key="2/1"]`)))
	b.WaitFor(t, "nested node details", `document.getElementById("details").dataset.node === "2/1"`)
	if d := uitest.Eval[string](t, b, `document.getElementById("details").textContent`); !strings.Contains(d, "sub-problem: what is half of 48?") || !strings.Contains(d, "nested search") {
		t.Errorf("nested node details:\n%s", d)
	}

	// Tool calls show their arguments and result; retrieval nodes their
	// chunks and sources.
	for _, n := range res.Trace.Structure.Nodes() {
		var want []string
		switch n.Kind {
		case core.KindToolResult:
			want = []string{"Tool call", "calc", `"expression": "48 + 48 / 2"`, "result", "72"}
		case core.KindRetrieval:
			want = []string{"Retrieved chunks", "clips-guide.md", "Clip shop", "score"}
		default:
			continue
		}
		b.Do(t, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#nodes circle[data-key="%d"]`, n.ID))))
		b.WaitFor(t, string(n.Kind)+" details", fmt.Sprintf(`document.getElementById("details").dataset.node === "%d"`, n.ID))
		d := uitest.Eval[string](t, b, `document.getElementById("details").textContent`)
		for _, w := range want {
			if !strings.Contains(d, w) {
				t.Errorf("%s node details lack %q:\n%.800s", n.Kind, w, d)
			}
		}
		// No LLM made it: the call before it is not shown as its maker.
		if strings.Contains(d, "nearest earlier call") {
			t.Errorf("%s node details guess an LLM call made it:\n%.800s", n.Kind, d)
		}
	}

	// Search by text finds the node and selects it.
	b.Do(t, chromedp.SendKeys(chromedp.ID("search"), "__pwned=2\n"))
	b.WaitFor(t, "a search match", `document.querySelectorAll("#nodes .node.match").length === 1 && document.getElementById("details").dataset.node === "1"`)
	// Collapsing by depth hides the deeper nodes.
	b.Do(t, chromedp.SetValue(chromedp.ID("depth"), "1"))
	uitest.Eval[chromedp.Void](t, b, `document.getElementById("depth").dispatchEvent(new Event("change"))`)
	depth1 := 0
	for _, n := range res.Trace.Structure.Nodes() {
		if n.Depth <= 1 {
			depth1++
		}
	}
	b.WaitFor(t, "depth 1", fmt.Sprintf(`document.querySelectorAll("#nodes .node").length === %d`, depth1))
	b.Do(t, chromedp.SetValue(chromedp.ID("depth"), "all"))
	uitest.Eval[chromedp.Void](t, b, `document.getElementById("depth").dispatchEvent(new Event("change"))`)

	// The timeline lists events; clicking one shows it.
	b.WaitFor(t, "the timeline", `document.querySelectorAll("#event-spacer .ev").length > 5`)
	b.Do(t, chromedp.Click(chromedp.CSS(`#event-spacer .ev[data-seq="2"]`)))
	b.WaitFor(t, "event details", `document.querySelector("#details h2").textContent.startsWith("Event #2")`)

	b.Screenshot(t, "viewer-live-run.png")

	// A second run: the page follows it. Its screenshot, with the answer
	// on the best path selected, is the README's (go test -run Browser
	// ./server/ui -update rewrites docs/img/viewer.png).
	wait2 := r.solve(t, "A baker sold 48 muffins in the morning and half as many in the afternoon. How many muffins did she sell in all?")
	res2 := wait2()
	b.WaitFor(t, "the second run", fmt.Sprintf(`document.getElementById("tree").dataset.run === %q && document.getElementById("tree").dataset.source === "trace"`, res2.TraceID))
	best := res2.Trace.BestPath[len(res2.Trace.BestPath)-1]
	b.Do(t, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#nodes circle[data-key="%d"]`, best))))
	b.WaitFor(t, "best node details", fmt.Sprintf(`document.getElementById("details").dataset.node === "%d"`, best))
	uitest.Eval[chromedp.Void](t, b, `document.getElementById("search").value = ""; document.getElementById("search").dispatchEvent(new Event("input"))`)
	b.Do(t, chromedp.Click(chromedp.ID("subs")))
	b.WaitFor(t, "the nested search", fmt.Sprintf(`document.querySelectorAll("#nodes .node").length === %d`, all))
	uitest.Eval[chromedp.Void](t, b, `document.activeElement && document.activeElement.blur()`)
	b.Do(t, chromedp.Sleep(300*time.Millisecond))
	png := b.Screenshot(t, "viewer.png")
	if *update {
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "img", "viewer.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Pages let their event streams go when left: a browser holds at most
	// six connections to the server, so eight visits in a row would hang.
	for i := range 8 {
		b.Do(t, chromedp.Navigate(fmt.Sprintf("%s/ui/?visit=%d#run=%s", r.srv.URL, i, res.TraceID)))
		b.WaitFor(t, "the page again", `document.body.dataset.state === "ready" && document.getElementById("conn").textContent === "live"`)
	}
}

// A run that cannot be read says why on the page, instead of drawing an
// empty run (or none at all): a trace damaged on disk, and an answer cut
// short on its way (a proxy, a dropped connection).
func TestBrowserShowsUnreadableRuns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := traces.Open(dir, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	damaged, cut := bigTrace(30, 4), bigTrace(30, 5)
	st.Finish(damaged)
	st.Finish(cut)
	if err := os.Truncate(filepath.Join(dir, damaged.ID+".json"), 500); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	h := ui.Handler(st, &ui.Options{Done: done})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ui/api/runs/"+cut.ID {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(rec.Body.Bytes()[:rec.Body.Len()/2])
	}))
	defer srv.Close()
	defer close(done) // ends the page's event stream, which srv.Close waits for
	b := uitest.NewBrowser(t, 1280, 800)
	for _, tc := range []struct{ id, want string }{
		{damaged.ID, "the stored file is damaged"},
		{cut.ID, "is not JSON"},
	} {
		b.Do(t, chromedp.Navigate(srv.URL+"/ui/?"+tc.id+"#run="+tc.id))
		b.WaitFor(t, "the error", `document.body.dataset.state === "error"`)
		if got := uitest.Eval[string](t, b, `document.getElementById("run-empty").textContent`); !strings.Contains(got, "Could not load the run") || !strings.Contains(got, tc.want) {
			t.Errorf("run %s shows %q, want it to say %q", tc.id, got, tc.want)
		}
	}
}

// Bidi controls in model output stay inside it: an answer ending in
// U+202E (RIGHT-TO-LEFT OVERRIDE) does not turn the page's own words after
// it around ("6 calls" shown as "sllac 6").
func TestBrowserIsolatesBidiText(t *testing.T) {
	t.Parallel()
	tr := bigTrace(30, 6)
	tr.Answer, tr.Usage.LLMCalls = "12\u202e", 6
	srv := serveFinished(t, tr)
	b := uitest.NewBrowser(t, 1280, 800)
	b.Do(t, chromedp.Navigate(srv.URL+"/ui/#run="+tr.ID))
	b.WaitFor(t, "the run", `document.body.dataset.state === "ready" && document.querySelector("#run-list .answer") !== null`)
	// The "·" after the answer is drawn right after it, not at the far end
	// of a reversed line.
	gap := uitest.Eval[float64](t, b, `(() => {
		const a = document.querySelector("#run-list .answer"), after = a.nextSibling, r = document.createRange();
		r.setStart(after, after.data.indexOf("·")); r.setEnd(after, after.data.indexOf("·") + 1);
		return r.getBoundingClientRect().left - a.getBoundingClientRect().right;
	})()`)
	if gap < 0 || gap > 10 {
		t.Errorf("the run list's usage after an answer ending in U+202E starts %.1fpx after it (want a space's width): "+
			"the override reorders the page's own text", gap)
	}
}

// A page whose stream the server refuses on reconnecting (restarted with
// another token) says why, instead of "reconnecting…" for ever.
func TestBrowserSaysWhyTheStreamIsRefused(t *testing.T) {
	t.Parallel()
	st, _ := traces.Open("", 10, nil)
	done := make(chan struct{})
	h := ui.Handler(st, &ui.Options{Done: done})
	var deny atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if deny.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"unauthorized: wrong token"}`))
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	b := uitest.NewBrowser(t, 1280, 800)
	b.Do(t, chromedp.Navigate(srv.URL+"/ui/"))
	b.WaitFor(t, "the live page", `document.getElementById("conn").textContent === "live"`)
	deny.Store(true)
	close(done) // the server goes away with the page's stream
	b.WaitFor(t, "the refusal", `document.getElementById("conn").textContent.includes("unauthorized: wrong token")`)
}

// An LLM call the search gave up (cancelled: the run stopped, ran out of
// time, or no search needed the reply) is shown as the search's doing,
// muted; an LLM's own failure stays a red error. Both keep their error
// text.
func TestBrowserTellsCancelledCallsFromFailedOnes(t *testing.T) {
	t.Parallel()
	tr := bigTrace(8, 8)
	last := tr.Events[len(tr.Events)-1]
	failed, cancelled := last.Seq+1, last.Seq+2
	tr.Events = append(tr.Events,
		core.Event{Seq: failed, TimeMS: last.TimeMS + 1, Op: core.OpLLMCall,
			Data: &core.LLMCallFailure{Purpose: "generate", N: 2, MS: 3, Error: "status 502: upstream unavailable"}},
		core.Event{Seq: cancelled, TimeMS: last.TimeMS + 2, Op: core.OpLLMCall,
			Data: &core.LLMCallFailure{Purpose: "judge", N: 1, MS: 4, Error: "context deadline exceeded", Cancelled: true}})
	srv := serveFinished(t, tr)
	b := uitest.NewBrowser(t, 1280, 800)
	b.Do(t, chromedp.Navigate(srv.URL+"/ui/#run="+tr.ID))
	b.WaitFor(t, "the run", `document.body.dataset.state === "ready" && document.getElementById("event-count").textContent !== ""`)
	// Only the LLM calls, so that both rows are drawn.
	uitest.Eval[chromedp.Void](t, b, `(() => { const s = document.getElementById("op-filter"); s.value = "llm_call"; s.dispatchEvent(new Event("change")); })()`)
	row := func(seq int64) string {
		return fmt.Sprintf(`document.querySelector('#event-spacer .ev[data-seq="%d"]')`, seq)
	}
	b.WaitFor(t, "the failed calls' rows", row(failed)+` !== null && `+row(cancelled)+` !== null`)
	for _, tc := range []struct {
		seq            int64
		row, cls, text string
	}{
		{failed, "error: status 502: upstream unavailable", "error", "error: status 502: upstream unavailable"},
		{cancelled, "cancelled by the search", "muted call-cancelled", "cancelled by the search: context deadline exceeded"},
	} {
		if got := uitest.Eval[string](t, b, row(tc.seq)+`.textContent`); !strings.HasSuffix(got, tc.row) {
			t.Errorf("event #%d's row reads %q, want it to end %q", tc.seq, got, tc.row)
		}
		uitest.Eval[chromedp.Void](t, b, row(tc.seq)+`.click()`)
		b.WaitFor(t, "the call's details", fmt.Sprintf(`document.querySelector("#details h2").textContent.startsWith("Event #%d ")`, tc.seq))
		got := uitest.Eval[[]string](t, b, `(() => { const d = document.querySelector("#details details > div"); return d ? [d.className, d.textContent, getComputedStyle(d).color] : []; })()`)
		if len(got) != 3 || got[0] != tc.cls || got[1] != tc.text {
			t.Errorf("event #%d's details show %q, want class %q and text %q", tc.seq, got, tc.cls, tc.text)
		} else if red := got[2] == "rgb(179, 38, 30)"; red != (tc.cls == "error") {
			t.Errorf("event #%d's %q is coloured %s", tc.seq, tc.text, got[2])
		}
	}
}

// serveFinished serves the viewer over a store holding tr, finished; the
// server and the page's event streams end with the test.
func serveFinished(t *testing.T, tr *core.Trace) *httptest.Server {
	t.Helper()
	srv, _ := serveStore(t, tr)
	return srv
}

// serveStore serves the viewer over a store holding the traces given,
// finished, and returns it for more; the server and the page's event
// streams end with the test.
func serveStore(t *testing.T, finished ...*core.Trace) (*httptest.Server, *traces.Store) {
	t.Helper()
	st, err := traces.Open(t.TempDir(), 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range finished {
		st.Finish(tr)
	}
	done := make(chan struct{})
	srv := httptest.NewServer(ui.Handler(st, &ui.Options{Done: done}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(done) }) // runs first: srv.Close waits for the page's event stream
	return srv, st
}

// A link to another run or node pasted into a tab already showing the
// viewer (`ponder trace view` prints one; a colleague sends another)
// changes only the address's fragment: the page opens what it names
// instead of staying on the run it shows.
func TestBrowserFollowsTheAddressFragment(t *testing.T) {
	t.Parallel()
	first, second := bigTrace(30, 7), bigTrace(40, 8)
	srv, _ := serveStore(t, first, second)
	b := uitest.NewBrowser(t, 1280, 800)
	b.Do(t, chromedp.Navigate(srv.URL+"/ui/#run="+first.ID))
	b.WaitFor(t, "the first run", fmt.Sprintf(`document.getElementById("tree").dataset.run === %q`, first.ID))
	uitest.Eval[chromedp.Void](t, b, `window.__sameDocument = true`)
	node := 3
	b.Do(t, chromedp.Navigate(fmt.Sprintf("%s/ui/#run=%s&node=%d", srv.URL, second.ID, node)))
	b.WaitFor(t, "the run the new address names", fmt.Sprintf(`document.getElementById("tree").dataset.run === %q && document.body.dataset.state === "ready"`, second.ID))
	b.WaitFor(t, "its node selected", fmt.Sprintf(`document.getElementById("details").textContent.includes("Node %d")`, node))
	if !uitest.Eval[bool](t, b, `window.__sameDocument === true`) {
		t.Fatal("the page reloaded: the test did not change only the fragment")
	}
	if uitest.Eval[bool](t, b, `document.getElementById("follow").checked`) {
		t.Error("following the newest run is still on after opening a run by its address")
	}
	// A node of the run already shown is selected in place.
	other := 5
	b.Do(t, chromedp.Navigate(fmt.Sprintf("%s/ui/#run=%s&node=%d", srv.URL, second.ID, other)))
	b.WaitFor(t, "the other node selected", fmt.Sprintf(`document.getElementById("details").textContent.includes("Node %d")`, other))
}

// fanTrace is a finished trace of a root whose text is problem and the
// given number of answer children.
func fanTrace(problem string, children int) *core.Trace {
	tr := core.NewTracer(true)
	st := core.NewStructure(core.Tree, problem, tr)
	for i := range children {
		if _, err := st.Add([]core.NodeID{0}, core.Node{Kind: core.KindAnswer, Terminal: true,
			Content: fmt.Sprintf("Option %d: half of 48 is 24, and 48 + 24 = 72 clips in all.", i), Answer: "72"}); err != nil {
			panic(err)
		}
	}
	tr.Close()
	return &core.Trace{Schema: core.TraceSchema, ID: core.NewTraceID(), Problem: problem, Pack: "gsm8k", Strategy: "best-of-n",
		Params: core.Params{}, Started: time.Now(), Ended: time.Now(), Status: core.StopDone, Answer: "72",
		Structure: st, Events: tr.Since(0), Usage: core.Usage{Nodes: int64(children)}}
}

// Fitting shows the whole tree, whatever the zoom it takes: no circle or
// label is cut off at the tree's edges (the margins were counted in the
// tree's units, so below 100% the last leaves fell off the bottom). And a
// label ends before the next depth's circles at any zoom (its length grew
// with the zoom while its letters grew too, so at 140% the root's text ran
// over its children).
func TestBrowserFitsTheTreeAndItsLabels(t *testing.T) {
	t.Parallel()
	tall := fanTrace("How many clips did Natalia sell altogether in April and May?", 30)
	small := fanTrace("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether?", 3)
	srv, _ := serveStore(t, tall, small)
	b := uitest.NewBrowser(t, 1280, 800)
	for _, tc := range []struct {
		name   string
		tr     *core.Trace
		labels bool
	}{{"tall", tall, false}, {"small", small, true}} {
		b.Do(t, chromedp.Navigate(fmt.Sprintf("%s/ui/?%s#run=%s", srv.URL, tc.name, tc.tr.ID)))
		b.WaitFor(t, "the "+tc.name+" tree", fmt.Sprintf(`document.body.dataset.state === "ready" && document.getElementById("tree").dataset.run === %q`, tc.tr.ID))
		for _, fit := range []string{"as opened", "after f"} {
			if fit == "after f" {
				uitest.Eval[chromedp.Void](t, b, `document.activeElement && document.activeElement.blur()`)
				b.Do(t, chromedp.KeyEvent("f"))
			}
			got := uitest.Eval[[]string](t, b, `(() => {
				const box = document.getElementById("tree").getBoundingClientRect(), out = [];
				const circles = [...document.querySelectorAll("#nodes circle")], labels = [...document.querySelectorAll("#labels text")];
				for (const e of circles.concat(labels)) {
					const r = e.getBoundingClientRect(), name = e.tagName + " " + (e.dataset.key || e.textContent);
					if (r.top < box.top || r.bottom > box.bottom || r.left < box.left || r.right > box.right) out.push(name + " is cut off");
					for (const c of circles) {
						const q = c.getBoundingClientRect();
						if (e.tagName === "text" && r.left < q.right && q.left < r.right && r.top < q.bottom && q.top < r.bottom) out.push(name + " covers node " + c.dataset.key);
					}
				}
				return out.concat(["circles " + circles.length, "labels " + labels.length]);
			})()`)
			want := []string{fmt.Sprintf("circles %d", len(tc.tr.Structure.Nodes()))}
			if tc.labels {
				want = append(want, fmt.Sprintf("labels %d", len(tc.tr.Structure.Nodes())))
			} else {
				want = append(want, "labels 0")
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("%s tree, %s: %s", tc.name, fit, strings.Join(got, "; "))
			}
		}
	}
}

// The runs list is drawn again whenever it changes (every 2 s while a run
// is live): a run the keyboard is on keeps the focus, so that a keyboard
// user does not fall back to the top of the page.
func TestBrowserRunsListKeepsTheFocus(t *testing.T) {
	t.Parallel()
	first, second := bigTrace(10, 11), bigTrace(10, 12)
	srv, st := serveStore(t, first)
	b := uitest.NewBrowser(t, 1280, 800)
	b.Do(t, chromedp.Navigate(srv.URL+"/ui/#run="+first.ID))
	b.WaitFor(t, "the run", `document.body.dataset.state === "ready" && document.querySelectorAll("#run-list li").length === 1`)
	li := fmt.Sprintf(`document.querySelector('#run-list li[data-id=%q]')`, first.ID)
	uitest.Eval[chromedp.Void](t, b, li+`.focus()`)
	st.Finish(second)
	b.WaitFor(t, "the new run in the list", `document.querySelectorAll("#run-list li").length === 2`)
	if !uitest.Eval[bool](t, b, `document.activeElement === `+li) {
		t.Errorf("after the list changed the focus is on %s, not on the run it was on", uitest.Eval[string](t, b, `document.activeElement.outerHTML.slice(0, 80)`))
	}
}

// The tree can be walked without a mouse: it takes the keyboard's focus
// (Tab reaches it), the first arrow selects the root, the next ones move
// from node to node.
func TestBrowserTreeByKeyboard(t *testing.T) {
	t.Parallel()
	tr := fanTrace("How many clips did Natalia sell altogether in April and May?", 3)
	srv := serveFinished(t, tr)
	b := uitest.NewBrowser(t, 1280, 800)
	b.Do(t, chromedp.Navigate(srv.URL+"/ui/#run="+tr.ID))
	b.WaitFor(t, "the run", `document.body.dataset.state === "ready"`)
	if got := uitest.Eval[int](t, b, `document.getElementById("tree").tabIndex`); got != 0 {
		t.Errorf("the tree's tabIndex is %d: Tab never reaches it", got)
	}
	uitest.Eval[chromedp.Void](t, b, `document.getElementById("tree").focus()`)
	for _, step := range []struct{ key, node string }{{kb.ArrowRight, "0"}, {kb.ArrowRight, "1"}, {kb.ArrowDown, "2"}, {kb.ArrowLeft, "0"}} {
		b.Do(t, chromedp.KeyEvent(step.key))
		b.WaitFor(t, "node "+step.node+" selected by keyboard", fmt.Sprintf(`document.getElementById("details").dataset.node === %q`, step.node))
	}
}

// The timeline can be walked without a mouse, as the tree can: Tab
// reaches the list, the arrows, Home and End move from event to event and
// show each (scrolled into view), Enter opens one as a click does, its
// node selected in the tree.
func TestBrowserTimelineByKeyboard(t *testing.T) {
	t.Parallel()
	tr := bigTrace(60, 15)
	srv := serveFinished(t, tr)
	b := uitest.NewBrowser(t, 1280, 800)
	b.Do(t, chromedp.Navigate(srv.URL+"/ui/#run="+tr.ID))
	b.WaitFor(t, "the run", `document.body.dataset.state === "ready" && document.querySelectorAll("#event-spacer .ev").length > 0`)
	if got := uitest.Eval[int](t, b, `document.getElementById("event-scroll").tabIndex`); got != 0 {
		t.Errorf("the timeline's tabIndex is %d: Tab never reaches it", got)
	}
	uitest.Eval[chromedp.Void](t, b, `document.getElementById("event-scroll").focus()`)
	shown := func(seq int64) string {
		return fmt.Sprintf(`(document.querySelector("#details h2") || {textContent: ""}).textContent.startsWith("Event #%d ") && `+
			`[...document.querySelectorAll("#event-spacer .ev.selected")].map((r) => r.dataset.seq).join() === "%d" && `+
			`document.getElementById("event-scroll").getAttribute("aria-activedescendant") === "ev-%d" && (() => {
				const r = document.getElementById("ev-%d").getBoundingClientRect(), box = document.getElementById("event-scroll").getBoundingClientRect();
				return r.top >= box.top - 1 && r.bottom <= box.bottom + 1; // less a fraction of a pixel
			})()`, seq, seq, seq, seq)
	}
	first, last := tr.Events[0].Seq, tr.Events[len(tr.Events)-1].Seq
	for _, step := range []struct {
		key string
		seq int64
	}{{kb.ArrowDown, first}, {kb.ArrowDown, first + 1}, {kb.ArrowDown, first + 2}, {kb.ArrowUp, first + 1}, {kb.End, last}, {kb.Home, first}} {
		b.Do(t, chromedp.KeyEvent(step.key))
		b.WaitFor(t, fmt.Sprintf("event #%d shown by keyboard", step.seq), shown(step.seq))
	}
	// Enter opens the event of a node: the node is selected in the tree,
	// the event stays shown.
	var node *core.Event
	for i := range tr.Events {
		if e := &tr.Events[i]; e.Op == core.OpNode && e.Seq > first+2 {
			node = e
			break
		}
	}
	if node == nil {
		t.Fatal("the trace has no node event to open")
	}
	for range node.Seq - first {
		b.Do(t, chromedp.KeyEvent(kb.ArrowDown))
	}
	b.WaitFor(t, "the node's event", shown(node.Seq))
	b.Do(t, chromedp.KeyEvent(kb.Enter))
	b.WaitFor(t, "its node selected by Enter", fmt.Sprintf(`%s && [...document.querySelectorAll("#nodes circle.selected")].map((c) => c.dataset.key).join() === "%d"`, shown(node.Seq), node.Nodes[0]))
}

// When the drawing area changes size (the problem opened in full, the
// window resized), a view the user has not moved fits the tree again: it
// stayed where it was, outside the smaller area.
func TestBrowserRefitsWhenTheAreaChanges(t *testing.T) {
	t.Parallel()
	tr := fanTrace(strings.Repeat("How many clips did Natalia sell altogether in April and May? ", 40), 3)
	srv := serveFinished(t, tr)
	b := uitest.NewBrowser(t, 1280, 800)
	b.Do(t, chromedp.Navigate(srv.URL+"/ui/#run="+tr.ID))
	b.WaitFor(t, "the run", `document.body.dataset.state === "ready"`)
	inside := `(() => {
		const box = document.getElementById("tree").getBoundingClientRect(), cs = [...document.querySelectorAll("#nodes circle")];
		return cs.length === 4 && cs.every((c) => { const r = c.getBoundingClientRect(); return r.top >= box.top && r.bottom <= box.bottom && r.left >= box.left && r.right <= box.right; });
	})()`
	b.WaitFor(t, "the tree in view", inside)
	before := uitest.Eval[float64](t, b, `document.getElementById("tree").clientHeight`)
	b.Do(t, chromedp.Click(chromedp.ID("run-problem")))
	b.WaitFor(t, "a smaller drawing area", fmt.Sprintf(`document.getElementById("tree").clientHeight < %v / 2`, before))
	b.WaitFor(t, "the tree in the smaller area", inside)
}

// Going back in the browser's history to the run without `&node=` leaves
// no node selected (the node of the later address stayed selected, its
// details shown), and forward selects it again. Esc clears the node from
// the address too, so that a copied link names what the page shows.
func TestBrowserHistoryBackClearsTheNode(t *testing.T) {
	t.Parallel()
	tr := bigTrace(30, 13)
	srv := serveFinished(t, tr)
	b := uitest.NewBrowser(t, 1280, 800)
	b.Do(t, chromedp.Navigate(srv.URL+"/ui/#run="+tr.ID))
	b.WaitFor(t, "the run", `document.body.dataset.state === "ready"`)
	selected := func(node string) string {
		return fmt.Sprintf(`document.getElementById("details").dataset.node === %q && `+
			`[...document.querySelectorAll("#nodes circle.selected")].map((c) => c.dataset.key).join() === %q`, node, node)
	}
	b.Do(t, chromedp.Navigate(fmt.Sprintf("%s/ui/#run=%s&node=3", srv.URL, tr.ID)))
	b.WaitFor(t, "node 3 selected by the address", selected("3"))
	uitest.Eval[chromedp.Void](t, b, `history.back()`)
	b.WaitFor(t, "no node selected after going back", fmt.Sprintf(`location.hash === "#run=%s" && %s && `+
		`document.querySelector("#details .placeholder") !== null`, tr.ID, selected("")))
	uitest.Eval[chromedp.Void](t, b, `history.forward()`)
	b.WaitFor(t, "node 3 selected again going forward", selected("3"))
	uitest.Eval[chromedp.Void](t, b, `document.getElementById("tree").focus()`)
	b.Do(t, chromedp.KeyEvent(kb.Escape))
	b.WaitFor(t, "Esc clearing the node, in the address too", fmt.Sprintf(`location.hash === "#run=%s" && %s`, tr.ID, selected("")))
}

// An event's data in its timeline row is model text among the row's own:
// the end event's answer with U+202E (after a stray U+2069, which would
// close a plain isolate early) does not reverse the rest of the row.
func TestBrowserIsolatesBidiTextInEventRows(t *testing.T) {
	t.Parallel()
	tr := bigTrace(8, 14)
	last := tr.Events[len(tr.Events)-1]
	tr.Events = append(tr.Events, core.Event{Seq: last.Seq + 1, TimeMS: last.TimeMS + 1, Op: core.OpEnd,
		Data: map[string]any{"answer": "12\u2069\u202e", "stopped": "done"}})
	srv := serveFinished(t, tr)
	b := uitest.NewBrowser(t, 1280, 800)
	b.Do(t, chromedp.Navigate(srv.URL+"/ui/#run="+tr.ID))
	b.WaitFor(t, "the run", `document.body.dataset.state === "ready" && document.getElementById("event-count").textContent !== ""`)
	uitest.Eval[chromedp.Void](t, b, `(() => { const s = document.getElementById("op-filter"); s.value = "end"; s.dispatchEvent(new Event("change")); })()`)
	row := fmt.Sprintf(`document.querySelector('#event-spacer .ev[data-seq="%d"]')`, last.Seq+1)
	b.WaitFor(t, "the end event's row", row+` !== null`)
	// The row's words after the answer keep their order: "stopped" is
	// drawn left of the closing brace, not mirrored right of it.
	got := uitest.Eval[[]float64](t, b, `(() => {
		const text = `+row+`.lastChild, r = document.createRange(), at = (i) => { r.setStart(text, i); r.setEnd(text, i + 1); return r.getBoundingClientRect().left; };
		return [at(text.data.indexOf("stopped")), at(text.data.indexOf("done")), at(text.data.lastIndexOf("}"))];
	})()`)
	if len(got) != 3 || !(got[0] < got[1] && got[1] < got[2]) {
		t.Errorf("the end event's row draws \"stopped\", \"done\" and its closing brace at x %v: "+
			"the answer's U+202E reorders the row's own text (%q)", got, uitest.Eval[string](t, b, row+`.textContent`))
	}
}

// In a chain each step's edge to the next runs straight out of its right
// side, where the label is: the best path's thick gold edge struck
// through every label. A label with an edge straight out of its node sits
// above the edge.
func TestBrowserChainLabelsClearTheBestPath(t *testing.T) {
	t.Parallel()
	tr := chainTrace(3)
	srv := serveFinished(t, tr)
	b := uitest.NewBrowser(t, 1280, 800)
	b.Do(t, chromedp.Navigate(srv.URL+"/ui/#run="+tr.ID))
	b.WaitFor(t, "the chain, labelled", fmt.Sprintf(`document.body.dataset.state === "ready" && document.querySelectorAll("#labels text").length === %d`, len(tr.BestPath)))
	onEdge := `(() => {
		const edge = document.querySelector("#edges .edges.best"), out = [];
		if (!edge || edge.getAttribute("d").split("M").length - 1 !== ` + fmt.Sprint(len(tr.BestPath)-1) + `) return ["no best-path edges"];
		// The chain's edges run level through the circles' centres, from
		// the first circle to the last, as wide as the edge's stroke.
		const cs = [...document.querySelectorAll("#nodes circle")].map((c) => c.getBoundingClientRect());
		const y = (cs[0].top + cs[0].bottom) / 2, half = parseFloat(getComputedStyle(edge).strokeWidth) / 2;
		const x0 = Math.min(...cs.map((r) => (r.left + r.right) / 2)), x1 = Math.max(...cs.map((r) => (r.left + r.right) / 2));
		for (const l of document.querySelectorAll("#labels text")) {
			const r = l.getBoundingClientRect();
			if (r.left < x1 && r.right > x0 && r.top < y + half && r.bottom > y - half) out.push(l.textContent + " lies on the best path's edge");
		}
		return out;
	})()`
	if got := uitest.Eval[[]string](t, b, onEdge); len(got) > 0 {
		t.Errorf("as fitted: %s", strings.Join(got, "; "))
	}
	// Zoomed out to near the smallest zoom with labels (0.55), where the
	// edge's 4px are the most tree units.
	scale := `+document.getElementById("viewport").getAttribute("transform").match(/scale\(([^)]+)\)/)[1]`
	for uitest.Eval[float64](t, b, scale)*0.8 >= 0.56 {
		b.Do(t, chromedp.Click(chromedp.ID("zoom-out")))
	}
	b.WaitFor(t, "labels clear of the edge zoomed out", fmt.Sprintf(`%s < 0.7 && document.querySelectorAll("#labels text").length === %d && %s.length === 0`, scale, len(tr.BestPath), onEdge))
}

// chainTrace is a finished chain-of-thought trace: the problem, steps
// one under the other and the answer, all on the best path.
func chainTrace(steps int) *core.Trace {
	tr := core.NewTracer(true)
	st := core.NewStructure(core.Chain, "Natalia sold clips to 48 of her friends in April, and then half as many in May. How many in all?", tr)
	path := []core.NodeID{0}
	for i := range steps + 1 {
		n := core.Node{Kind: core.KindStep, Content: fmt.Sprintf("Step %d: half of 48 is 24, so the running total grows by another few clips.", i+1)}
		if i == steps {
			n = core.Node{Kind: core.KindAnswer, Terminal: true, Content: "48 + 24 = 72 clips in all.", Answer: "72"}
		}
		id, err := st.Add(path[len(path)-1:], n)
		if err != nil {
			panic(err)
		}
		path = append(path, id)
	}
	tr.Close()
	return &core.Trace{Schema: core.TraceSchema, ID: core.NewTraceID(), Problem: st.MustNode(0).Content, Pack: "gsm8k", Strategy: "cot",
		Params: core.Params{}, Started: time.Now(), Ended: time.Now(), Status: core.StopDone, Answer: "72",
		Structure: st, Events: tr.Since(0), BestPath: path, Usage: core.Usage{Nodes: int64(steps + 1)}}
}
