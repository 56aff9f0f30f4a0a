package tasks

import (
	"errors"
	"testing"
)

func TestGame24CheckSteps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		problem string
		steps   []string
		want    StepState
		illegal bool
	}{
		{"start", "4 9 10 13", nil, StepState{Key: "left: 4 9 10 13"}, false},
		{"one move", "4 9 10 13", []string{"13 - 9 = 4 (left: 4 4 10)"}, StepState{Key: "left: 4 4 10"}, false},
		{"same numbers by another move", "4 9 10 13", []string{"9 - 4 = 5 (left: 5 10 13)"}, StepState{Key: "left: 5 10 13"}, false},
		{"without the numbers left", "4 9 10 13", []string{"13 - 9 = 4"}, StepState{Key: "left: 4 4 10"}, false},
		{"solved", "4 9 10 13", []string{"13 - 9 = 4 (left: 4 4 10)", "10 - 4 = 6 (left: 4 6)", "4 * 6 = 24 (left: 24)"},
			StepState{Key: "left: 24", Done: true, Answer: "(13 - 9) * (10 - 4)"}, false},
		{"finished, not 24", "4 9 10 13", []string{"13 - 9 = 4 (left: 4 4 10)", "10 - 4 = 6 (left: 4 6)", "4 + 6 = 10 (left: 10)"},
			StepState{Key: "left: 10", Done: true, Answer: "(13 - 9) + (10 - 4)"}, false},
		{"fractions", "1 5 5 5", []string{"1 / 5 = 1/5 (left: 1/5 5 5)", "5 - 1/5 = 24/5 (left: 24/5 5)"}, StepState{Key: "left: 24/5 5"}, false},
		{"answer step", "4 9 10 13", []string{"13 - 9 = 4 (left: 4 4 10)", `\boxed{(13-9)*(10-4)}`},
			StepState{Key: "answer: (10-4)*(13-9)", Done: true, Answer: "(13-9)*(10-4)"}, false},
		{"wrong arithmetic", "4 9 10 13", []string{"13 - 9 = 5 (left: 4 5 10)"}, StepState{}, true},
		{"number not left", "4 9 10 13", []string{"13 - 9 = 4 (left: 4 4 10)", "13 - 4 = 9 (left: 4 9 10)"}, StepState{}, true},
		{"wrong numbers left", "4 9 10 13", []string{"13 - 9 = 4 (left: 4 10)"}, StepState{}, true},
		{"not a move", "4 9 10 13", []string{"I would subtract"}, StepState{}, true},
		{"answer after an illegal move", "4 9 10 13", []string{"13 - 9 = 5 (left: 4 5 10)", `\boxed{(13-9)*(10-4)}`}, StepState{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Game24{}.CheckSteps(tt.problem, tt.steps)
			if tt.illegal {
				if err == nil || errors.Is(err, ErrNotCheckable) {
					t.Fatalf("CheckSteps = %+v, %v; want an illegal-step error", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("CheckSteps = %+v, %v; want %+v", got, err, tt.want)
			}
			if got.Done && (Check24(tt.problem, got.Answer) == nil) != (got.Key == "left: 24" || got.Key == "answer: (10-4)*(13-9)") {
				t.Errorf("answer %q of a finished path checks wrongly", got.Answer)
			}
		})
	}
	if _, err := (Game24{}).CheckSteps("what is 2+2?", nil); !errors.Is(err, ErrNotCheckable) {
		t.Errorf("CheckSteps of a problem that is not four numbers: %v, want ErrNotCheckable", err)
	}
}
