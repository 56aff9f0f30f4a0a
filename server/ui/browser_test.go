package ui_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

var update = flag.Bool("update", false, "rewrite docs/img/viewer.png from the browser test's screenshot")

// chromium finds Debian's chromium (scripts/deps.sh installs it).
func chromium(tb testing.TB) string {
	tb.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	tb.Skip("chromium is not installed: run `bash scripts/deps.sh` (Debian package chromium) to run the browser tests")
	return ""
}

// browser is a headless Chromium tab; page errors (uncaught exceptions,
// console.error) are collected and fail the test at the end.
type browser struct {
	ctx  context.Context
	mu   sync.Mutex
	errs []string
}

func newBrowser(tb testing.TB, width, height int) *browser {
	tb.Helper()
	exe := chromium(tb)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Headless, chromedp.DisableGPU, chromedp.NoSandbox, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.WindowSize(width, height),
	)
	ctx, cancel := chromedp.NewContext(actx)
	b := &browser{ctx: ctx}
	if err := chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = "exception: " + ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				msg = "console.error"
				for _, a := range ev.Args {
					msg += " " + string(a.Value) + a.Description
				}
			}
		}
		if msg != "" {
			b.mu.Lock()
			b.errs = append(b.errs, msg)
			b.mu.Unlock()
		}
	}); err != nil {
		cancel()
		cancelA()
		tb.Fatalf("start chromium %s: %v", exe, err)
	}
	tb.Cleanup(func() {
		cancel()
		cancelA()
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, e := range b.errs {
			tb.Errorf("page error: %s", e)
		}
	})
	return b
}

func (b *browser) do(tb testing.TB, actions ...chromedp.Action[chromedp.Void]) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.Fatal(err)
	}
}

func eval[T any](tb testing.TB, b *browser, js string) T {
	tb.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		tb.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitFor polls a JavaScript predicate until it holds.
func (b *browser) waitFor(tb testing.TB, what, js string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(20*time.Millisecond),
		chromedp.WithPollingTimeout(25*time.Second))); err != nil {
		state := eval[string](tb, b, `document.body.dataset.state + " " + JSON.stringify(document.getElementById("tree").dataset) + " " + document.getElementById("run-list").textContent.slice(0, 300)`)
		tb.Fatalf("waiting for %s: %v (page: %s)", what, err, state)
	}
}

func artifactDir(tb testing.TB) string {
	if d := os.Getenv("PONDER_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			tb.Fatal(err)
		}
		return d
	}
	return tb.TempDir()
}

// TestBrowserWatchesALiveSearch is the viewer as its users meet it: the
// page is open, a search starts, its tree appears and grows over
// server-sent events, nodes can be inspected, and model output that looks
// like HTML stays text.
func TestBrowserWatchesALiveSearch(t *testing.T) {
	t.Parallel()
	b := newBrowser(t, 1440, 900)
	r := newRig(t, 1) // the root's expansion answers, then the LLM stalls
	b.do(t, chromedp.Navigate(r.srv.URL+"/ui"))
	b.waitFor(t, "the empty runs list", `!document.getElementById("runs-empty").hidden`)
	eval[chromedp.Void](t, b, `window.__sameDocument = true`)

	wait := r.solve(t, `Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether? <img src=x onerror="window.__pwned=3">`)
	id := r.liveID(t)
	// The run appears by itself, the page follows it, and the root and its
	// three children arrive while the LLM is still busy with the judge.
	b.waitFor(t, "the live tree", fmt.Sprintf(`document.getElementById("tree").dataset.run === %q && document.querySelectorAll("#nodes .node").length === 4`, id))
	live, err := r.store.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if top, _ := countNodes(live.Structure); top != 4 || live.Status != "running" {
		t.Fatalf("mid-run the trace has %d nodes, status %s; want 4 running", top, live.Status)
	}
	if got := eval[string](t, b, `document.getElementById("run-status").textContent`); got != "running" {
		t.Fatalf("status shows %q mid-run", got)
	}

	r.llm.release()
	res := wait()
	top, all := countNodes(res.Trace.Structure)
	b.waitFor(t, "the finished run", fmt.Sprintf(`document.getElementById("tree").dataset.status === "done" && document.getElementById("tree").dataset.source === "trace" && document.querySelectorAll("#nodes .node").length === %d`, top))
	if !eval[bool](t, b, `window.__sameDocument === true`) {
		t.Fatal("the page reloaded instead of updating live")
	}
	if got := eval[string](t, b, `document.getElementById("run-answer").textContent`); got != res.Answer {
		t.Fatalf("answer shows %q, run answered %q", got, res.Answer)
	}
	if got := eval[int](t, b, `document.querySelectorAll("#nodes .node.best").length`); got != len(res.Trace.BestPath) {
		t.Fatalf("%d nodes highlighted as best path, want %d", got, len(res.Trace.BestPath))
	}
	if got := eval[int](t, b, `document.querySelectorAll("#edges .edges.best").length && document.querySelector("#edges .edges.best").getAttribute("d").split("M").length - 1`); got != len(res.Trace.BestPath)-1 {
		t.Fatalf("best path has %d highlighted edges, want %d", got, len(res.Trace.BestPath)-1)
	}

	// Nested searches open on demand; then every node of the trace is drawn.
	b.do(t, chromedp.Click(chromedp.ID("subs")))
	b.waitFor(t, "the nested search", fmt.Sprintf(`document.querySelectorAll("#nodes .node").length === %d`, all))

	// Clicking a node shows its full text, scores and the LLM call behind it.
	b.do(t, chromedp.Click(chromedp.CSS(`#nodes circle[data-key="1"]`)))
	b.waitFor(t, "node details", `document.getElementById("details").dataset.node === "1"`)
	details := eval[string](t, b, `document.getElementById("details").textContent`)
	for _, want := range []string{xss, "made this node", "Natalia sold clips", "score orm", "Evaluations (1)", "evaluation call", "Score:"} {
		if !strings.Contains(details, want) {
			t.Errorf("node details lack %q:\n%s", want, details)
		}
	}
	// Model output is text: nothing ran, no element was made from it.
	if got := eval[string](t, b, `String(window.__pwned)`); got != "undefined" {
		t.Fatalf("model output ran as script: window.__pwned = %s", got)
	}
	if got := eval[int](t, b, `document.querySelectorAll("img, iframe, object, embed").length + document.scripts.length`); got != 1 {
		t.Fatalf("the page holds %d scripts/images, want only app.js", got)
	}
	// The nested search's nodes carry their own LLM calls.
	b.do(t, chromedp.Click(chromedp.CSS(`#nodes circle[data-key="2/1"]`)))
	b.waitFor(t, "nested node details", `document.getElementById("details").dataset.node === "2/1"`)
	if d := eval[string](t, b, `document.getElementById("details").textContent`); !strings.Contains(d, "sub-problem: how many clips in May?") || !strings.Contains(d, "nested search") {
		t.Errorf("nested node details:\n%s", d)
	}

	// Search by text finds the node and selects it.
	b.do(t, chromedp.SendKeys(chromedp.ID("search"), "__pwned=2\n"))
	b.waitFor(t, "a search match", `document.querySelectorAll("#nodes .node.match").length === 1 && document.getElementById("details").dataset.node === "1"`)
	// Collapsing by depth hides the deeper nodes.
	b.do(t, chromedp.SetValue(chromedp.ID("depth"), "1"))
	eval[chromedp.Void](t, b, `document.getElementById("depth").dispatchEvent(new Event("change"))`)
	b.waitFor(t, "depth 1", `document.querySelectorAll("#nodes .node").length === 4`)
	b.do(t, chromedp.SetValue(chromedp.ID("depth"), "all"))
	eval[chromedp.Void](t, b, `document.getElementById("depth").dispatchEvent(new Event("change"))`)

	// The timeline lists events; clicking one shows it.
	b.waitFor(t, "the timeline", `document.querySelectorAll("#event-spacer .ev").length > 5`)
	b.do(t, chromedp.Click(chromedp.CSS(`#event-spacer .ev[data-seq="2"]`)))
	b.waitFor(t, "event details", `document.querySelector("#details h2").textContent.startsWith("Event #2")`)

	// A screenshot for the record, with a best-path answer selected.
	best := res.Trace.BestPath[len(res.Trace.BestPath)-1]
	b.do(t, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#nodes circle[data-key="%d"]`, best))))
	b.waitFor(t, "best node details", fmt.Sprintf(`document.getElementById("details").dataset.node === "%d"`, best))
	eval[chromedp.Void](t, b, `document.getElementById("search").value = ""; document.getElementById("search").dispatchEvent(new Event("input"))`)
	b.do(t, chromedp.Sleep(300*time.Millisecond))
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(artifactDir(t), "viewer-live-run.png")
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", out)
	if *update {
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "img", "viewer.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
