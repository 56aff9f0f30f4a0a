package tasks

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSubQuestions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, reply string
		want        []string
	}{
		{"numbered", "1. How many eggs are left?\n2. How much does she make?", []string{"How many eggs are left?", "How much does she make?"}},
		{"preamble, bold, parens, labels",
			"Here is the plan:\n\n**1.** **How many eggs are left?**\n2) How much\n   does she make?\nQ3: What is the total?\nSub-question 4: And then?\n(5) Last?",
			[]string{"How many eggs are left?", "How much does she make?", "What is the total?", "And then?", "Last?"}},
		{"repeated once", "1. A?\n2. a?\n3. B?", []string{"A?", "B?"}},
		{"bullets when nothing is numbered", "- A?\n* B?", []string{"A?", "B?"}},
		{"numbered wins over bullets", "- context\n1. A?", []string{"A?"}},
		{"prose", "The problem is simple enough to answer directly.", nil},
		{"empty", "", nil},
		{"a number that is not an item", "There are 3 eggs.\n2024 was a year.", nil},
	} {
		if got := ParseSubQuestions(tc.reply); !cmp.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestDecomposePromptsRoundTrip(t *testing.T) {
	t.Parallel()
	problem := "Janet's ducks lay 16 eggs per day.\n\nShe eats three. How many are left?"
	p, n, ok := ParseDecomposePrompt(DecomposePrompt(problem, 4))
	if !ok || p != problem || n != 4 {
		t.Fatalf("decompose prompt read back as %q, %d, %v", p, n, ok)
	}
	if _, _, ok := ParseDecomposePrompt(GSM8K{}.SolvePrompt(problem)); ok {
		t.Fatal("a solve prompt read as a decompose prompt")
	}

	prior := []SubAnswer{{"How many\neggs are laid?", "16"}, {"How many are eaten?", ""}}
	text := SubProblem(problem, prior, "How many are left?")
	gp, gprior, gq, ok := ParseSubProblem(text)
	want := []SubAnswer{{"How many eggs are laid?", "16"}, {"How many are eaten?", ""}}
	if !ok || gp != problem || gq != "How many are left?" || !cmp.Equal(gprior, want) {
		t.Fatalf("sub-problem read back as %q, %q, %q, %v", gp, gprior, gq, ok)
	}
	// A sub-problem of a sub-problem reads back one level at a time, and
	// survives the pack's prompt layout.
	inner := SubProblem(text, nil, "What is 16 - 3?")
	id, ok := Identify(GSM8K{}.SolvePrompt(inner))
	if !ok || id.Problem != inner {
		t.Fatalf("nested sub-problem in a solve prompt identified as %+v", id)
	}
	gp, gprior, gq, ok = ParseSubProblem(id.Problem)
	if !ok || gp != text || gprior != nil || gq != "What is 16 - 3?" {
		t.Fatalf("nested sub-problem read back as %q, %q, %q, %v", gp, gprior, gq, ok)
	}
	if _, _, _, ok := ParseSubProblem(problem); ok {
		t.Fatal("a plain problem read as a sub-problem")
	}

	cp, subs, ok := ParseComposePrompt(ComposePrompt(problem, prior))
	if !ok || cp != problem || !cmp.Equal(subs, want) {
		t.Fatalf("compose prompt read back as %q, %q, %v", cp, subs, ok)
	}
	if _, ok := Identify(ComposePrompt(problem, prior)); ok {
		t.Fatal("a compose prompt was identified as a pack's prompt")
	}
}
