package server

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// A solve's progress, its result's usage and get_trace say the same number
// of nodes: the nodes the search added, roots not counted (docs/trace.md's
// usage.nodes). Progress said 17 where usage said 16 (it counted the
// problem's root), and get_trace 29 where usage said 28 (the root again;
// and a nested search's nodes were not counted at all).
func TestNodeCountsAgree(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.rpc(t)
	nodes := regexp.MustCompile(`(\d+) nodes?\b`)
	for i, strategy := range []string{"cot", "self-consistency", "mcts", "decompose"} {
		msgs := c.call("solve", map[string]any{"problem": gsm8kProblem, "strategy": strategy,
			"budget": map[string]any{"llm_calls": 24}}, map[string]any{"progressToken": fmt.Sprint("n", i)})
		r := result(t, msgs)
		if r["isError"] == true {
			t.Fatalf("%s: %s", strategy, toolText(r))
		}
		sc := r["structuredContent"].(map[string]any)
		want := fmt.Sprint(sc["usage"].(map[string]any)["nodes"])
		if len(msgs) < 2 || msgs[len(msgs)-2]["method"] != "notifications/progress" {
			t.Fatalf("%s: no progress before the result: %v", strategy, msgs)
		}
		msg := msgs[len(msgs)-2]["params"].(map[string]any)["message"].(string)
		if m := nodes.FindStringSubmatch(msg); m == nil || m[1] != want {
			t.Errorf("%s: the last progress says %q, usage.nodes %s", strategy, msg, want)
		}
		tr := result(t, c.call("get_trace", map[string]any{"trace_id": sc["trace_id"], "detail": "summary"}, nil))
		got := tr["structuredContent"].(map[string]any)
		if fmt.Sprint(got["nodes"]) != want {
			t.Errorf("%s: get_trace's nodes %v, usage.nodes %s", strategy, got["nodes"], want)
		}
		if m := nodes.FindStringSubmatch(toolText(tr)); m == nil || m[1] != want || !strings.Contains(toolText(tr), "Trace ") {
			t.Errorf("%s: get_trace's text %q, usage.nodes %s", strategy, toolText(tr), want)
		}
	}
}
