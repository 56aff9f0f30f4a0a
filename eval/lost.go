package eval

import (
	"strings"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/text"
)

// llmLoss counts the LLM calls of a search (samples, a request for n
// counting n) that came back and that failed, from its trace's llm_call
// events, nested searches included. A call given up on by the search
// itself (cancelled, or cut by its wall time) is no failure of the LLM.
type llmLoss struct {
	ok, failed int
	first      string // the first failure's error
}

func countLLMLoss(tr *core.Trace) llmLoss {
	var l llmLoss
	if tr == nil {
		return l
	}
	for _, ev := range tr.Events {
		if ev.Op != core.OpLLMCall {
			continue
		}
		n := 1
		switch v := ev.Get("n").(type) {
		case int:
			n = v
		case float64:
			n = int(v)
		}
		msg, failed := ev.Get("error").(string)
		cancelled, _ := ev.Get("cancelled").(bool)
		switch {
		case !failed:
			l.ok += n
		case cancelled:
		case strings.HasSuffix(msg, "context canceled") || strings.HasSuffix(msg, "context deadline exceeded"):
			// Traces written before llm_call events said "cancelled".
		default:
			l.failed += n
			if l.first == "" {
				l.first = msg
			}
		}
	}
	return l
}

// mostLost reports whether the LLM failed more of the search's calls than
// it answered: the search returned an answer (self-consistency and
// best-of-n go on with the samples that came back), but it rests on a
// minority of what the strategy asked for at this budget, so grading it
// would measure the endpoint's failures, not the strategy. Such a record
// is an error, which --retry-errors runs again.
func (l llmLoss) mostLost() bool { return l.failed > l.ok }

// err is the record's error. It names the first failure, not the counts
// (the record's llm_errors and usage hold them), so that a report groups
// the records an endpoint's failure spoiled under one message.
func (l llmLoss) err() string {
	return "the LLM failed most of the search's calls; its answer is not graded: " + text.Clip(l.first, 200)
}
