package core_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/core"
)

type fakeRetriever struct {
	chunks []core.Chunk
	err    error
	got    []core.RetrieveRequest
}

func (f *fakeRetriever) Retrieve(ctx context.Context, req core.RetrieveRequest) ([]core.Chunk, error) {
	f.got = append(f.got, req)
	return f.chunks, f.err
}

func TestGroundingPutsPassagesInEveryPrompt(t *testing.T) {
	t.Parallel()
	ret := &fakeRetriever{chunks: []core.Chunk{
		{ID: "c1", Text: "The admin console listens on port 7443.", Source: "/docs/guide.md", Score: 2, Meta: map[string]string{"headings": "Guide › Ports"}},
		{ID: "c2", Text: "Backups run nightly.", Source: "/docs/ops.pdf", Meta: map[string]string{"page": "3"}},
	}}
	var prompts []string
	pol := &countingPolicy{reply: func(req core.CompletionRequest, _ int) string {
		prompts = append(prompts, req.Messages[len(req.Messages)-1].Content)
		return "per [1], \\boxed{7443}"
	}}
	eng := core.NewEngine(pol, testRegistry(), &core.EngineOptions{Retriever: ret})
	res, err := eng.Solve(t.Context(), core.Task{Problem: "Which port does the admin console use?", Strategy: "chain", Collection: "docs"})
	if err != nil || res.Answer != "7443" {
		t.Fatalf("solve: %v %+v", err, res)
	}
	if len(ret.got) != 1 || ret.got[0].Collection != "docs" || ret.got[0].Query != "Which port does the admin console use?" || ret.got[0].K != core.GroundK {
		t.Fatalf("retrieval requests: %+v", ret.got)
	}
	problem := strings.TrimPrefix(prompts[0][:strings.LastIndex(prompts[0], "\n\n")], "Problem:\n")
	q, ps, ok := core.ParseGrounded(problem)
	if !ok || q != "Which port does the admin console use?" || len(ps) != 2 || ps[0].Text != "The admin console listens on port 7443." ||
		ps[0].Source != "/docs/guide.md — Guide › Ports" || ps[1].Source != "/docs/ops.pdf (page 3)" {
		t.Fatalf("prompt did not carry the passages: %q -> %q %+v", prompts[0], q, ps)
	}
	root := res.Trace.Structure.MustNode(0)
	got, _ := root.Meta["retrieved"].([]any)
	if root.Content != "Which port does the admin console use?" || len(got) != 2 || got[0].(map[string]any)["source"] != "/docs/guide.md" {
		t.Fatalf("root node: %q meta %v", root.Content, root.Meta)
	}
	retrieves := 0
	for _, e := range res.Trace.Events {
		if e.Op == core.OpRetrieve {
			retrieves++
		}
	}
	if retrieves != 1 || res.Trace.Problem != "Which port does the admin console use?" {
		t.Fatalf("trace: %d retrieve events, problem %q", retrieves, res.Trace.Problem)
	}
}

func TestGroundingFailureStopsTheRun(t *testing.T) {
	t.Parallel()
	ret := &fakeRetriever{err: errors.New("qdrant unreachable")}
	pol := &countingPolicy{}
	eng := core.NewEngine(pol, testRegistry(), &core.EngineOptions{Retriever: ret})
	res, err := eng.Solve(t.Context(), core.Task{Problem: "q", Strategy: "chain", Collection: "docs"})
	if err != nil || res.Stopped != core.StopError || !strings.Contains(res.Error, "qdrant unreachable") || pol.calls.Load() != 0 {
		t.Fatalf("res %+v err %v calls %d", res, err, pol.calls.Load())
	}
}

func TestRetrieveNode(t *testing.T) {
	t.Parallel()
	ret := &fakeRetriever{chunks: []core.Chunk{{ID: "c1", Text: "Port 7443.", Source: "/a.md"}}}
	reg := testRegistry()
	reg.RegisterStrategy(core.StrategySpec{Name: "retrieving", New: func(core.Params) (core.Strategy, error) {
		return core.StrategyFunc(func(ctx context.Context, env *core.Env) (core.Outcome, error) {
			id, chunks, err := core.RetrieveNode(ctx, env, 0, core.RetrieveRequest{Query: "port", K: 3, Collection: "other"})
			if err != nil || len(chunks) != 1 {
				return core.Outcome{}, err
			}
			n := env.Structure.MustNode(id)
			src := n.Meta["sources"].([]any)[0].(map[string]any)
			if n.Kind != core.KindRetrieval || !strings.Contains(n.Content, "[1] /a.md\nPort 7443.") || src["id"] != "c1" {
				t.Errorf("retrieval node: %+v", n)
			}
			return core.Outcome{Answer: "7443", Best: id}, nil
		}), nil
	}})
	eng := core.NewEngine(&countingPolicy{}, reg, &core.EngineOptions{Retriever: ret})
	res, err := eng.Solve(t.Context(), core.Task{Problem: "q", Strategy: "retrieving"})
	if err != nil || res.Answer != "7443" || len(ret.got) != 1 || ret.got[0].Collection != "other" {
		t.Fatalf("%+v %v %+v", res, err, ret.got)
	}
}
