// Package uitest drives Ponder's trace viewer in headless Chromium for
// tests: it finds the browser (or skips the test when none is installed),
// collects page errors, and waits on conditions in the page.
//
//	b := uitest.NewBrowser(t, 1440, 900) // skips without chromium
//	b.Do(t, chromedp.Navigate(url+"/ui/"))
//	b.WaitFor(t, "the tree", `document.querySelectorAll("#nodes .node").length > 0`)
//	n := uitest.Eval[int](t, b, `document.querySelectorAll("#nodes .node").length`)
//	b.Screenshot(t, "viewer.png") // into $PONDER_ARTIFACTS or a temporary dir
package uitest

import (
	"context"
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

// Chromium returns the path of a Chromium (Debian's package chromium,
// installed by scripts/deps.sh) and skips the test when there is none.
func Chromium(tb testing.TB) string {
	tb.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	tb.Skip("chromium is not installed: run `bash scripts/deps.sh` (Debian package chromium) to run the browser tests")
	return ""
}

// Browser is one headless Chromium tab. Uncaught exceptions and
// console.error calls in the page fail the test when it ends.
type Browser struct {
	Ctx  context.Context
	mu   sync.Mutex
	errs []string
}

// NewBrowser starts Chromium with a fresh profile and a window of the
// given size; it stops when the test ends.
func NewBrowser(tb testing.TB, width, height int) *Browser {
	tb.Helper()
	exe := Chromium(tb)
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
	b := &Browser{Ctx: ctx}
	if err := chromedp.Listen(ctx, b.record); err != nil {
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

func (b *Browser) record(ev any) {
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
}

// Do runs actions, failing the test on an error or after 90 seconds.
func (b *Browser) Do(tb testing.TB, actions ...chromedp.Action[chromedp.Void]) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 90*time.Second)
	defer cancel()
	for attempt := 0; ; attempt++ {
		err := chromedp.Do(ctx, actions...)
		if err == nil {
			return
		}
		// A live page redraws its tree as events arrive: an element found
		// by a query can be replaced before the click reaches it. Query
		// and act again on a fresh element.
		if attempt < 5 && strings.Contains(err.Error(), "Could not find node with given id") {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		tb.Fatal(err)
	}
}

// Eval evaluates a JavaScript expression in the page.
func Eval[T any](tb testing.TB, b *Browser, js string) T {
	tb.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 90*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		tb.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// WaitFor polls a JavaScript predicate until it holds (80 seconds at
// most); on a timeout the test fails with the viewer's state.
func (b *Browser) WaitFor(tb testing.TB, what, js string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 90*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(20*time.Millisecond),
		chromedp.WithPollingTimeout(80*time.Second))); err != nil {
		state := Eval[string](tb, b, `(document.body && document.body.dataset.state) + " " + `+
			`JSON.stringify((document.getElementById("tree") || {dataset: {}}).dataset) + " " + `+
			`(document.body ? document.body.innerText.slice(0, 400) : "")`)
		tb.Fatalf("waiting for %s: %v (page: %s)", what, err, state)
	}
}

// Screenshot captures the tab, writes it as name under ArtifactDir and
// returns the PNG.
func (b *Browser) Screenshot(tb testing.TB, name string) []byte {
	tb.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 90*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.Fatal(err)
	}
	out := filepath.Join(ArtifactDir(tb), name)
	if err := os.WriteFile(out, png, 0o644); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("screenshot: %s", out)
	return png
}

// ArtifactDir is where tests leave screenshots: $PONDER_ARTIFACTS when
// set (CI keeps it), else a temporary directory.
func ArtifactDir(tb testing.TB) string {
	tb.Helper()
	if d := os.Getenv("PONDER_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			tb.Fatal(err)
		}
		return d
	}
	return tb.TempDir()
}
