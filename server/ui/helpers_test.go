package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/llm"
	"github.com/ponder-rlm/ponder/retrieval"
	"github.com/ponder-rlm/ponder/retrieval/embedded"
	"github.com/ponder-rlm/ponder/retrieval/ingest"
	"github.com/ponder-rlm/ponder/server/ui"
	"github.com/ponder-rlm/ponder/standard"
	"github.com/ponder-rlm/ponder/tools"
	"github.com/ponder-rlm/ponder/tools/calc"
	"github.com/ponder-rlm/ponder/traces"
)

// xss is model output that would run script if the page ever rendered text
// as HTML.
const xss = `<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> First, add the two counts.`

// fakeLLM is an OpenAI-compatible chat completions endpoint (the only part
// of these tests that stands in for something real). After `open` requests
// it holds further ones until release is called, so a test can look at a
// search mid-way.
type fakeLLM struct {
	srv  *httptest.Server
	mu   sync.Mutex
	n    int
	open int
	gate chan struct{}
	once sync.Once
}

func startFakeLLM(t *testing.T, open int) *fakeLLM {
	t.Helper()
	f := &fakeLLM{open: open, gate: make(chan struct{})}
	if open < 0 {
		f.release()
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() { f.release(); f.srv.Close() })
	return f
}

func (f *fakeLLM) release() { f.once.Do(func() { close(f.gate) }) }

func (f *fakeLLM) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/chat/completions" {
		http.Error(w, `{"error":{"message":"not found"}}`, http.StatusNotFound)
		return
	}
	var req struct {
		Messages []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
		N int `json:"n"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.n++
	call := f.n
	f.mu.Unlock()
	if call > f.open {
		select {
		case <-f.gate:
		case <-r.Context().Done():
			return
		}
	}
	n := max(req.N, 1)
	var prompt strings.Builder
	for _, m := range req.Messages {
		prompt.WriteString(m.Content)
	}
	p := prompt.String()
	type choice struct {
		Index        int               `json:"index"`
		Message      map[string]string `json:"message"`
		FinishReason string            `json:"finish_reason"`
	}
	var choices []choice
	for i := 0; i < n; i++ {
		var text string
		switch {
		case strings.Contains(p, "Score: N"):
			text = fmt.Sprintf("The steps look %s.\nScore: %d", []string{"shaky", "plausible", "right"}[call%3], 1+(call*7)%10)
		case call == 1 && i == 0:
			text = xss
		case strings.Contains(p, "Step 1:") || strings.Contains(p, "sub-problem"):
			text = fmt.Sprintf("So the total is 48 + 24 = \\boxed{%d}", 72-(call+i)%3)
		default:
			text = fmt.Sprintf("Option %d.%d: the second amount is half of 48, which is 24.", call, i)
		}
		choices = append(choices, choice{Index: i, Message: map[string]string{"role": "assistant", "content": text}, FinishReason: "stop"})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"id": fmt.Sprintf("fake-%d", call), "object": "chat.completion", "model": "fake-model",
		"choices": choices,
		"usage":   map[string]int{"prompt_tokens": len(p) / 4, "completion_tokens": 12 * n, "total_tokens": len(p)/4 + 12*n},
	})
}

// treeStrategy grows a small tree with the blueprint's operators: expand
// the root, score children with the judge, expand the best ones again, and
// solve one step as a nested chain-of-thought search.
//
// Once the root's children exist it records the root's statistics, as a
// search does (a stats event, not a node state), after beforeStats returns.
func treeStrategy(ctx context.Context, env *core.Env, beforeStats func(context.Context)) (core.Outcome, error) {
	judge, err := env.Evaluator("judge", nil)
	if err != nil {
		return core.Outcome{}, err
	}
	expand := func(parent core.NodeID, k int) ([]core.NodeID, error) {
		ids, err := core.Generate(ctx, env, parent, k, core.GenerateOptions{})
		if err != nil {
			return ids, err
		}
		if parent == 0 {
			beforeStats(ctx)
			if err := env.Structure.SetStats(0, 0.25, 7); err != nil {
				return ids, err
			}
			core.Prune(env, ids[2]) // while the judges are still busy
		}
		evs, oks, err := core.EvaluateAll(ctx, env, judge, ids)
		if err != nil {
			return ids, err
		}
		for i, id := range ids {
			visits, value := 1+i, 0.0
			if oks[i] {
				value = evs[i].Score
			}
			_ = env.Structure.Update(id, func(n *core.Node) { n.Visits, n.Value = visits, value })
		}
		return ids, nil
	}
	first, err := expand(0, 3)
	if err != nil {
		return core.Outcome{}, err
	}
	var leaves []core.NodeID
	for _, id := range first {
		kids, err := expand(id, 2)
		if err != nil {
			return core.Outcome{}, err
		}
		leaves = append(leaves, kids...)
	}
	if _, err := env.SolveSub(ctx, first[1], core.Task{Problem: "sub-problem: what is half of 48?", Strategy: "cot"}); err != nil {
		return core.Outcome{}, err
	}
	// A tool call and its result, as PAL records them.
	args := json.RawMessage(`{"expression":"48 + 48 / 2"}`)
	call, err := env.AddNode([]core.NodeID{first[2]}, core.Node{Kind: core.KindToolCall, Content: "48 + 48 / 2",
		Meta: map[string]any{"tool": "calc", "arguments": args}})
	if err != nil {
		return core.Outcome{}, err
	}
	res, err := env.CallTool(ctx, core.ToolCall{Name: "calc", Arguments: args})
	if err != nil {
		return core.Outcome{}, err
	}
	if _, err := env.AddNode([]core.NodeID{call}, core.Node{Kind: core.KindToolResult, Content: res.Text}); err != nil {
		return core.Outcome{}, err
	}
	// Passages retrieved from the task's collection.
	if _, _, err := core.RetrieveNode(ctx, env, 0, core.RetrieveRequest{Query: "how are clips sold", K: 2}); err != nil {
		return core.Outcome{}, err
	}
	score := func(n core.Node) float64 { s, _ := n.Score(); return s }
	best, err := core.Select(env, leaves, score)
	if err != nil {
		return core.Outcome{}, err
	}
	n := env.Structure.MustNode(best)
	return core.Outcome{Best: best, Answer: n.Answer}, nil
}

// rig is a viewer over a real trace store fed by a real engine asking the
// fake LLM through Ponder's OpenAI client.
type rig struct {
	store *traces.Store
	eng   *core.Engine
	llm   *fakeLLM
	srv   *httptest.Server
	done  chan struct{}
	// stats holds the search before it records the root's statistics
	// until statsNow (when hold is set), so a test sees them arrive live.
	hold      bool
	stats     chan struct{}
	statsOnce sync.Once
}

// statsNow lets a held search record the root's statistics.
func (r *rig) statsNow() { r.statsOnce.Do(func() { close(r.stats) }) }

func newRig(t *testing.T, open int) *rig {
	t.Helper()
	f := startFakeLLM(t, open)
	st, err := traces.Open(t.TempDir(), 50, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Held requests outlast any wait of the tests (80 s): a request that
	// timed out would send events of its own (an eval_error update holds
	// the whole node) and could satisfy a wait for the event under test.
	pol, err := llm.New(config.LLM{BaseURL: f.srv.URL + "/v1", Model: "fake-model", Timeout: 5 * time.Minute, N: "yes"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	toolbox := tools.NewRegistry(nil)
	if err := toolbox.Register(calc.New(nil), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { toolbox.Close() })
	r := &rig{store: st, llm: f, done: make(chan struct{}), stats: make(chan struct{})}
	t.Cleanup(r.statsNow)
	beforeStats := func(ctx context.Context) {
		if r.hold {
			select {
			case <-r.stats:
			case <-ctx.Done():
			}
		}
	}
	reg := standard.Registry()
	reg.RegisterStrategy(core.StrategySpec{Name: "viewer-test", Summary: "test tree",
		New: func(core.Params) (core.Strategy, error) {
			return core.StrategyFunc(func(ctx context.Context, env *core.Env) (core.Outcome, error) {
				return treeStrategy(ctx, env, beforeStats)
			}), nil
		}})
	r.eng = core.NewEngine(pol, reg, &core.EngineOptions{OnStart: st.Start, OnEnd: st.Finish, RecordPrompts: true,
		Packs: standard.Packs, Concurrency: 4, Tools: toolbox, Retriever: docs(t)})
	mux := http.NewServeMux()
	h := ui.Handler(st, &ui.Options{Done: r.done, Heartbeat: 500 * time.Millisecond})
	mux.Handle("/ui/", h)
	mux.Handle("/ui", h)
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	t.Cleanup(func() { close(r.done) }) // runs first: ends event streams so Close returns
	return r
}

// docs is a real document store holding one guide, for retrieval.
func docs(t *testing.T) core.Retriever {
	t.Helper()
	dir := t.TempDir()
	guide := filepath.Join(dir, "clips-guide.md")
	if err := os.WriteFile(guide, []byte("# Clip shop\n\n## Sales\n\nClips are sold to friends, one clip per friend.\n\n"+
		"## Packing\n\nClips come in boxes of 12.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := embedded.Open(filepath.Join(dir, "store.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := ingest.New(st, &ingest.Options{Collection: "docs"}).Run(t.Context(), []string{guide}, nil); err != nil {
		t.Fatal(err)
	}
	return retrieval.NewRetriever(st, &retrieval.RetrieverOptions{Collection: "docs"})
}

// solve starts a search in the background and returns a function that
// waits for its result.
func (r *rig) solve(t *testing.T, problem string) func() core.Result {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan core.Result, 1)
	go func() {
		res, err := r.eng.Solve(ctx, core.Task{Problem: problem, Strategy: "viewer-test", Pack: "gsm8k",
			Tools: []string{"calc"}, Collection: "docs"})
		if err != nil {
			t.Errorf("solve: %v", err)
		}
		ch <- res
	}()
	var res *core.Result
	wait := func() core.Result {
		if res == nil {
			v := <-ch
			res = &v
		}
		return *res
	}
	t.Cleanup(func() { r.llm.release(); cancel(); wait() })
	return wait
}

// liveID waits for the one run in the store to start and returns its id.
func (r *rig) liveID(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if l := r.store.List(); len(l) > 0 {
			return l[0].ID
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no run started")
	return ""
}

// countNodes counts the nodes of a structure and its nested ones.
func countNodes(s *core.Structure) (top, all int) {
	for _, n := range s.Nodes() {
		top++
		all++
		if n.Sub != nil {
			_, a := countNodes(n.Sub)
			all += a
		}
	}
	return top, all
}
