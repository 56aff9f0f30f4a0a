package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/testutil"
	"github.com/ponder-rlm/ponder/retrieval/embed"
)

// heldLLM is countingLLM holding every request until free is called:
// asked receives one value per request that arrived and waits. free runs
// at the test's end too, before the server closes (which waits for its
// handlers).
func heldLLM(t *testing.T) (url string, asked <-chan struct{}, free func()) {
	t.Helper()
	release := make(chan struct{})
	arrived := make(chan struct{}, 16)
	url, _ = countingLLM(t, func() {
		arrived <- struct{}{}
		<-release
	})
	var once sync.Once
	free = func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	return url, arrived, free
}

// countingLLM answers every chat completion with okCompletion, running
// before (when set) first, and counts the calls.
func countingLLM(t *testing.T, before func()) (string, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if before != nil {
			before()
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, okCompletion)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v1", &calls
}

// A --trace FILE that cannot be written is refused before the search
// spends a call.
func TestSolveTraceFileCheckedBeforeTheSearch(t *testing.T) {
	t.Parallel()
	url, calls := countingLLM(t, nil)
	dir := t.TempDir()
	for _, tt := range []struct{ path, want string }{
		{dir, "is a directory"},
		{filepath.Join(dir, "no", "such", "dir", "t.json"), "cannot be written"},
	} {
		r := runPonder(t, "", []string{"PONDER_LLM_BASE_URL=" + url}, "solve", "--trace", tt.path, "What is 6 times 7?")
		if r.code != 2 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("--trace %s: exit %d, stderr %q; want 2 and %q", tt.path, r.code, r.stderr, tt.want)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d LLM calls made for a trace file that cannot be written", n)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".trace-*")); len(left) != 0 {
		t.Fatalf("check left %v behind", left)
	}
}

// When the trace cannot be kept (the disk filled or went away during the
// search), the answer is still printed and the output says what was lost.
func TestSolveAnswersWhenTheTraceCannotBeKept(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "out")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	url, _ := countingLLM(t, func() { os.RemoveAll(dir) })
	r := runPonder(t, "", []string{"PONDER_LLM_BASE_URL=" + url}, "solve", "--json", "--trace", filepath.Join(dir, "t.json"), "What is 6 times 7?")
	var out solveOutput
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("no JSON answer (exit %d): %v\nstdout %s\nstderr %s", r.code, err, r.stdout, r.stderr)
	}
	if out.Answer != "42" || out.TraceFile != "" || !strings.Contains(out.TraceError, "not written to") {
		t.Fatalf("output %+v: want the answer, no trace_file and a trace_error", out)
	}
	if r.code != 1 || !strings.Contains(r.stderr, "the answer was printed") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}

	// A data directory that cannot be created: the run answers and says
	// its trace was not kept.
	if _, err := os.Stat("/proc/self"); err != nil {
		t.Skip("needs /proc")
	}
	r = runPonder(t, "", []string{"PONDER_LLM_BASE_URL=" + url, "PONDER_DATA_DIR=/proc/ponder-no-such-dir"}, "solve", "--json", "What is 6 times 7?")
	out = solveOutput{}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != 0 {
		t.Fatalf("exit %d, %v\nstdout %s\nstderr %s", r.code, err, r.stdout, r.stderr)
	}
	if out.Answer != "42" || !strings.Contains(out.TraceError, "not kept in the data directory") {
		t.Fatalf("output %+v: want the answer and a trace_error", out)
	}
}

// A problem on stdin longer than the limit is refused, not cut short.
func TestSolveRefusesAnOverlongProblemOnStdin(t *testing.T) {
	t.Parallel()
	url, calls := countingLLM(t, nil)
	r := runPonder(t, "What is 6 times 7? "+strings.Repeat("x", maxProblemBytes), []string{"PONDER_LLM_BASE_URL=" + url}, "solve")
	if r.code != 2 || !strings.Contains(r.stderr, "longer than") || calls.Load() != 0 {
		t.Fatalf("exit %d, %d calls, stderr %q", r.code, calls.Load(), r.stderr)
	}
}

// The LLM client's messages do not say where the endpoint is (they also
// reach server clients and traces); at the command line, the user who set
// it is told which endpoint failed, without its password. Not in --json,
// whose output may be shared.
func TestSolveNamesTheFailingEndpoint(t *testing.T) {
	t.Parallel()
	base := closedPort(t)
	withPassword := strings.Replace(base, "http://", "http://user:s3cret@", 1)
	r := runPonder(t, "", []string{"PONDER_LLM_BASE_URL=" + withPassword, "PONDER_LLM_MAX_RETRIES=0"}, "solve", "2+2?")
	want := "(the LLM endpoint: " + strings.Replace(base, "http://", "http://user:xxxxx@", 1) + ")"
	if r.code != 1 || !strings.Contains(r.stderr, "cannot connect to the LLM endpoint") || !strings.Contains(r.stderr, want) {
		t.Fatalf("exit %d, stderr %q; want 1, the cause and %q", r.code, r.stderr, want)
	}
	if strings.Contains(r.stderr, "s3cret") {
		t.Errorf("stderr shows the endpoint's password: %q", r.stderr)
	}
	r = runPonder(t, "", []string{"PONDER_LLM_BASE_URL=" + base, "PONDER_LLM_MAX_RETRIES=0"}, "solve", "--json", "2+2?")
	if strings.Contains(r.stdout, strings.TrimPrefix(base, "http://")) {
		t.Errorf("--json output shows the endpoint: %s", r.stdout)
	}
}

// A grounded search whose embedding endpoint fails: the message (which
// also reaches server clients and traces) says "the embedding endpoint";
// the command line adds which one, without its password.
func TestSolveNamesTheFailingEmbeddingEndpoint(t *testing.T) {
	t.Parallel()
	base := closedPort(t)
	e, err := embed.NewOpenAI(embed.Options{BaseURL: base, Model: "m", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, embErr := e.Embed(t.Context(), []string{"q"})
	cfg := config.Default()
	cfg.Retrieval.EmbedModel = "m"
	cfg.Retrieval.EmbedURL = strings.Replace(base, "http://", "http://user:s3cret@", 1)
	res := core.Result{Stopped: core.StopError, Err: fmt.Errorf("retrieve from %q: %w", "docs", embErr)}
	res.Error = res.Err.Error()
	err = solveExit(res, "", embedEndpoint(cfg))
	want := "cannot connect to the embedding endpoint (connection refused): start it or fix retrieval.embed_url"
	where := "(the embedding endpoint: " + strings.Replace(base, "http://", "http://user:xxxxx@", 1) + ")"
	if err == nil || !strings.Contains(err.Error(), want) || !strings.HasSuffix(err.Error(), where) || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("solveExit: %v, want %q and %q without the password", err, want, where)
	}
	if strings.Contains(res.Error, strings.TrimPrefix(base, "http://")) {
		t.Errorf("the search's error (sent to server clients, kept in traces) shows the endpoint: %s", res.Error)
	}
	// Without an embedding model there is no embedding endpoint to name.
	if got := embedEndpoint(config.Default()); got != "" {
		t.Errorf("embedEndpoint without a model = %q", got)
	}
}

// A solve only reads the document store: while one runs (here waiting on
// its LLM), `ponder search` of the same store works, and `ponder ingest`
// fails after lock_timeout saying the store is in use, rather than
// waiting for the solve. The solve then answers.
func TestSearchBesideARunningSolve(t *testing.T) {
	t.Parallel()
	h := startHeldSolve(t)
	r := runPonder(t, "", h.env, "search", "--k", "1", "emergency radio frequency")
	if r.code != 0 || !strings.Contains(r.stdout, "146.520 MHz") {
		t.Errorf("search beside a running solve: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	note := filepath.Join(t.TempDir(), "note.md")
	if err := os.WriteFile(note, []byte("A new note."), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runPonder(t, "", h.env, "ingest", note)
	if r.code == 0 || !strings.Contains(r.stderr, "is in use by another ponder process (a running `ponder serve`, ingest, search, solve --collection, eval or tools call?)") {
		t.Errorf("ingest beside a running solve: %d, want an error saying the store is in use\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	if code := h.finish(); code != 0 {
		t.Fatalf("solve: exit %d\n%s\n%s", code, h.out.String(), h.errb.String())
	}
	if !strings.Contains(h.out.String(), `"answer": "42"`) {
		t.Errorf("solve's answer: %s", h.out.String())
	}
}

// heldSolve is `ponder solve --collection docs --json` over docsFolder,
// held inside its first LLM call: it has retrieved (grounding comes
// first) and holds the document store, read-only, while a test runs other
// commands beside it with env (the same data directory, lock_timeout
// 300ms).
type heldSolve struct {
	env       []string
	out, errb testutil.LockedBuffer
	waited    chan error
	free      func()
	code      int // the exit code once finish took it; -1 before
}

// startHeldSolve ingests docsFolder and starts the solve; it returns once
// the solve asked its LLM. The solve is stopped at the test's end.
func startHeldSolve(t *testing.T) *heldSolve {
	t.Helper()
	url, asked, free := heldLLM(t)
	h := &heldSolve{env: []string{"PONDER_DATA_DIR=" + t.TempDir(), "PONDER_RETRIEVAL_LOCK_TIMEOUT=300ms"},
		waited: make(chan error, 1), free: free, code: -1}
	if r := runPonder(t, "", h.env, "ingest", docsFolder(t)); r.code != 0 {
		t.Fatalf("ingest: %d %s", r.code, r.stderr)
	}
	solve := exec.Command(ponderBin, "solve", "--collection", "docs", "--json", "What is the emergency radio frequency of Orion station?")
	solve.Env = append(cleanEnv(), append(h.env, "PONDER_LLM_BASE_URL="+url, "PONDER_LLM_MAX_RETRIES=0")...)
	solve.Stdout, solve.Stderr = &h.out, &h.errb
	if err := solve.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { h.waited <- solve.Wait() }()
	t.Cleanup(func() {
		if h.code == -1 && h.finish() == -1 {
			_ = solve.Process.Kill()
			<-h.waited
		}
	})
	select {
	case <-asked:
	case err := <-h.waited:
		h.waited <- err
		t.Fatalf("solve ended before asking its LLM: %v\n%s\n%s", err, h.out.String(), h.errb.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("solve never asked its LLM: %s", h.errb.String())
	}
	return h
}

// finish lets the solve's LLM answer and returns the solve's exit code
// (-1: it did not end within 20 s).
func (h *heldSolve) finish() int {
	h.free()
	h.code = exited(h.waited, 20*time.Second)
	return h.code
}

// solve says whether the pack's check accepts the answer: in --json, and
// in the summary line or a warning for people reading the terminal.
func TestSolveSaysWhetherThePackAcceptsTheAnswer(t *testing.T) {
	t.Parallel()
	url, _ := countingLLM(t, nil)
	env := []string{"PONDER_LLM_BASE_URL=" + url, "PONDER_DATA_DIR=" + t.TempDir()}
	for _, c := range []struct {
		truth, verified, stderr string
	}{
		{"42", "true", "answer checked by the pack"},
		{"41", "false", "warning: the answer is wrong: by the gsm8k pack's check it differs from the task's truth"},
		{"", "", "stopped: done, 1 LLM call"},
	} {
		args := []string{"solve", "--pack", "gsm8k", "What is 6 times 7?"}
		if c.truth != "" {
			args = append(args, "--truth", c.truth)
		}
		r := runPonder(t, "", env, args...)
		if r.code != 0 || !strings.Contains(r.stderr, c.stderr) {
			t.Errorf("truth %q: exit %d, stderr %q, want %q in it", c.truth, r.code, r.stderr, c.stderr)
		}
		r = runPonder(t, "", env, append(args, "--json")...)
		var out struct {
			Verified *bool `json:"verified"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatalf("truth %q: %v\n%s", c.truth, err, r.stdout)
		}
		if got := fmt.Sprint(out.Verified != nil && *out.Verified); (out.Verified == nil) != (c.verified == "") || (out.Verified != nil && got != c.verified) {
			t.Errorf("truth %q: verified %v, want %q", c.truth, out.Verified, c.verified)
		}
	}
}

// A parameter given twice is a mistake to show, not a last-one-wins (eval
// refuses repeated settings too).
func TestSolveParamGivenTwiceIsRefused(t *testing.T) {
	t.Parallel()
	if _, err := parseParams([]string{"k=1", "k=2"}); err == nil || !strings.Contains(err.Error(), "--param k is given twice") {
		t.Errorf("k twice: %v", err)
	}
	if p, err := parseParams([]string{"k=1", "temperature=0.5"}); err != nil || len(p) != 2 {
		t.Errorf("two parameters: %v %v", p, err)
	}
}

// A cancelled search says whether it printed an answer: "printed the best
// answer so far" followed "(no answer)".
func TestSolveCancelledSaysWhetherItHadAnAnswer(t *testing.T) {
	t.Parallel()
	for answer, want := range map[string]string{"": "cancelled before an answer was found", "42": "cancelled; printed the best answer so far"} {
		err := solveExit(core.Result{Stopped: core.StopCancelled, Answer: answer}, "", "")
		var ee exitError
		if !errors.As(err, &ee) || ee.code != 130 || err.Error() != want {
			t.Errorf("answer %q: %v; want exit 130 saying %q", answer, err, want)
		}
	}
}

// A collection that is not there is refused before the run, as MCP's solve
// refuses it: the run started, printed "(no answer)" and kept a trace.
func TestSolveOnAMissingCollectionIsRefusedFirst(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	url, calls := countingLLM(t, nil)
	env := []string{"PONDER_LLM_BASE_URL=" + url, "PONDER_DATA_DIR=" + data}
	if r := runPonder(t, "The service listens on port 8080.", env, "ingest", "--collection", "there", "-"); r.code != 0 {
		t.Fatalf("ingest: %d %s", r.code, r.stderr)
	}
	r := runPonder(t, "", env, "solve", "--collection", "nope", "What is 6 times 7?")
	if r.code != 1 || !strings.Contains(r.stderr, `no such collection "nope"`) || calls.Load() != 0 {
		t.Fatalf("exit %d, %d LLM calls, stderr %q; want exit 1 before any call", r.code, calls.Load(), r.stderr)
	}
	if entries, _ := os.ReadDir(filepath.Join(data, "traces")); len(entries) != 0 {
		t.Errorf("a trace was kept: %v", entries)
	}
}
