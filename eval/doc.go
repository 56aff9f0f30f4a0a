// Package eval measures reasoning strategies at matched compute: it loads
// a dataset (GSM8K, MATH-500, Game of 24, HumanEval from ../shared/data,
// or a user's JSONL with a field mapping), solves every problem with every
// strategy at every LLM-call budget, grades the answers, and keeps one
// JSONL record per (problem, strategy, budget) in a run directory that
// survives interruption. Sub-packages turn runs into reports
// (eval/report) and search traces into training data (eval/export);
// eval/mathequiv decides MATH answer equivalence.
//
//	d, err := eval.LoadDataset("game24", nil)
//	eng := core.NewEngine(policy, standard.Registry(), &core.EngineOptions{Packs: eval.Packs(standard.Packs)})
//	sum, err := eval.Run(ctx, eng, eval.Options{
//		Out: "runs/g24", Dataset: d, Limit: 20,
//		Strategies: []string{"cot", "self-consistency", "best-of-n"},
//		Budgets:    []int64{10, 20, 40},
//	})
//	recs, _, err := eval.ReadRecords("runs/g24/results.jsonl")
//
// A run directory holds manifest.json (the configuration and its hash: a
// directory of another configuration is refused), results.jsonl (records
// appended and synced as they finish; re-running skips what is there) and
// traces/ID.json (each search's trace, for `ponder export`). How a budget
// maps onto each strategy's parameters is BudgetParams. docs/eval.md
// documents every file format.
package eval
