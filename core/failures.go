package core

import (
	"errors"
	"fmt"
	"sync"

	"github.com/ponder-rlm/ponder/internal/text"
)

// failureLog counts what failed in a run without stopping it: a search
// goes on past an evaluator that errs or an LLM request that fails, and
// its answer may be the worse for it, which Result.Warnings says (else
// only the trace showed it). A nil log records nothing (an Env built
// outside Engine.run).
type failureLog struct {
	mu sync.Mutex
	failureCounts
	firstEval, firstLLM, firstShort string
}

// failureCounts: failed evaluations, failed LLM requests, and requests
// that came back short (Completion.Note).
type failureCounts struct{ evals, requests, short int }

// failureQuote bounds the error quoted in a warning.
const failureQuote = 300

func (f *failureLog) evaluation(err error) {
	if f != nil {
		f.record(&f.evals, &f.firstEval, err)
	}
}

func (f *failureLog) llmRequest(err error) {
	if f != nil {
		f.record(&f.requests, &f.firstLLM, err)
	}
}

// shortRequest counts a request that came back with less than it asked
// for, as its note says.
func (f *failureLog) shortRequest(note string) {
	if f != nil {
		f.record(&f.short, &f.firstShort, errors.New(note))
	}
}

// record counts err in *n, keeping the first error's text in *first.
func (f *failureLog) record(n *int, first *string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if *n++; *n == 1 {
		*first = text.Clip(text.OneLine(err.Error()), failureQuote)
	}
}

// warnings says what failed, and returns the counts. stoppedOnError
// leaves the LLM requests out: the result's error says why the search
// stopped.
func (f *failureLog) warnings(stoppedOnError bool) ([]string, failureCounts) {
	if f == nil {
		return nil, failureCounts{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	if f.evals > 0 {
		out = append(out, fmt.Sprintf("%s failed and left %s unscored; the first: %s",
			text.Count(f.evals, "evaluation"), text.Count(f.evals, "node"), f.firstEval))
	}
	if f.requests > 0 && !stoppedOnError {
		out = append(out, fmt.Sprintf("%s failed; the first: %s", text.Count(f.requests, "LLM request"), f.firstLLM))
	}
	if f.short > 0 {
		out = append(out, fmt.Sprintf("%s came back with fewer samples than asked; the first: %s", text.Count(f.short, "LLM request"), f.firstShort))
	}
	return out, f.failureCounts
}
