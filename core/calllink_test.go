package core_test

import (
	"testing"

	"github.com/ponder-rlm/ponder/core"
)

// Every generated node names the llm_call event that made it, so a trace
// viewer can show the exact prompt and response behind a step.
func TestNodesLinkTheLLMCallThatMadeThem(t *testing.T) {
	t.Parallel()
	pol := &countingPolicy{reply: answerAfter(3)}
	eng := core.NewEngine(pol, testRegistry(), &core.EngineOptions{RecordPrompts: true})
	res, err := eng.Solve(t.Context(), core.Task{Problem: "What is 6*7?", Strategy: "chain"})
	if err != nil {
		t.Fatal(err)
	}
	bySeq := map[int64]core.Event{}
	for _, e := range res.Trace.Events {
		bySeq[e.Seq] = e
	}
	linked := 0
	for _, n := range res.Trace.Structure.Nodes() {
		if n.Kind == core.KindProblem {
			continue
		}
		seq := n.LLMCall
		if seq == 0 {
			t.Fatalf("node %d has no llm_call link: meta %v", n.ID, n.Meta)
		}
		call := bySeq[seq]
		if call.Op != core.OpLLMCall {
			t.Fatalf("node %d links event %d, an %q event", n.ID, seq, call.Op)
		}
		resp, _ := call.Get("responses").([]string)
		if len(resp) != 1 || resp[0] != n.Content {
			t.Fatalf("node %d links a call that answered %q, node says %q", n.ID, resp, n.Content)
		}
		linked++
	}
	if linked != 3 {
		t.Fatalf("%d linked nodes, want 3", linked)
	}
}
