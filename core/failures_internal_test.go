package core

import (
	"errors"
	"testing"
)

// An Env built outside Engine.run has no failure log: recording into it
// does nothing (and must not panic).
func TestNilFailureLogRecordsNothing(t *testing.T) {
	var f *failureLog
	f.evaluation(errors.New("x"))
	f.llmRequest(errors.New("y"))
	if w, c := f.warnings(false); w != nil || c != (failureCounts{}) {
		t.Fatalf("warnings %q, counts %+v", w, c)
	}
}
