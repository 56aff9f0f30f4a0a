package plugins

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

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
	eng := hoardEngine(t)
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

// A strategy plugin's answer is capped as a node's content is, and counts
// toward what it may add to a run: a 10 MiB answer was accepted whole (the
// result, the trace's end event and the trace each held it: a 20 MB
// trace). Past MaxNodeBytes, or past what the run has left, it is cut on a
// rune boundary, and the result's warnings say so; an answer that fits is
// kept whole and said nothing of.
func TestStrategyPluginAnswerIsCapped(t *testing.T) {
	t.Parallel()
	eng := hoardEngine(t)
	// 74 nodes of 900,000 bytes (and their kind, "step") leave this much
	// of MaxRunBytes.
	left := MaxRunBytes - 74*(900000+len(core.KindStep))
	tests := []struct {
		problem string
		bytes   int    // of the answer kept
		warning string // in the result's warnings, "" for none
	}{
		{"content 1 0 1000", 1001, ""},
		{"content 1 0 1048574", MaxNodeBytes - 1, ""},
		{"content 1 0 10485760", MaxNodeBytes - 1,
			"plugin hoard answered with 10.0 MiB, over the 1 MiB a plugin may add to a run at once: the answer was cut to its first 1048575 bytes"},
		{"content 900000 74 1000", 1001, ""},
		{"content 900000 74 1048576", left - 1,
			"plugin hoard answered with 1.0 MiB, over what is left of the 64 MiB a plugin may add to a run: the answer was cut to its first"},
		// 64 nodes of 1 MiB leave nothing; a short answer is still kept.
		{"content 1048572 64 1000", 1001, ""},
		{"content 1048572 64 10000", minAnswerBytes - 1, "the answer was cut to its first 4095 bytes"},
	}
	for _, tt := range tests {
		res, err := eng.Solve(context.Background(), core.Task{Problem: tt.problem, Strategy: "hoard"})
		if err != nil {
			t.Fatalf("%s: %v", tt.problem, err)
		}
		warnings := strings.Join(res.Warnings, "\n")
		if len(res.Answer) != tt.bytes || !utf8.ValidString(res.Answer) || res.Stopped != core.StopDone {
			t.Errorf("%s: an answer of %d bytes (valid UTF-8: %t), stopped %s, want %d bytes; warnings: %s",
				tt.problem, len(res.Answer), utf8.ValidString(res.Answer), res.Stopped, tt.bytes, warnings)
		}
		if tt.warning == "" && warnings != "" || !strings.Contains(warnings, tt.warning) {
			t.Errorf("%s: warnings %q, want %q", tt.problem, warnings, tt.warning)
		}
	}
}

// hoardEngine is an engine with the strategy-hoard test plugin installed
// as "hoard", over a policy that answers 7.
func hoardEngine(t *testing.T) *core.Engine {
	t.Helper()
	dir := t.TempDir()
	installMode(t, dir, "hoard", sdk.KindStrategy, "strategy-hoard")
	m := newTestManager(t, Options{Dirs: []string{dir}})
	reg := core.NewRegistry()
	if errs := m.Register(reg); len(errs) > 0 {
		t.Fatal(errs)
	}
	return core.NewEngine(core.PolicyFunc(func(context.Context, core.CompletionRequest) (core.Completion, error) {
		return core.Completion{Choices: []core.Choice{{Text: "The answer is 7."}}}, nil
	}), reg, nil)
}
