package evaluator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/ponder-rlm/ponder/core"
)

// Combinators build one evaluator from several: First asks them in turn
// and keeps the first verdict that applies (a verifier, then a value model);
// Weighted mixes their scores. Registered as "first" and "weighted", they
// name their parts in the "evaluators" parameter:
//
//	verifier,value                      (first)
//	verifier:2,value:1                  (weighted)
//	[{"name": "value", "weight": 1, "params": {"samples": 3, "temperature": 0.7}}, "prm"]

func init() {
	composites = append(composites, firstSpec, weightedSpec)
}

// First returns the verdict of the first evaluator that applies; those that
// return core.ErrNotApplicable are skipped. Other errors are returned (the
// node stays unscored). With none applicable it is not applicable either.
type First []core.Evaluator

// Part is one evaluator of a Weighted mix.
type Part struct {
	Name      string
	Evaluator core.Evaluator
	Weight    float64
}

// Weighted scores a path with every part, concurrently, and returns the
// weighted mean of the scores of the parts that apply, under Kind (default
// core.ScoreValue). A part that fails is left out of the mean, unless it
// failed on the budget or the context, or every part failed.
type Weighted struct {
	Parts []Part
	Kind  string
}

var (
	_ core.Evaluator = First(nil)
	_ core.Evaluator = Weighted{}
)

// PathFree implements core.PathFree: when every part is.
func (f First) PathFree() bool {
	for _, ev := range f {
		if !core.IsPathFree(ev) {
			return false
		}
	}
	return true
}

// PathFree implements core.PathFree: when every part is.
func (w Weighted) PathFree() bool {
	for _, p := range w.Parts {
		if !core.IsPathFree(p.Evaluator) {
			return false
		}
	}
	return true
}

// Evaluate implements core.Evaluator.
func (f First) Evaluate(ctx context.Context, req core.EvalRequest) (core.Evaluation, error) {
	for _, ev := range f {
		e, err := ev.Evaluate(ctx, req)
		if errors.Is(err, core.ErrNotApplicable) {
			continue
		}
		return e, err
	}
	return core.Evaluation{}, core.ErrNotApplicable
}

// Evaluate implements core.Evaluator.
func (w Weighted) Evaluate(ctx context.Context, req core.EvalRequest) (core.Evaluation, error) {
	evs := make([]core.Evaluation, len(w.Parts))
	errs := make([]error, len(w.Parts))
	var wg sync.WaitGroup
	for i, p := range w.Parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			evs[i], errs[i] = p.Evaluator.Evaluate(ctx, req)
		}()
	}
	wg.Wait()
	var (
		sum, weights float64
		correct      *bool
		details      []string
		firstErr     error
	)
	for i, p := range w.Parts {
		err := errs[i]
		switch {
		case errors.Is(err, core.ErrNotApplicable):
			continue
		case err != nil && (errors.Is(err, core.ErrBudgetExhausted) || ctx.Err() != nil):
			return core.Evaluation{}, err
		case err == nil && (math.IsNaN(evs[i].Score) || evs[i].Score < -1 || evs[i].Score > 1):
			err = fmt.Errorf("%s: score %v is outside [-1, 1]", p.Name, evs[i].Score)
		}
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("%s: %w", p.Name, err)
			}
			details = append(details, p.Name+" failed")
			continue
		}
		sum += p.Weight * evs[i].Score
		weights += p.Weight
		if correct == nil && evs[i].Correct != nil {
			correct = evs[i].Correct
		}
		details = append(details, fmt.Sprintf("%s %.3g×%g", p.Name, evs[i].Score, p.Weight))
	}
	if weights == 0 {
		if firstErr != nil {
			return core.Evaluation{}, firstErr
		}
		return core.Evaluation{}, core.ErrNotApplicable
	}
	kind := w.Kind
	if kind == "" {
		kind = core.ScoreValue
	}
	return core.Evaluation{Score: sum / weights, Kind: kind, Correct: correct, Detail: strings.Join(details, ", ")}, nil
}

// PartSpec names one evaluator of a combination, as written in the
// "evaluators" parameter.
type PartSpec struct {
	Name   string      `json:"name"`
	Weight float64     `json:"weight,omitempty"`
	Params core.Params `json:"params,omitempty"`
}

// ParseParts reads an "evaluators" list: comma-separated names with
// optional weights (verifier:2,value), or a JSON array whose items are
// names or {"name", "weight", "params"} objects. Weights default to 1 and
// must be positive.
func ParseParts(s string) ([]PartSpec, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("no evaluators listed")
	}
	var out []PartSpec
	if strings.HasPrefix(s, "[") {
		var raw []json.RawMessage
		if err := json.Unmarshal([]byte(s), &raw); err != nil {
			return nil, fmt.Errorf("not a JSON list: %v", err)
		}
		for i, r := range raw {
			var name string
			if json.Unmarshal(r, &name) == nil {
				out = append(out, PartSpec{Name: name})
				continue
			}
			var p PartSpec
			dec := json.NewDecoder(strings.NewReader(string(r)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&p); err != nil {
				return nil, fmt.Errorf("item %d: want a name or {\"name\", \"weight\", \"params\"}: %v", i+1, err)
			}
			out = append(out, p)
		}
	} else {
		for _, item := range strings.Split(s, ",") {
			name, w, hasW := strings.Cut(strings.TrimSpace(item), ":")
			p := PartSpec{Name: strings.TrimSpace(name)}
			if hasW {
				f, err := strconv.ParseFloat(strings.TrimSpace(w), 64)
				if err != nil {
					return nil, fmt.Errorf("weight of %s: want a number, got %q", p.Name, w)
				}
				p.Weight = f
			}
			out = append(out, p)
		}
	}
	for i := range out {
		if out[i].Name == "" {
			return nil, fmt.Errorf("item %d has no evaluator name", i+1)
		}
		if out[i].Weight == 0 {
			out[i].Weight = 1
		}
		if out[i].Weight < 0 || math.IsNaN(out[i].Weight) || math.IsInf(out[i].Weight, 0) {
			return nil, fmt.Errorf("weight of %s must be positive, got %v", out[i].Name, out[i].Weight)
		}
	}
	return out, nil
}

// buildParts builds each named part from reg.
func buildParts(reg *core.Registry, list string) ([]Part, error) {
	specs, err := ParseParts(list)
	if err != nil {
		return nil, fmt.Errorf("%w \"evaluators\": %v", core.ErrInvalidParam, err)
	}
	parts := make([]Part, len(specs))
	for i, s := range specs {
		ev, err := reg.Evaluator(s.Name, s.Params)
		if err != nil {
			return nil, fmt.Errorf("%w \"evaluators\": %v", core.ErrInvalidParam, err)
		}
		parts[i] = Part{Name: s.Name, Evaluator: ev, Weight: s.Weight}
	}
	return parts, nil
}

var evaluatorsDoc = "evaluators to combine: names with optional weights (verifier:2,value) or a JSON list of " +
	`names and {"name", "weight", "params"} objects`

func firstSpec(reg *core.Registry) core.EvaluatorSpec {
	return core.EvaluatorSpec{
		Name:    "first",
		Summary: "first that applies: asks each listed evaluator in turn and keeps the first verdict (skipping those not applicable)",
		Params: []core.ParamSpec{{Name: "evaluators", Type: core.ParamJSON, Default: "verifier,value",
			Description: evaluatorsDoc}},
		New: func(p core.Params) (core.Evaluator, error) {
			parts, err := buildParts(reg, p.String("evaluators"))
			if err != nil {
				return nil, err
			}
			f := make(First, len(parts))
			for i, pt := range parts {
				f[i] = pt.Evaluator
			}
			return f, nil
		},
	}
}

func weightedSpec(reg *core.Registry) core.EvaluatorSpec {
	return core.EvaluatorSpec{
		Name:    "weighted",
		Summary: "weighted mean of the scores of the listed evaluators that apply (evaluated concurrently)",
		Params: []core.ParamSpec{
			{Name: "evaluators", Type: core.ParamJSON, Description: evaluatorsDoc + " (required)"},
			{Name: "kind", Type: core.ParamString, Default: core.ScoreValue, Description: "score name the mix is stored under",
				Enum: []string{core.ScoreValue, core.ScorePRM, core.ScoreORM, core.ScoreVerifier}},
		},
		New: func(p core.Params) (core.Evaluator, error) {
			if strings.TrimSpace(p.String("evaluators")) == "" {
				return nil, fmt.Errorf("%w \"evaluators\": list the evaluators to mix, e.g. verifier:2,value:1", core.ErrInvalidParam)
			}
			parts, err := buildParts(reg, p.String("evaluators"))
			if err != nil {
				return nil, err
			}
			return Weighted{Parts: parts, Kind: p.String("kind")}, nil
		},
	}
}
