package eval

import (
	"fmt"
	"strconv"

	"github.com/ponder-rlm/ponder/core"
)

// BudgetMappingVersion names the rules of BudgetParams; a run directory
// records it, so a change of rules is a change of configuration.
const BudgetMappingVersion = "v1"

// GradingVersion names the rules that turn a finished search into a
// record's status; a run directory records it, so that a run resumed by a
// Ponder that grades otherwise is refused instead of mixing records graded
// two ways in one report. Raise it with every change of those rules.
//
//   - unset (manifests before it): every search that returned was graded.
//   - v2: a search whose LLM failed more of its calls than it answered is
//     an error record (llm_errors), as is one stopped with nothing found
//     by calls that failed.
const GradingVersion = "v2"

// BudgetParams returns the parameters that make strategy spend a budget
// of b LLM calls, and a one-line description of the rule. Every run is
// also capped at b calls (core.Limits.LLMCalls), so the rule only decides
// how a strategy uses its budget:
//
//   - cot: nothing to set; one call whatever the budget.
//   - self-consistency: k = b samples.
//   - best-of-n: n = b/2 samples, each scored by one judge call (n = b when
//     the evaluator is a programmatic one: verifier, unittest).
//   - any other strategy (beam, mcts, tot-bfs, tot-dfs, got, refine,
//     plugins): its defaults, run under the cap; searches are anytime and
//     return their best answer when the cap ends them. One that stops
//     earlier (x1's MCTS stops when selection reaches a terminal node)
//     spends less, and the report shows what was spent.
//
// User parameters (user) win over the rule: --param self-consistency.k=5
// fixes k whatever the budget.
func BudgetParams(strategy string, b int64, user core.Params) (core.Params, string) {
	p := core.Params{}
	rule := "defaults, capped at the budget"
	switch strategy {
	case "cot":
		rule = "one call"
	case "self-consistency":
		p["k"] = strconv.FormatInt(max(1, b), 10)
		rule = "k = budget"
	case "best-of-n":
		n := max(1, b/2)
		rule = "n = budget/2 (one judge call per sample)"
		if ev, ok := user["evaluator"]; ok && programmatic(fmt.Sprint(ev)) {
			n, rule = max(1, b), "n = budget (programmatic evaluator)"
		}
		p["n"] = strconv.FormatInt(n, 10)
	}
	for k, v := range user {
		p[k] = v
	}
	return p, rule
}

// programmatic reports evaluators that make no LLM call.
func programmatic(name string) bool {
	switch name {
	case "verifier", "unittest":
		return true
	}
	return false
}

// BudgetRules describes BudgetParams for the given strategies (for run
// manifests and reports).
func BudgetRules(strategies []string, params map[string]core.Params) map[string]string {
	out := map[string]string{}
	for _, s := range strategies {
		_, out[s] = BudgetParams(s, 2, params[s])
	}
	return out
}
