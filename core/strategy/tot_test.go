package strategy_test

import (
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/core"
)

// Tree of thoughts that prunes every candidate ends by itself with no
// answer, as ToT does; the result says why, where a bare "done" with no
// answer left the caller guessing.
func TestToTSaysWhyItFoundNoAnswer(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		strategy string
		reply    string
		params   core.Params
		want     string
	}{
		{"dfs, all pruned", "tot-dfs", "Score: 1", nil, "no answer: every path was pruned (valued below threshold"},
		{"bfs, all pruned", "tot-bfs", "Score: 1", core.Params{"threshold": 0.0}, "no answer: every path was pruned (valued below threshold 0)"},
		{"dfs, out of states", "tot-dfs", "Score: 9", core.Params{"max_states": 1}, "no answer: the search expanded max_states (1) states"},
	} {
		res, err := newEngine(stepper(c.reply)).Solve(t.Context(), core.Task{Problem: "What is 17 * 23?", Pack: "generic",
			Strategy: c.strategy, Params: c.params})
		if err != nil {
			t.Fatal(err)
		}
		if res.Answer != "" || res.Stopped != core.StopDone || len(res.Warnings) != 1 || !strings.HasPrefix(res.Warnings[0], c.want) {
			t.Errorf("%s: answer %q, stopped %s, warnings %q; want none, done and %q", c.name, res.Answer, res.Stopped, res.Warnings, c.want)
		}
	}
	// A search that found an answer has nothing to say.
	res, err := newEngine(stepper("Score: 9")).Solve(t.Context(), core.Task{Problem: "What is 17 * 23?", Pack: "generic", Strategy: "tot-dfs"})
	if err != nil || res.Answer == "" || len(res.Warnings) != 0 {
		t.Fatalf("answer %q, warnings %q, err %v", res.Answer, res.Warnings, err)
	}
}
