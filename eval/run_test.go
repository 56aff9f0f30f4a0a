package eval

import (
	"context"
	"testing"

	"github.com/ponder-rlm/ponder/llm/sim"
)

func TestRunGame24(t *testing.T) {
	t.Parallel()
	eng := simEngine(t, sim.Options{Seed: 1})
	d := loadNamed(t, "game24")
	out := t.TempDir()
	sum, err := Run(context.Background(), eng, Options{Out: out, Dataset: d, Limit: 5, Offset: 900,
		Strategies: []string{"cot", "self-consistency", "best-of-n"}, Budgets: []int64{4, 8}})
	if err != nil {
		t.Fatal(err)
	}
	recs, bad, err := ReadRecords(out + "/" + ResultsFile)
	if err != nil || len(bad) > 0 {
		t.Fatal(err, bad)
	}
	for _, r := range recs {
		t.Logf("%s %s %d %s %q calls=%d samples=%d/%d", r.Item, r.Strategy, r.Budget, r.Status, r.Answer, r.Usage.LLMCalls, r.SamplesCorrect, r.Samples)
	}
	t.Logf("%+v", sum)
}
