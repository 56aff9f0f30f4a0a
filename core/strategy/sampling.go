package strategy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"

	"github.com/ponder-rlm/ponder/core"
)

func init() {
	builtins = append(builtins, cotSpec, selfConsistencySpec, bestOfNSpec)
}

var temperatureParam = core.ParamSpec{Name: "temperature", Type: core.ParamFloat, Default: 0.7,
	Description: "sampling temperature of the policy", Min: core.Bound(0), Max: core.Bound(2)}

var perRequestParam = core.ParamSpec{Name: "per_request", Type: core.ParamInt, Default: int64(1),
	Description: "samples asked per request (the OpenAI n); requests run in parallel up to the LLM concurrency limit",
	Min:         core.Bound(1), Max: core.Bound(128)}

// sampleSolutions asks for k complete solutions below the root in
// ceil(k/per) concurrent requests. Sample i carries Meta "sample" = i so
// ties can be broken by sample order, which does not depend on which request
// finished first. It returns the samples it got; err is the first failure
// (budget, context, LLM) and the caller decides whether what it got is
// enough.
func sampleSolutions(ctx context.Context, env *core.Env, k, per int, temp float64) ([]core.Node, error) {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	// When the calls left cannot pay for every sample, the first samples
	// get them: left to the requests, which ones got the budget would
	// depend on which reserved first, and so would the answer.
	k, capped := fitSamples(env, k)
	type batch struct{ first, n int }
	var batches []batch
	for i := 0; i < k; i += per {
		batches = append(batches, batch{i, min(per, k-i)})
	}
	for _, b := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seed := env.Seed(int64(b.first))
			ids, err := core.Generate(ctx, env, 0, b.n, core.GenerateOptions{Whole: true, Temperature: &temp, Seed: &seed, Purpose: "sample"})
			for j, id := range ids {
				_ = env.Structure.Update(id, func(n *core.Node) {
					if n.Meta == nil {
						n.Meta = map[string]any{}
					}
					n.Meta["sample"] = b.first + j
				})
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var out []core.Node
	for _, n := range env.Structure.Children(0) {
		out = append(out, n)
	}
	sort.SliceStable(out, func(i, j int) bool { return sampleIndex(out[i]) < sampleIndex(out[j]) })
	if capped != nil {
		errs = append(errs, capped)
	}
	return out, firstErr(errs)
}

// fitSamples caps a request for k samples at the LLM calls left: a
// request is paid for whole or not at all, so asking for more than the
// budget allows would get nothing where it could get what fits. capped
// says so (core.ErrBudgetExhausted) when it cut k.
func fitSamples(env *core.Env, k int) (int, error) {
	if left := env.Budget.Remaining(); left >= 0 && int64(k) > left {
		return int(left), fmt.Errorf("%w: %d of %d samples fit in the %d llm calls left", core.ErrBudgetExhausted, left, k, left)
	}
	return k, nil
}

func sampleIndex(n core.Node) int {
	switch v := n.Meta["sample"].(type) {
	case int:
		return v
	case float64:
		return int(v)
	}
	return math.MaxInt
}

// firstErr prefers an error that explains the stop (context, budget) over
// the LLM errors it caused.
func firstErr(errs []error) error {
	var nonNil []error
	for _, e := range errs {
		if e != nil {
			nonNil = append(nonNil, e)
		}
	}
	errs = nonNil
	for _, target := range []error{context.Canceled, context.DeadlineExceeded, core.ErrBudgetExhausted} {
		for _, e := range errs {
			if errors.Is(e, target) {
				return e
			}
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// tolerate drops an LLM error that cost some samples but not all: the
// search goes on with the samples it has (the trace records every failed
// call). Budget, timeout and cancellation are never dropped: they explain
// why the search stopped.
func tolerate(err error, got int) error {
	if err == nil || got == 0 {
		return err
	}
	for _, keep := range []error{context.Canceled, context.DeadlineExceeded, core.ErrBudgetExhausted} {
		if errors.Is(err, keep) {
			return err
		}
	}
	return nil
}

// vote is one answer's tally in a majority vote.
type vote struct {
	key    string // normalised answer
	answer string // as first written
	count  int
	first  int // sample index of its first occurrence
	node   core.NodeID
}

// tally counts normalised answers; samples without an answer do not vote.
// The winner has the most votes; ties go to the answer sampled first.
func tally(pack core.Pack, samples []core.Node) []vote {
	byKey := map[string]*vote{}
	var order []*vote
	for _, n := range samples {
		if n.Answer == "" {
			continue
		}
		key := pack.Normalize(n.Answer)
		v, ok := byKey[key]
		if !ok {
			v = &vote{key: key, answer: n.Answer, first: sampleIndex(n), node: n.ID}
			byKey[key] = v
			order = append(order, v)
		}
		v.count++
	}
	out := make([]vote, len(order))
	for i, v := range order {
		out[i] = *v
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].count != out[j].count {
			return out[i].count > out[j].count
		}
		return out[i].first < out[j].first
	})
	return out
}

// --- chain of thought ---

type cot struct{ temp float64 }

func cotSpec() core.StrategySpec {
	return core.StrategySpec{
		Name:    "cot",
		Summary: "chain-of-thought: one step-by-step solution in one call; the cheapest baseline",
		Params: []core.ParamSpec{{Name: "temperature", Type: core.ParamFloat, Default: 0.0,
			Description: "sampling temperature of the policy", Min: core.Bound(0), Max: core.Bound(2)}},
		New: func(p core.Params) (core.Strategy, error) { return cot{temp: p.Float("temperature")}, nil },
	}
}

func (c cot) Run(ctx context.Context, env *core.Env) (core.Outcome, error) {
	samples, err := sampleSolutions(ctx, env, 1, 1, c.temp)
	if len(samples) == 0 {
		return core.Outcome{}, err
	}
	n := samples[0]
	if n.Answer == "" {
		return core.Outcome{Best: n.ID}, err
	}
	return core.Outcome{Answer: n.Answer, Best: n.ID}, err
}

// --- self-consistency ---

type selfConsistency struct {
	k, per int
	temp   float64
}

func selfConsistencySpec() core.StrategySpec {
	return core.StrategySpec{
		Name: "self-consistency",
		Summary: "sample k solutions and return the majority answer (Wang et al., 2023); " +
			"ties go to the answer sampled first",
		Params: []core.ParamSpec{
			{Name: "k", Type: core.ParamInt, Default: int64(8), Description: "number of sampled solutions", Min: core.Bound(1), Max: core.Bound(1024)},
			temperatureParam, perRequestParam,
		},
		New: func(p core.Params) (core.Strategy, error) {
			return selfConsistency{k: p.Int("k"), per: p.Int("per_request"), temp: p.Float("temperature")}, nil
		},
	}
}

func (s selfConsistency) Run(ctx context.Context, env *core.Env) (core.Outcome, error) {
	samples, err := sampleSolutions(ctx, env, s.k, s.per, s.temp)
	err = tolerate(err, len(samples))
	votes := tally(env.Pack, samples)
	env.Tracer.Record(core.OpInfo, nil, map[string]any{"votes": voteData(votes)})
	if len(votes) == 0 {
		return core.Outcome{}, err
	}
	w := votes[0]
	share := float64(w.count) / float64(len(samples))
	return core.Outcome{Answer: w.answer, Best: w.node, Score: &share}, err
}

func voteData(votes []vote) []map[string]any {
	out := make([]map[string]any, len(votes))
	for i, v := range votes {
		out[i] = map[string]any{"answer": v.answer, "count": v.count}
	}
	return out
}

// --- best-of-N ---

type bestOfN struct {
	n, per    int
	temp      float64
	evaluator evalRef
}

func bestOfNSpec() core.StrategySpec {
	return core.StrategySpec{
		Name: "best-of-n",
		Summary: "sample n solutions, score each with an evaluator (an ORM, a judge or a verifier) and return the best; " +
			"ties go to the answer with more votes, then to the one sampled first",
		Params: []core.ParamSpec{
			{Name: "n", Type: core.ParamInt, Default: int64(8), Description: "number of sampled solutions", Min: core.Bound(1), Max: core.Bound(1024)},
			evaluatorParamSpec("evaluator", "judge", "scores each solution"),
			temperatureParam, perRequestParam,
		},
		New: func(p core.Params) (core.Strategy, error) {
			ev, err := parseEvalRef("evaluator", p.String("evaluator"))
			if err != nil {
				return nil, err
			}
			if ev.name == "" {
				return nil, fmt.Errorf("%w \"evaluator\": best-of-n needs an evaluator (self-consistency picks by votes alone)", core.ErrInvalidParam)
			}
			return bestOfN{n: p.Int("n"), per: p.Int("per_request"), temp: p.Float("temperature"), evaluator: ev}, nil
		},
	}
}

// Check rejects an unknown evaluator before the run.
func (b bestOfN) Check(p core.Preflight) error { return checkRefs(p, b.evaluator) }

func (b bestOfN) Run(ctx context.Context, env *core.Env) (core.Outcome, error) {
	ev, err := b.evaluator.build(env)
	if err != nil {
		return core.Outcome{}, err
	}
	samples, sampleErr := sampleSolutions(ctx, env, b.n, b.per, b.temp)
	var answered []core.NodeID
	for _, n := range samples {
		if n.Answer != "" {
			answered = append(answered, n.ID)
		}
	}
	evalErr := error(nil)
	if len(answered) > 0 {
		_, _, evalErr = core.EvaluateAll(ctx, env, ev, answered)
		if j, ok := evalErr.(interface{ Unwrap() []error }); ok {
			// EvaluateAll joins each scoring's error: n scorings cut off by
			// the budget read as the same line n times.
			evalErr = firstErr(j.Unwrap())
		}
	}
	counts := map[string]int{}
	for _, v := range tally(env.Pack, samples) {
		counts[v.key] = v.count
	}
	var scored []core.Node
	for _, id := range answered {
		scored = append(scored, env.Structure.MustNode(id))
	}
	if len(scored) == 0 {
		return core.Outcome{}, firstErr([]error{sampleErr, evalErr})
	}
	score := func(n core.Node) float64 {
		s, ok := n.Score()
		if !ok {
			return math.Inf(-1)
		}
		return s
	}
	sort.SliceStable(scored, func(i, j int) bool {
		si, sj := score(scored[i]), score(scored[j])
		if si != sj {
			return si > sj
		}
		ci, cj := counts[env.Pack.Normalize(scored[i].Answer)], counts[env.Pack.Normalize(scored[j].Answer)]
		if ci != cj {
			return ci > cj
		}
		return sampleIndex(scored[i]) < sampleIndex(scored[j])
	})
	best := scored[0]
	out := core.Outcome{Answer: best.Answer, Best: best.ID}
	if s, ok := best.Score(); ok {
		out.Score = &s
	}
	return out, firstErr([]error{tolerate(sampleErr, len(samples)), evalErr})
}
