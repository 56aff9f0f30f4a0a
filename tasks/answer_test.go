package tasks

import (
	"testing"

	"github.com/ponder-rlm/ponder/core"
)

// Every built-in pack reads the last final answer of a reply that
// corrects itself, and a box over the prose after it.
func TestPacksReadTheLastFinalAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pack core.Pack
		in   string
		want string
	}{
		{core.GenericPack{}, "Answer: 12 ... wait ... Answer: 14", "14"},
		{GSM8K{}, "Answer: 12 ... wait ... Answer: 14", "14"},
		{GSM8K{}, "The answer is 12. Wait, no: the answer is 14.", "14"},
		{GSM8K{}, "#### 12\nOops, 2 + 12 = 14.\n#### 14", "14"},
		{GSM8K{}, "So \\boxed{14}. The answer is reasonable because 14 > 12.", "14"},
		{MATH{}, `\boxed{\frac{1}{2}} no, \boxed{\frac{1}{3}}`, `\frac{1}{3}`},
		{MATH{}, "Final Answer: The final answer is $\\frac{1}{3}$. I hope it is correct.", `$\frac{1}{3}$`},
		{Game24{}, "Answer: (4 + 4) * 3 * 1 = 24 ... no, 1 is used twice. Answer: (13 - 9) * (10 - 4) = 24", "(13 - 9) * (10 - 4)"},
		{Game24{}, "Answer: (13 - 9) * (10 - 4) = 24. It uses each number once.", "(13 - 9) * (10 - 4)"},
	}
	for _, tt := range tests {
		got, ok := tt.pack.ExtractAnswer(tt.in)
		if !ok || got != tt.want {
			t.Errorf("%s.ExtractAnswer(%q) = %q, %v; want %q", tt.pack.Name(), tt.in, got, ok, tt.want)
		}
	}
}
