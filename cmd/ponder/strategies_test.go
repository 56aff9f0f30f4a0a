package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// issue4Strategies are the strategies issue 4 asks `ponder strategies` to
// list, with parameters each must document.
var issue4Strategies = map[string][]string{
	"beam":             {"beam_width", "expansions", "max_depth", "evaluator"},
	"mcts":             {"iterations", "children", "c1", "c2", "gamma", "lr_td", "rollouts", "alpha", "final", "parallel", "virtual_loss", "evaluator"},
	"tot-bfs":          {"breadth", "threshold", "evaluator"},
	"tot-dfs":          {"threshold", "evaluator"},
	"got":              {"graph", "evaluator"},
	"refine":           {"rounds", "evaluator", "threshold"},
	"decompose":        {"sub_strategy", "sub_params", "sub_budget"},
	"cot":              {"temperature"},
	"self-consistency": {"k"},
	"best-of-n":        {"n", "evaluator"},
}

func TestStrategiesListsEveryStrategyWithItsParameters(t *testing.T) {
	t.Parallel()
	r := runPonder(t, "", nil, "strategies", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
	}
	var listing struct {
		Strategies []struct {
			Name    string `json:"name"`
			Summary string `json:"summary"`
			Params  []struct {
				Name        string `json:"name"`
				Type        string `json:"type"`
				Default     any    `json:"default"`
				Description string `json:"description"`
			} `json:"params"`
		} `json:"strategies"`
		Evaluators []struct {
			Name string `json:"name"`
		} `json:"evaluators"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &listing); err != nil {
		t.Fatalf("strategies --json: %v\n%s", err, r.stdout)
	}
	listed := map[string][]string{}
	for _, s := range listing.Strategies {
		if s.Summary == "" {
			t.Errorf("%s has no summary", s.Name)
		}
		for _, p := range s.Params {
			if p.Type == "" || p.Description == "" || p.Default == nil {
				t.Errorf("%s parameter %s: type %q, default %v, description %q; want all three", s.Name, p.Name, p.Type, p.Default, p.Description)
			}
			listed[s.Name] = append(listed[s.Name], p.Name)
		}
	}
	for name, params := range issue4Strategies {
		got, ok := listed[name]
		if !ok {
			t.Errorf("strategies --json lacks %s", name)
			continue
		}
		for _, p := range params {
			if !slices.Contains(got, p) {
				t.Errorf("%s lacks parameter %s (has %v)", name, p, got)
			}
		}
	}
	var evaluators []string
	for _, e := range listing.Evaluators {
		evaluators = append(evaluators, e.Name)
	}
	for _, ev := range []string{"value", "prm", "orm", "judge", "exact", "game24", "unittest", "weighted", "first"} {
		if !slices.Contains(evaluators, ev) {
			t.Errorf("strategies --json lacks evaluator %s (has %v)", ev, evaluators)
		}
	}

	// The text form: a block per strategy, a line per parameter with its
	// type and default, its description wrapped below.
	r = runPonder(t, "", nil, "strategies")
	if r.code != 0 {
		t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
	}
	// Long descriptions are wrapped, not stretched into one table row.
	for _, l := range strings.Split(r.stdout, "\n") {
		if len(l) > 100 && strings.Contains(strings.TrimSpace(l), " ") {
			t.Errorf("line of %d columns: %s", len(l), l)
		}
	}
	blocks := map[string]string{}
	for _, b := range strings.Split(strings.TrimSpace(r.stdout), "\n\n") {
		name, _, _ := strings.Cut(b, "\n")
		blocks[name] = b
	}
	for name, params := range issue4Strategies {
		b, ok := blocks[name]
		if !ok {
			t.Errorf("strategies lacks %s:\n%s", name, r.stdout)
			continue
		}
		for _, p := range params {
			line := ""
			for _, l := range strings.Split(b, "\n") {
				if strings.HasPrefix(l, "    "+p+" ") {
					line = l
				}
			}
			if !strings.Contains(line, "(default") {
				t.Errorf("%s: no line for %s with its default:\n%s", name, p, b)
			}
		}
	}
}
