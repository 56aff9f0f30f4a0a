package plugins

import (
	"context"
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/sdk"
)

// Check's test call of a strategy counts its LLM calls in English: "1 LLM
// call", not "1 LLM calls".
func TestCheckCountsLLMCalls(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		mode, name, want string
	}{
		{"strategy", "one-shot", `answer "42", 1 LLM call, stopped: done`},
		{"strategy-polite", "polite", "8 LLM calls, stopped: budget"},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			m := installScript(t, t.TempDir(), tt.name, sdk.KindStrategy, tt.mode, 0o755)
			rep, err := Check(context.Background(), m.Dir, &Options{})
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if !rep.Installed || !rep.ChecksumOK || !strings.Contains(rep.TestCall, tt.want) {
				t.Errorf("Check: %+v\nwant %q in its test call", rep, tt.want)
			}
		})
	}
}
