package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/llm/sim/simtest"
	"github.com/ponder-rlm/ponder/server/ui/uitest"
	"github.com/ponder-rlm/ponder/traces"
)

// solvedTrace runs `ponder solve --trace` on the simulator and returns the
// data dir, the trace file and the trace.
func solvedTrace(t *testing.T) (string, string, *core.Trace) {
	t.Helper()
	data := t.TempDir()
	file := filepath.Join(t.TempDir(), "run.json")
	env := []string{"PONDER_LLM_BASE_URL=" + simtest.Start(t, sim.Options{Seed: 3}), "PONDER_DATA_DIR=" + data}
	r := runPonder(t, "", env, "solve", "--strategy", "self-consistency", "--param", "k=4", "--trace", file,
		"Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?")
	if r.code != 0 {
		t.Fatalf("solve: exit %d: %s", r.code, r.stderr)
	}
	tr, err := traces.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return data, file, tr
}

func TestTraceListAndGet(t *testing.T) {
	t.Parallel()
	data, file, tr := solvedTrace(t)
	env := []string{"PONDER_DATA_DIR=" + data}
	r := runPonder(t, "", env, "trace", "list", "--json")
	var list []traces.Summary
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &list) != nil {
		t.Fatalf("trace list --json: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	if len(list) != 1 || list[0].ID != tr.ID || list[0].Strategy != "self-consistency" || list[0].Answer != tr.Answer {
		t.Fatalf("trace list: %+v, want trace %s", list, tr.ID)
	}
	if r := runPonder(t, "", env, "trace", "list"); r.code != 0 || !strings.Contains(r.stdout, tr.ID) || !strings.Contains(r.stdout, "self-consistency") {
		t.Fatalf("trace list: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	r = runPonder(t, "", env, "trace", "get", tr.ID)
	var got core.Trace
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &got) != nil || got.ID != tr.ID || got.Structure.Len() != tr.Structure.Len() {
		t.Fatalf("trace get: exit %d: %.300s%s", r.code, r.stdout, r.stderr)
	}
	// A trace, file or id that is not there is a failure (exit 1), as a
	// missing document is for `ingest delete`; a bad command line, a
	// malformed id included, exits 2.
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"trace", "get", "0123456789abcdef"}, 1, "is not in"},
		{[]string{"trace", "get", "not-an-id"}, 2, "is not a trace id"},
		{[]string{"trace", "get"}, 2, "accepts 1 arg"},
		{[]string{"trace", "view", "no-such-file.json"}, 1, "no such file, and not a trace id"},
		{[]string{"trace", "view", "0123456789abcdef"}, 1, "see `ponder trace list`"},
		{[]string{"trace", "view", "--addr", "256.0.0.1:1", file}, 2, "pick another --addr"},
	} {
		r := runPonder(t, "", env, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Errorf("ponder %s: exit %d, stderr %q; want %d and one line with %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.code, tc.want)
		}
	}
}

// viewer runs `ponder trace view args` and returns the URL it printed.
func viewer(t *testing.T, env []string, args ...string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(ponderBin, append([]string{"trace", "view"}, args...)...)
	cmd.Env = append(append(cleanEnv(), "PONDER_LOG_LEVEL=warn"), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("trace view printed no URL: %v", err)
	}
	u, ok := strings.CutPrefix(strings.TrimSpace(line), "Trace viewer: ")
	if !ok {
		t.Fatalf("trace view printed %q", line)
	}
	go io.Copy(io.Discard, out)
	return u, cmd
}

// `ponder trace view FILE` shows a saved trace in the browser, and only to
// whoever has the URL it printed.
func TestTraceViewShowsASavedTrace(t *testing.T) {
	t.Parallel()
	b := uitest.NewBrowser(t, 1280, 800)
	_, file, tr := solvedTrace(t)
	url, cmd := viewer(t, []string{"PONDER_DATA_DIR=" + t.TempDir()}, file)
	if !strings.Contains(url, "?token=") || !strings.HasSuffix(url, "#run="+tr.ID) {
		t.Fatalf("URL %q lacks the token or the run", url)
	}
	base := url[:strings.Index(url, "/ui/")]
	resp, err := http.Get(base + "/ui/api/runs/" + tr.ID)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without the token the trace answers %s", resp.Status)
	}

	b.Do(t, chromedp.Navigate(url))
	b.WaitFor(t, "the saved tree", fmt.Sprintf(`document.body.dataset.state === "ready" && document.querySelectorAll("#nodes .node").length === %d`, tr.Structure.Len()))
	if got := uitest.Eval[string](t, b, `location.search`); got != "" {
		t.Errorf("the token stays in the address bar: %q", got)
	}
	if got := uitest.Eval[string](t, b, `document.getElementById("run-answer").textContent`); got != tr.Answer {
		t.Errorf("answer shows %q, trace says %q", got, tr.Answer)
	}
	b.Do(t, chromedp.Click(chromedp.CSS(`#nodes circle[data-key="1"]`)))
	b.WaitFor(t, "node 1's details", `document.getElementById("details").dataset.node === "1"`)
	n1 := tr.Structure.MustNode(1)
	if d := uitest.Eval[string](t, b, `document.getElementById("details").textContent`); !strings.Contains(d, strings.TrimSpace(n1.Content)) || !strings.Contains(d, "made this node") {
		t.Errorf("node 1's details lack its text or its LLM call:\n%.600s", d)
	}
	b.Screenshot(t, "trace-view.png")

	// Browsers send a host name's cookies to every port on it: another
	// local server (another user's page on the same host) receives the
	// viewer's login cookie, which must not be the token.
	cookies := make(chan string, 8)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cookies <- r.Header.Get("Cookie")
	}))
	defer other.Close()
	token := url[strings.Index(url, "?token=")+len("?token=") : strings.Index(url, "#")]
	b.Do(t, chromedp.Navigate(other.URL+"/ui/"))
	if got := <-cookies; !strings.Contains(got, "ponder_ui_") || strings.Contains(got, token) {
		t.Errorf("another server on this host got the cookies %q: want the viewer's login, not its token %s", got, token)
	}

	// Ctrl-C stops it promptly, open event streams notwithstanding.
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("trace view exited with %v after Ctrl-C", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("trace view still running 10s after Ctrl-C")
	}
}

// A damaged trace in the data directory is reported as damaged, not as
// missing.
func TestTraceGetSaysATraceIsDamaged(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	dir := filepath.Join(data, "traces")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "0123456789abcdef.json"), []byte(`{"schema":"ponder.trace/v1","id":`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"PONDER_DATA_DIR=" + data}
	for _, args := range [][]string{{"trace", "get", "0123456789abcdef"}, {"trace", "view", "0123456789abcdef"}} {
		r := runPonder(t, "", env, args...)
		if r.code == 0 || !strings.Contains(r.stderr, "cannot be read") || strings.Contains(r.stderr, "is not in") {
			t.Errorf("%v: exit %d, stderr %q; want it to say the trace cannot be read", args, r.code, r.stderr)
		}
	}
}

// `ponder trace view FILE` of a trace whose id is no trace id ("../../x",
// in a file someone sent) shows it under an id of its own and writes
// nothing outside its temporary store: the id named the files, and the
// viewer wrote x.json two folders up. Two files of one id are both shown.
func TestTraceViewOfAFileWithAHostileID(t *testing.T) {
	_, file, tr := solvedTrace(t)
	tmp := filepath.Join(t.TempDir(), "a", "b")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", tmp) // the viewer's store is made here
	tr.ID = "../../x"
	hostile := filepath.Join(t.TempDir(), "hostile.json")
	if err := traces.WriteFile(hostile, tr); err != nil {
		t.Fatal(err)
	}
	st, first, cleanup, err := viewStore(config.Config{}, []string{hostile, file, file}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	if !traces.ValidID(first) || len(st.List()) != 3 {
		t.Errorf("first %q, %d runs listed; want a trace id and 3 runs", first, len(st.List()))
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(filepath.Dir(tmp)), "x.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("x.json written outside the viewer's store: %v", err)
	}
}
