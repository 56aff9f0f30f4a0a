package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/ponder-rlm/ponder/sdk"
)

// Beam is the strategy.
type Beam struct{}

type scored struct {
	node  sdk.Node
	score float64
}

// Run implements sdk.Strategy.
func (Beam) Run(ctx context.Context, host sdk.Host, req sdk.RunRequest) (sdk.Outcome, error) {
	width, expand, depth := req.Params.Int("width"), req.Params.Int("expand"), req.Params.Int("depth")
	evaluator, temp := req.Params.String("evaluator"), req.Params.Float("temperature")
	var best *scored
	answer := func(c scored) {
		if best == nil || c.score > best.score {
			cc := c
			best = &cc
		}
	}
	outcome := func() sdk.Outcome {
		if best == nil {
			return sdk.Outcome{}
		}
		s := best.score
		return sdk.Outcome{Answer: best.node.Answer, Best: best.node.ID, Score: &s}
	}
	beam := []sdk.NodeID{0}
	for round := 0; round < depth && len(beam) > 0; round++ {
		kids, err := expandAll(ctx, host, beam, expand, temp)
		if len(kids) == 0 && err != nil {
			return outcome(), err
		}
		cands, serr := scoreAll(ctx, host, kids, evaluator)
		if err == nil {
			err = serr
		}
		sort.SliceStable(cands, func(i, j int) bool {
			if cands[i].score != cands[j].score {
				return cands[i].score > cands[j].score
			}
			return cands[i].node.ID < cands[j].node.ID
		})
		keep := cands[:min(width, len(cands))]
		var dropped []sdk.NodeID
		for _, c := range cands[len(keep):] {
			dropped = append(dropped, c.node.ID)
		}
		if len(dropped) > 0 {
			if perr := host.Prune(ctx, dropped...); perr != nil && err == nil {
				err = perr
			}
		}
		beam = beam[:0]
		var kept []sdk.NodeID
		for _, c := range keep {
			kept = append(kept, c.node.ID)
			if c.node.Terminal {
				answer(c)
				continue
			}
			beam = append(beam, c.node.ID)
		}
		_ = host.Trace(ctx, "select", kept, map[string]any{"round": round, "candidates": len(cands), "kept": len(keep)})
		if err != nil {
			return outcome(), err
		}
		// Stop when an answer beats every open path.
		if best != nil && (len(beam) == 0 || best.score >= keep[0].score) {
			break
		}
	}
	if best == nil {
		return sdk.Outcome{}, errors.New("beam-lite: no path reached an answer within the depth")
	}
	return outcome(), nil
}

// expandAll asks for k next steps below every beam node, concurrently, and
// returns them in beam order.
func expandAll(ctx context.Context, host sdk.Host, beam []sdk.NodeID, k int, temp float64) ([]sdk.Node, error) {
	res := make([][]sdk.Node, len(beam))
	errs := make([]error, len(beam))
	var wg sync.WaitGroup
	for i, id := range beam {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = host.Generate(ctx, id, k, sdk.GenerateOptions{Temperature: &temp, Purpose: "beam-expand"})
		}()
	}
	wg.Wait()
	var out []sdk.Node
	for _, r := range res {
		out = append(out, r...)
	}
	return out, errors.Join(errs...)
}

// scoreAll scores nodes with the evaluator, concurrently. A node the
// evaluator could not score ranks last; budget and cancellation errors are
// returned.
func scoreAll(ctx context.Context, host sdk.Host, nodes []sdk.Node, evaluator string) ([]scored, error) {
	out := make([]scored, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		out[i] = scored{node: n, score: -1}
		if evaluator == "" {
			out[i].score = 0
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, err := host.Evaluate(ctx, evaluator, nil, n.ID)
			switch {
			case err == nil:
				out[i].score = e.Score
			case errors.Is(err, sdk.ErrBudgetExhausted) || ctx.Err() != nil:
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return out, fmt.Errorf("score steps: %w", err)
	}
	return out, nil
}
