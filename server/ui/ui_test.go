package ui_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/server/ui"
	"github.com/ponder-rlm/ponder/traces"
)

type sseMsg struct {
	event, id, data string
}

// sseStream reads server-sent events from an open response.
type sseStream struct {
	resp *http.Response
	sc   *bufio.Scanner
}

func openSSE(t *testing.T, ctx context.Context, url string, hdr map[string]string) *sseStream {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	s := &sseStream{resp: resp, sc: sc}
	t.Cleanup(func() { resp.Body.Close() })
	return s
}

// next returns the next event (comments and retry lines skipped).
func (s *sseStream) next(t *testing.T) sseMsg {
	t.Helper()
	var m sseMsg
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "":
			if m.event != "" || m.data != "" {
				return m
			}
		case strings.HasPrefix(line, ":"), strings.HasPrefix(line, "retry:"):
		case strings.HasPrefix(line, "event: "):
			m.event = line[len("event: "):]
		case strings.HasPrefix(line, "id: "):
			m.id = line[len("id: "):]
		case strings.HasPrefix(line, "data: "):
			m.data += line[len("data: "):]
		default:
			t.Fatalf("unexpected SSE line %q", line)
		}
	}
	t.Fatalf("event stream ended: %v", s.sc.Err())
	return m
}

func getJSON(t *testing.T, url string, v any) *http.Response {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp
}

func TestRunsListAndTrace(t *testing.T) {
	t.Parallel()
	r := newRig(t, -1)
	res := r.solve(t, "Natalia sold clips to 48 friends in April and half as many in May. How many altogether?")()
	var runs []traces.Summary
	getJSON(t, r.srv.URL+"/ui/api/runs", &runs)
	if len(runs) != 1 {
		t.Fatalf("%d runs listed, want 1", len(runs))
	}
	got := runs[0]
	if got.ID != res.TraceID || got.Strategy != "viewer-test" || got.Pack != "gsm8k" || got.Status != core.StopDone ||
		got.Answer != res.Answer || got.Answer == "" || got.Usage.LLMCalls != res.Usage.LLMCalls || got.Started.IsZero() ||
		!strings.HasPrefix(got.Problem, "Natalia") {
		t.Fatalf("run summary %+v does not describe result %+v", got, res)
	}
	var tr core.Trace
	resp := getJSON(t, r.srv.URL+"/ui/api/runs/"+res.TraceID, &tr)
	if !resp.Uncompressed {
		t.Errorf("a %d-event trace was not gzip-compressed", len(tr.Events))
	}
	if tr.Schema != core.TraceSchema || tr.ID != res.TraceID || tr.Answer != res.Answer || len(tr.BestPath) == 0 {
		t.Fatalf("trace: schema %q id %q answer %q best %v", tr.Schema, tr.ID, tr.Answer, tr.BestPath)
	}
	wantTop, wantAll := countNodes(res.Trace.Structure)
	top, all := countNodes(tr.Structure)
	if top != wantTop || all != wantAll || all <= top {
		t.Fatalf("served trace has %d/%d nodes (top/all), the run made %d/%d with a nested search", top, all, wantTop, wantAll)
	}
}

// A browser that loses its stream reconnects with Last-Event-ID and gets
// exactly the events it missed, then "end" once the trace is stored.
func TestTraceEventsStreamResumes(t *testing.T) {
	t.Parallel()
	r := newRig(t, 1) // the root's expansion answers, then the LLM stalls
	wait := r.solve(t, "What is 48 + 24?")
	id := r.liveID(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c1, stop1 := context.WithCancel(ctx)
	s := openSSE(t, c1, r.srv.URL+"/ui/api/runs/"+id+"/events", nil)
	var seen []core.Event
	for nodes := 0; nodes < 4; { // the root and its three children
		m := s.next(t)
		if m.event != "events" {
			t.Fatalf("got %q event before the run ended", m.event)
		}
		var evs []core.Event
		if err := json.Unmarshal([]byte(m.data), &evs); err != nil {
			t.Fatal(err)
		}
		if last := strconv.FormatInt(evs[len(evs)-1].Seq, 10); m.id != last {
			t.Fatalf("batch id %q, want its last seq %s", m.id, last)
		}
		for _, e := range evs {
			if e.Op == core.OpNode && len(e.Scope) == 0 {
				nodes++
			}
		}
		seen = append(seen, evs...)
	}
	stop1()
	lastID := seen[len(seen)-1].Seq
	s2 := openSSE(t, ctx, r.srv.URL+"/ui/api/runs/"+id+"/events?after=1", map[string]string{"Last-Event-ID": strconv.FormatInt(lastID, 10)})
	r.llm.release()
	for {
		m := s2.next(t)
		if m.event == "end" {
			break
		}
		var evs []core.Event
		if err := json.Unmarshal([]byte(m.data), &evs); err != nil {
			t.Fatal(err)
		}
		seen = append(seen, evs...)
	}
	res := wait()
	if len(seen) != len(res.Trace.Events) {
		t.Fatalf("streamed %d events, the trace has %d", len(seen), len(res.Trace.Events))
	}
	for i, e := range seen {
		if e.Seq != int64(i+1) || e.Op != res.Trace.Events[i].Op {
			t.Fatalf("event %d: seq %d op %q, trace has seq %d op %q", i, e.Seq, e.Op, res.Trace.Events[i].Seq, res.Trace.Events[i].Op)
		}
	}
	// "end" comes once the finished trace is stored, not the live rebuild.
	var tr core.Trace
	getJSON(t, r.srv.URL+"/ui/api/runs/"+id, &tr)
	if tr.Status != core.StopDone {
		t.Fatalf("after end the trace says %q", tr.Status)
	}
	// A finished run's stream ends at once.
	m := openSSE(t, ctx, r.srv.URL+"/ui/api/runs/"+id+"/events", nil).next(t)
	if m.event != "end" {
		t.Fatalf("finished run streamed %q, want end", m.event)
	}
}

func TestRunsStreamFollowsRuns(t *testing.T) {
	t.Parallel()
	r := newRig(t, 0)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s := openSSE(t, ctx, r.srv.URL+"/ui/api/runs/events", nil)
	list := func() []traces.Summary {
		m := s.next(t)
		if m.event != "runs" {
			t.Fatalf("event %q, want runs", m.event)
		}
		var l []traces.Summary
		if err := json.Unmarshal([]byte(m.data), &l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	if l := list(); len(l) != 0 {
		t.Fatalf("fresh store lists %d runs", len(l))
	}
	wait := r.solve(t, "What is 6 * 7?")
	if l := list(); len(l) != 1 || l[0].Status != core.StopRunning {
		t.Fatalf("after start: %+v", l)
	}
	r.llm.release()
	res := wait()
	for {
		l := list()
		if len(l) == 1 && l[0].Status == core.StopDone {
			if l[0].Answer != res.Answer {
				t.Fatalf("listed answer %q, run answered %q", l[0].Answer, res.Answer)
			}
			break
		}
	}
}

func TestRequests(t *testing.T) {
	t.Parallel()
	st, err := traces.Open(t.TempDir(), 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ui.Handler(st, nil))
	defer srv.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		method, path string
		status       int
		ctype, body  string
	}{
		{"GET", "/ui", 301, "", ""},
		{"GET", "/ui/", 200, "text/html", `<script src="app.js" defer></script>`},
		{"HEAD", "/ui/", 200, "text/html", ""},
		{"GET", "/ui/app.js", 200, "text/javascript", "textContent"},
		{"GET", "/ui/app.css", 200, "text/css", "#tree"},
		{"GET", "/ui/favicon.svg", 200, "image/svg+xml", "<svg"},
		{"GET", "/ui/nope.js", 404, "application/json", "no such page"},
		{"GET", "/ui/api/runs", 200, "application/json", "[]"},
		{"GET", "/ui/api/runs/0123456789abcdef", 404, "application/json", "not found"},
		{"GET", "/ui/api/runs/%2e%2e", 404, "application/json", "no such page"},
		{"GET", "/ui/api/runs/0123456789abcdef/events", 404, "application/json", "not found"},
		{"GET", "/ui/api/runs/0123456789abcdef/events?after=x", 400, "application/json", `after \"x\"`},
		{"GET", "/ui/api/runs/0123456789abcdef/events?after=-1", 400, "application/json", "(a number"},
		{"GET", "/ui/api/runs/0123456789abcdef/events?after=99999999999999999999", 400, "application/json", "is too large"},
		{"POST", "/ui/api/runs", 405, "application/json", "read-only"},
		{"DELETE", "/ui/", 405, "application/json", "read-only"},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype) || !strings.Contains(string(b), tc.body) {
			t.Errorf("%s %s: %d %q %.120q; want %d %q containing %q", tc.method, tc.path, resp.StatusCode,
				resp.Header.Get("Content-Type"), b, tc.status, tc.ctype, tc.body)
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != ui.CSP {
			t.Errorf("%s %s: CSP %q", tc.method, tc.path, got)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s %s: missing nosniff or frame denial", tc.method, tc.path)
		}
		if tc.status == 301 && resp.Header.Get("Location") != "/ui/" {
			t.Errorf("/ui redirects to %q", resp.Header.Get("Location"))
		}
	}
}

// Trace text is model output: the page's code must have no way to render
// it as HTML, and the page no inline script or style the CSP would have to
// allow.
func TestPageNeverRendersTextAsHTML(t *testing.T) {
	t.Parallel()
	st, _ := traces.Open("", 10, nil)
	srv := httptest.NewServer(ui.Handler(st, &ui.Options{Prefix: "/viewer"}))
	defer srv.Close()
	get := func(p string) string {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s under a custom prefix: %s", p, resp.Status)
		}
		return string(b)
	}
	js := get("/viewer/app.js")
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "srcdoc", "createContextualFragment", "DOMParser"} {
		if strings.Contains(js, sink) {
			t.Errorf("app.js uses %s", sink)
		}
	}
	html := get("/viewer/")
	if m := regexp.MustCompile(`<script(?:\s[^>]*)?>`).FindAllString(html, -1); len(m) != 1 || !strings.Contains(m[0], `src="app.js"`) {
		t.Errorf("page scripts %q, want only app.js", m)
	}
	if m := regexp.MustCompile(`(?i)\s(on\w+|style)=`).FindAllString(html, -1); len(m) > 0 {
		t.Errorf("page has inline handlers or styles: %q", m)
	}
}

func TestStreamLimit(t *testing.T) {
	t.Parallel()
	st, _ := traces.Open("", 10, nil)
	done := make(chan struct{})
	srv := httptest.NewServer(ui.Handler(st, &ui.Options{MaxStreams: 1, Done: done}))
	defer srv.Close()
	defer close(done)
	openSSE(t, t.Context(), srv.URL+"/ui/api/runs/events", nil).next(t)
	resp, err := http.Get(srv.URL + "/ui/api/runs/events")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "too many open viewers") {
		t.Fatalf("second stream: %s %s", resp.Status, b)
	}
}

// restructure replaces the structure of the trace in a file.
func restructure(structure string) func(file string) error {
	return func(file string) error {
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(b, &doc); err != nil {
			return err
		}
		doc["structure"] = json.RawMessage(structure)
		if b, err = json.Marshal(doc); err != nil {
			return err
		}
		return os.WriteFile(file, b, 0o600)
	}
}

// A stored trace damaged on disk (cut short, overwritten) is a 500 that
// says so, not a 200 whose body the page cannot read; one whose file is
// gone is a 404, like an evicted one.
func TestDamagedTraceOnDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := traces.Open(dir, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ui.Handler(st, nil))
	defer srv.Close()
	for _, tc := range []struct {
		name   string
		damage func(file string) error
		status int
		want   string
	}{
		{"cut short", func(f string) error { return os.Truncate(f, 300) }, 500, "damaged"},
		{"null", func(f string) error { return os.WriteFile(f, []byte("null"), 0o600) }, 500, "not a Ponder trace"},
		{"other JSON", func(f string) error { return os.WriteFile(f, []byte(`{"schema":"x","id":"1"}`), 0o600) }, 500, "not a Ponder trace"},
		// Valid JSON of the right schema whose structure the page cannot
		// draw: it showed an empty tree and no word.
		{"no nodes", restructure(`{"kind":"tree","nodes":null}`), 500, "damaged: its structure has no nodes"},
		{"empty nodes", restructure(`{"kind":"tree","nodes":[]}`), 500, "damaged: its structure has no nodes"},
		{"no structure", restructure(`null`), 500, "damaged: its structure has no nodes"},
		{"nodes without a root", restructure(`{"kind":"tree","nodes":[{"id":1,"parents":[0]},{"id":2,"parents":[0]}]}`), 500, "damaged: its structure's 2 nodes have no root"},
		{"removed", os.Remove, 404, "not found"},
		// An I/O error names the file, which is under the data directory.
		{"a directory in its place", func(f string) error {
			if err := os.Remove(f); err != nil {
				return err
			}
			return os.Mkdir(f, 0o700)
		}, 500, "is a directory"},
	} {
		tr := bigTrace(20, 3)
		st.Finish(tr)
		file := filepath.Join(dir, tr.ID+".json")
		if err := tc.damage(file); err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(srv.URL + "/ui/api/runs/" + tr.ID)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var body struct{ Error string }
		if resp.StatusCode != tc.status || json.Unmarshal(b, &body) != nil || !strings.Contains(body.Error, tc.want) {
			t.Errorf("%s: %s %.200s; want %d with an error saying %q", tc.name, resp.Status, b, tc.status, tc.want)
		}
		if strings.Contains(body.Error, dir) {
			t.Errorf("%s: the error shows the server's data directory: %s", tc.name, body.Error)
		}
	}
}
