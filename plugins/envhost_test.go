package plugins

import (
	"context"
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/sdk"
)

// What a strategy plugin puts into a run itself is bounded: a node, an
// update or a trace event over MaxNodeBytes is refused with an error that
// names the plugin and the limit (101 nodes of 3 MiB took the server to
// 4 GB and a 635 MB trace), and past MaxRunBytes in all its additions are
// refused as the budget's are. Steps of a few KiB, and statistics updates
// of a large node, pass.
func TestStrategyPluginAdditionsAreBounded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	installMode(t, dir, "hoard", sdk.KindStrategy, "strategy-hoard")
	m := newTestManager(t, Options{Dirs: []string{dir}})
	reg := core.NewRegistry()
	if errs := m.Register(reg); len(errs) > 0 {
		t.Fatal(errs)
	}
	policy := core.PolicyFunc(func(context.Context, core.CompletionRequest) (core.Completion, error) {
		return core.Completion{Choices: []core.Choice{{Text: "The answer is 7."}}}, nil
	})
	eng := core.NewEngine(policy, reg, nil)
	tests := []struct {
		problem string
		want    []string // in the answer
	}{
		{"content 3145728 1", []string{"0 refused: host add node: plugin hoard sent a node of 3.0 MiB, over the 1 MiB a plugin may add to a run at once"}},
		{"answer 2097152 1", []string{"0 refused: host add node: plugin hoard sent a node of 2.0 MiB, over the 1 MiB"}},
		{"meta 2000000 1", []string{"0 refused: host add node: plugin hoard sent a node of 1.9 MiB"}},
		{"update 2000000 1", []string{"0 refused: host update node: plugin hoard sent 1.9 MiB of scores and meta for node 1, over the 1 MiB"}},
		{"trace 2000000 1", []string{"0 refused: host trace: plugin hoard sent 1.9 MiB of trace data, over the 1 MiB"}},
		// Replay and the viewer apply prune and evaluate events: as notes
		// they marked a node pruned, or scored, that was not.
		{"trace-prune 1 1", []string{"0 refused: host trace: a plugin records prune by doing it: call Host.Prune"}},
		{"trace-evaluate 1 1", []string{"0 refused: host trace: a plugin records evaluate by doing it: call Host.Evaluate"}},
		{"content 1048000 1", []string{"1 all"}},
		{"content 10240 100", []string{"100 all"}},
		// 512 KiB recorded again at each of 200 updates would be 100 MiB.
		{"stats 524288 200", []string{"200 all"}},
		{"update 400000 200", []string{" refused: host update node: budget exhausted: plugin hoard added 64 MiB to this run's nodes and trace, the most a plugin may"}},
		{"content 900000 100", []string{"74 refused: host add node: budget exhausted: plugin hoard added 64 MiB"}},
	}
	for _, tt := range tests {
		res, err := eng.Solve(context.Background(), core.Task{Problem: tt.problem, Strategy: "hoard"})
		if err != nil {
			t.Fatalf("%s: %v", tt.problem, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(res.Answer, w) {
				t.Errorf("%s: answer %.300q, want %q in it (error %q)", tt.problem, res.Answer, w, res.Error)
			}
		}
	}
}
