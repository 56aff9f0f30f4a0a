package tracetest_test

import (
	"testing"

	"github.com/ponder-rlm/ponder/traces/tracetest"
)

func TestValidateRejectsWhatIsNotATrace(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{`{}`, `{"schema":5}`, `[1]`} {
		if err := tracetest.Validate(t, []byte(bad)); err == nil {
			t.Errorf("%s accepted as a trace", bad)
		}
	}
}
