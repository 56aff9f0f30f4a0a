package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/retrieval"
	"github.com/ponder-rlm/ponder/retrieval/embedded"
	"github.com/ponder-rlm/ponder/retrieval/ingest"
	"github.com/ponder-rlm/ponder/server/ui"
)

// A solve grounded on a collection records the chunks it retrieved under
// the absolute paths they are stored under, and the model quotes them in
// its steps. A client on another machine (a server bound beyond loopback,
// with a token) reads every such source by its name, wherever a trace
// reaches it: the solve result, get_trace, ponder://traces/{id}, the
// viewer's API and its live events, and the OpenAI endpoint's
// reasoning_content (whole and streamed). The stored trace keeps the
// paths, and a client of a loopback server reads them. Real files,
// ingest, embedded store, retriever, simulator and server.
func TestTracesHideServerPathsFromRemoteClients(t *testing.T) {
	t.Parallel()
	root, file, st := ingestHandbook(t)
	const question = "Which port does the admin console listen on?"
	for _, tc := range []struct {
		name, addr, token, want string
	}{
		{"remote", "0.0.0.0:7800", "s3cret", "handbook/ops/ports.md"},
		{"loopback", "127.0.0.1:7800", "", file},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := retrieval.NewRetriever(st, nil)
			e := newEnv(t, envOptions{
				sim:       sim.Options{Latency: 100 * time.Millisecond},
				retriever: r,
				cfg:       func(c *config.Server) { c.Addr, c.Token = tc.addr, tc.token },
				opts:      func(o *Options) { o.UI = ui.Handler(o.Traces, nil) },
			})
			h := http.Header{}
			if tc.token != "" {
				h.Set("Authorization", "Bearer "+tc.token)
			}
			// check fails unless what a client read names the source as
			// it should, and, for a remote one, holds no server path.
			check := func(what, got string) {
				t.Helper()
				if !strings.Contains(got, tc.want) {
					t.Errorf("%s does not name the source %s: %s", what, tc.want, got)
				}
				if tc.name == "remote" && strings.Contains(got, root) {
					t.Errorf("%s shows a remote client the server's path %s: %s", what, root, got)
				}
			}
			get := func(path string) string {
				t.Helper()
				req, _ := http.NewRequest(http.MethodGet, e.ts.URL+path, nil)
				req.Header = h.Clone()
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
				}
				return string(b)
			}
			chat := func(stream bool) string {
				t.Helper()
				body := `{"model":"cot:ponder-sim","messages":[{"role":"user","content":"` + question + `"}],` +
					`"ponder":{"collection":"docs"},"stream":` + map[bool]string{true: "true", false: "false"}[stream] + `}`
				req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/v1/chat/completions", strings.NewReader(body))
				req.Header = h.Clone()
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "reasoning_content") {
					t.Fatalf("chat (stream %v): %d %s", stream, resp.StatusCode, b)
				}
				return string(b)
			}

			c := e.rpcWith(t, h)
			res := result(t, c.call("solve", map[string]any{"problem": question, "collection": "docs", "strategy": "cot"}, nil))
			sc, _ := res["structuredContent"].(map[string]any)
			id, _ := sc["trace_id"].(string)
			if id == "" || !strings.Contains(toolText(res), "7443") {
				t.Fatalf("the grounded solve did not answer from the passage: %v", res)
			}
			check("solve's result", mustJSONString(res))
			check("get_trace", mustJSONString(result(t, c.call("get_trace", map[string]any{"trace_id": id, "detail": "full"}, nil))))
			msgs, _ := c.post(map[string]any{"jsonrpc": "2.0", "id": 7, "method": "resources/read",
				"params": map[string]any{"uri": "ponder://traces/" + id}})
			check("ponder://traces/"+id, mustJSONString(result(t, msgs)))
			check("GET /ui/api/runs/"+id, get("/ui/api/runs/"+id))
			check("chat completion", chat(false))
			check("streamed chat completion", chat(true))

			// The viewer following a live run: its events as they come.
			done := make(chan string, 1)
			go func() { done <- chat(true) }()
			var live string
			waitFor(t, 10*time.Second, "a live run", func() bool {
				for _, sum := range e.traces.List() {
					if sum.Status == core.StopRunning {
						live = sum.ID
					}
				}
				return live != ""
			})
			check("the live run's events", readEvents(t, e.ts.URL+"/ui/api/runs/"+live+"/events", h))
			<-done

			// The runs list names no source (the problem as asked, the
			// answer chosen).
			if list := get("/ui/api/runs"); tc.name == "remote" && strings.Contains(list, root) {
				t.Errorf("the runs list shows a remote client the server's path %s: %s", root, list)
			}

			// What is stored keeps the path, for the operator.
			raw, err := e.traces.Raw(id)
			if err != nil || !strings.Contains(string(raw), file) {
				t.Errorf("the stored trace lost the source's path %s (%v)", file, err)
			}

			// A trace over the resource cap is read as its summary, whose
			// answer (here quoting the source) is rewritten too, learnt
			// from the stored trace (it was sent as it is).
			small, err := e.traces.Get(id)
			if err != nil {
				t.Fatal(err)
			}
			big := *small
			big.ID = "feedfacefeedface"
			big.Answer = "7443, from " + file
			big.Meta = map[string]any{"padding": strings.Repeat("x", maxTraceResourceBytes)}
			e.traces.Finish(&big)
			msgs, _ = c.post(map[string]any{"jsonrpc": "2.0", "id": 8, "method": "resources/read",
				"params": map[string]any{"uri": "ponder://traces/" + big.ID}})
			sum := mustJSONString(result(t, msgs))
			if !strings.Contains(sum, "truncated") {
				t.Fatalf("the trace over the cap was not summarized: %.300s", sum)
			}
			check("the summary of a trace over the cap", sum)
		})
	}
}

// ingestHandbook ingests a folder with one document, handbook/ops/ports.md,
// into the collection "docs" of an embedded store.
func ingestHandbook(t *testing.T) (root, file string, st *embedded.Store) {
	t.Helper()
	root = t.TempDir()
	dir := filepath.Join(root, "handbook")
	if err := os.MkdirAll(filepath.Join(dir, "ops"), 0o755); err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(dir, "ops", "ports.md")
	if err := os.WriteFile(file, []byte("# Ports\n\nThe admin console listens on port 7443.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := ingest.New(st, &ingest.Options{Collection: "docs"}).Run(t.Context(), []string{dir}, nil); err != nil {
		t.Fatal(err)
	}
	return root, file, st
}

// A search that fails with an error quoting a source (an endpoint that
// echoes the prompt's line it rejects) is reported to a remote client with
// the source by its name: in ponder.choices[i].error, the choice's
// reasoning_content and the request's error, streamed or not (the error
// was sent as it was).
func TestFailedChoiceHidesServerPaths(t *testing.T) {
	t.Parallel()
	root, _, st := ingestHandbook(t)
	pol := core.PolicyFunc(func(_ context.Context, req core.CompletionRequest) (core.Completion, error) {
		for _, m := range req.Messages {
			for _, line := range strings.Split(m.Content, "\n") {
				if strings.HasPrefix(line, "[1] /") {
					return core.Completion{}, fmt.Errorf("%w: the LLM endpoint answered 400: cannot read %q", core.ErrLLMRejected, line)
				}
			}
		}
		return core.Completion{}, fmt.Errorf("%w: no passage in the prompt", core.ErrLLMRejected)
	})
	e := newEnv(t, envOptions{policy: pol, retriever: retrieval.NewRetriever(st, nil),
		cfg: func(c *config.Server) { c.Addr, c.Token = "0.0.0.0:7800", "s3cret" }})
	for _, stream := range []bool{false, true} {
		body := `{"model":"cot","stream":` + strconv.FormatBool(stream) + `,"messages":[{"role":"user","content":"Which port does the admin console listen on?"}],"ponder":{"collection":"docs"}}`
		req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer s3cret")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := string(b)
		// The request's error; streamed, the choice's note and
		// ponder.choices[0].error before it.
		const named = `cannot read \"[1] handbook/ops/ports.md`
		if n, want := strings.Count(got, named), map[bool]int{false: 1, true: 3}[stream]; n != want ||
			(stream && !strings.Contains(got, `"reasoning_content":"(search failed: `)) {
			t.Errorf("stream %v: %d times %s, want %d: %s", stream, n, named, want, got)
		}
		if strings.Contains(got, root) {
			t.Errorf("stream %v: a remote client is shown the server's path %s: %s", stream, root, got)
		}
	}
}

// readEvents reads a viewer event stream up to its "end" event.
func readEvents(t *testing.T, url string, h http.Header) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctxTimeout(t, 30*time.Second), http.MethodGet, url, nil)
	req.Header = h.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
		if sc.Text() == "event: end" {
			break
		}
	}
	return b.String()
}

// The mask names a source seen only in a citation line (the retrieve
// tool's results carry no names) as its folder's recorded chunks imply,
// else by its file name, and rewrites a path only where it stands whole.
func TestSourceMask(t *testing.T) {
	t.Parallel()
	chunk := func(src, name, title string) core.Chunk {
		c := core.Chunk{Source: src, Title: title, Text: "text of " + src}
		if name != "" {
			c.Meta = map[string]string{retrieval.MetaName: name}
		}
		return c
	}
	recorded := map[string]any{"retrieved": []any{map[string]any{"source": "/srv/u/docs/handbook/ops/ports.md",
		retrieval.MetaName: "handbook/ops/ports.md", "text": "The console listens on 7443."}}}
	for _, tc := range []struct {
		name  string
		learn []any
		in    string
		want  string
	}{
		{"recorded", []any{recorded}, "According to [1] (/srv/u/docs/handbook/ops/ports.md — Ports): 7443",
			"According to [1] (handbook/ops/ports.md — Ports): 7443"},
		{"cited under a recorded folder", []any{recorded, core.FormatPassages([]core.Chunk{chunk("/srv/u/docs/handbook/faq.md", "", "FAQ")})},
			"see /srv/u/docs/handbook/faq.md", "see handbook/faq.md"},
		{"cited elsewhere", []any{core.FormatPassages([]core.Chunk{chunk("/mnt/team/notes/a b.md", "", "")})},
			"[1] /mnt/team/notes/a b.md\ntext", "[1] a b.md\ntext"},
		{"cited with a page", []any{"[2] /srv/x/manual.pdf (page 3)\nPress the button."},
			"/srv/x/manual.pdf (page 3)", "manual.pdf (page 3)"},
		{"a longer path is not cut", []any{[]core.Chunk{chunk("/d/a.md", "a.md", ""), chunk("/d/a.md.bak", "a.md.bak", "")}},
			"/d/a.md.bak and /d/a.md", "a.md.bak and a.md"},
		{"nothing learnt", nil, "/srv/u/docs/handbook/ops/ports.md", "/srv/u/docs/handbook/ops/ports.md"},
		{"a text's name is no path", []any{[]core.Chunk{chunk("notes.md", "", "")}}, "notes.md", "notes.md"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newSourceMask()
			for _, v := range tc.learn {
				m.add(v)
			}
			if got := m.Text(tc.in); got != tc.want {
				t.Errorf("Text(%q) = %q, want %q", tc.in, got, tc.want)
			}
			in := mustJSONString(map[string]string{"s": tc.in})
			if got, want := string(m.JSON([]byte(in))), mustJSONString(map[string]string{"s": tc.want}); got != want {
				t.Errorf("JSON(%s) = %s, want %s", in, got, want)
			}
		})
	}
	var local *sourceMask // a local client's: nothing replaced
	if got := local.Text("/srv/a.md"); got != "/srv/a.md" {
		t.Errorf("a nil mask replaced: %q", got)
	}
}
