package tasks

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/text"
)

func TestIdentifyRoundTrip(t *testing.T) {
	t.Parallel()
	gsm := GSM8K{}
	g24 := Game24{}
	problem := "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May."
	steps := []string{"In May she sold 48/2 = 24 clips.", "Altogether 48+24 = 72 clips."}
	multi := "line one\n\n  indented code\nStep 3: not a step"
	tests := []struct {
		name string
		msgs []core.Message
		want Identified
	}{
		{"gsm8k solve", gsm.SolvePrompt(problem), Identified{Kind: KindSolve, Pack: "gsm8k", Problem: problem}},
		{"gsm8k step, no steps", gsm.StepPrompt(problem, nil), Identified{Kind: KindStep, Pack: "gsm8k", Problem: problem}},
		{"gsm8k step", gsm.StepPrompt(problem, steps), Identified{Kind: KindStep, Pack: "gsm8k", Problem: problem, Steps: steps}},
		{"math solve", MATH{}.SolvePrompt("Compute $1+1$."), Identified{Kind: KindSolve, Pack: "math", Problem: "Compute $1+1$."}},
		{"generic step", core.GenericPack{}.StepPrompt("Why?", []string{"Because."}),
			Identified{Kind: KindStep, Pack: "generic", Problem: "Why?", Steps: []string{"Because."}}},
		{"game24 solve", g24.SolvePrompt("4 9 10 13"), Identified{Kind: KindSolve, Pack: "game24", Problem: "4 9 10 13"}},
		{"game24 step", g24.StepPrompt("4 9 10 13", []string{"13 - 9 = 4 (left: 4 4 10)"}),
			Identified{Kind: KindStep, Pack: "game24", Problem: "4 9 10 13", Steps: []string{"13 - 9 = 4 (left: 4 4 10)"}}},
		{"game24 propose", g24.ProposePrompt("4 9 10 13", nil), Identified{Kind: KindPropose, Pack: "game24", Problem: "4 9 10 13"}},
		{"game24 value", ValuePrompt(g24, "4 9 10 13", []string{"10 - 4 = 6 (left: 6 9 13)"}),
			Identified{Kind: KindValue, Pack: "game24", Problem: "4 9 10 13", Steps: []string{"10 - 4 = 6 (left: 6 9 13)"}}},
		{"generic value", ValuePrompt(gsm, problem, steps), Identified{Kind: KindValue, Problem: problem, Steps: steps}},
		{"judge", JudgePrompt(problem, steps), Identified{Kind: KindJudge, Problem: problem, Steps: steps}},
		{"prm", PRMPrompt(problem, steps), Identified{Kind: KindPRM, Problem: problem, Steps: steps}},
		{"critique", CritiquePrompt(problem, steps), Identified{Kind: KindCritique, Problem: problem, Steps: steps}},
		{"revise", RevisePrompt(problem, steps, "- Step 2 adds wrongly.\n\n- The answer is wrong."),
			Identified{Kind: KindRevise, Problem: problem, Steps: steps, Critique: "- Step 2 adds wrongly.\n- The answer is wrong."}},
		{"revise, no issues", RevisePrompt(problem, steps, NoIssues),
			Identified{Kind: KindRevise, Problem: problem, Steps: steps, Critique: NoIssues}},
		{"aggregate", AggregatePrompt(problem, []string{"a\nb \\boxed{1}", multi, "c"}),
			Identified{Kind: KindAggregate, Problem: problem, Steps: []string{"a\nb \\boxed{1}", "line one\n\n  indented code\nStep 3: not a step", "c"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := Identify(tt.msgs)
			if !ok {
				t.Fatalf("Identify: not identified:\n%s", tt.msgs[len(tt.msgs)-1].Content)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("Identify (-want +got):\n%s", d)
			}
		})
	}
}

func TestIdentifyRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		msgs []core.Message
	}{
		{"plain chat", []core.Message{{Role: "user", Content: "Hello there"}}},
		{"unknown system", core.LayoutPrompt("You are a pirate.", "4 9 10 13", nil, "Arr.")},
		{"judge with other instruction", core.LayoutPrompt(JudgeSystem, "p", nil, "Grade it.")},
		{"revise without critique", core.LayoutPrompt(ReviseSystem, "p", nil, ReviseInstruction)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got, ok := Identify(tt.msgs); ok {
				t.Errorf("Identify = %+v, want not identified", got)
			}
		})
	}
}

func TestParseScore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		reply string
		want  float64
		ok    bool
	}{
		{"Looks right.\nScore: 10", 1, true},
		{"Score: 1", -1, true},
		{"score = 5.5", 0, true},
		{"Score: 3\nOn reflection, Score: 8", (8 - 5.5) / 4.5, true},
		{"Score: 11", 0, false},
		{"no score", 0, false},
		{"Score: 10/10", 1, true},
		{"Score: 8 / 10", (8 - 5.5) / 4.5, true},
		{"score: 7 out of 10", (7 - 5.5) / 4.5, true},
		{"**Score:** 8", (8 - 5.5) / 4.5, true},
		{"Score: **8**", (8 - 5.5) / 4.5, true},
		{"score: 7.5", (7.5 - 5.5) / 4.5, true},
		{"Score: 4/5", 0, false},
		{"Score: 4 out of 5", 0, false},
		{"Score: 2/5", 0, false},
		{"Score: 1e1", 0, false},
		{"Score: -3", 0, false},
		{"Score: 0", 0, false},
		{"Score: 10.5", 0, false},
		{"I'd say 8", 0, false},
		{"Score: N", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseScore(tt.reply)
		if ok != tt.ok || got != tt.want {
			t.Errorf("ParseScore(%q) = %v, %v; want %v, %v", tt.reply, got, ok, tt.want, tt.ok)
		}
	}
	for n := 1; n <= 10; n++ {
		s := (float64(n) - 5.5) / 4.5
		got, ok := ParseScore(ScoreLine(s))
		if !ok || got != s {
			t.Errorf("ParseScore(ScoreLine(%v)) = %v, %v", s, got, ok)
		}
	}
}

func TestParseValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pack  core.Pack
		reply string
		want  float64
		ok    bool
	}{
		{Game24{}, "4 4 10: 10 + 4 + 4 = 18, (10 - 4) * 4 = 24\nsure", Game24Sure, true},
		{Game24{}, "not sure at first...\nlikely", Game24Likely, true},
		{Game24{}, "numbers too small\nImpossible", Game24Impossible, true},
		{Game24{}, "no idea", 0, false},
		{Game24{}, "I am not sure", 0, false},
		{Game24{}, "It isn't likely", 0, false},
		{Game24{}, "not impossible", 0, false},
		{Game24{}, "**Sure**", Game24Sure, true},
		{Game24{}, "unlikely", 0, false},
		{Game24{}, "Not sure at first. Now I'm sure", Game24Sure, true},
		{GSM8K{}, "Score: 10", 1, true},
		{GSM8K{}, "sure", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseValue(tt.pack, tt.reply)
		if ok != tt.ok || got != tt.want {
			t.Errorf("ParseValue(%s, %q) = %v, %v; want %v, %v", tt.pack.Name(), tt.reply, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseCritique(t *testing.T) {
	t.Parallel()
	tests := []struct {
		reply string
		want  []string
		ok    bool
	}{
		{"NO ISSUES", nil, true},
		{"I checked every step. No issues.", nil, true},
		{"- Step 2: 48/2 is 24, not 25.\n- The final answer is wrong.", []string{"Step 2: 48/2 is 24, not 25.", "The final answer is wrong."}, true},
		{"Problems:\n1. Step 1 misreads the price.\n2) Units are mixed.", []string{"Step 1 misreads the price.", "Units are mixed."}, true},
		{"Step 3 forgets the tax.", []string{"Step 3 forgets the tax."}, true},
		{"  ", nil, false},
	}
	for _, tt := range tests {
		got, ok := ParseCritique(tt.reply)
		if ok != tt.ok {
			t.Errorf("ParseCritique(%q) ok = %v, want %v", tt.reply, ok, tt.ok)
		}
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("ParseCritique(%q) (-want +got):\n%s", tt.reply, d)
		}
	}
}

func TestExtractAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pack core.Pack
		text string
		want string
		ok   bool
	}{
		{GSM8K{}, "So 48+24 = 72 clips.\nThe answer is \\boxed{72}.", "72", true},
		{GSM8K{}, "#### 1,000", "1000", true},
		{GSM8K{}, "\\boxed{\\$18.00}", "18", true},
		{GSM8K{}, "She has 5 apples.", "", false},
		{GSM8K{}, `So \boxed{\frac{3}{4}} of the cake.`, "", false},
		{GSM8K{}, "The answer is: 12 - 4 = 8", "8", true},
		{GSM8K{}, `\boxed{−5}`, "-5", true},
		{GSM8K{}, `\boxed{2^{10}}`, "", false},
		{MATH{}, `\boxed{}`, "", false},
		{MATH{}, `\boxed{ }`, "", false},
		{MATH{}, "Thus \\boxed{\\frac{1}{2}}.", `\frac{1}{2}`, true},
		{MATH{}, "We get \\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", `\left( 3, \frac{\pi}{2} \right)`, true},
		{Game24{}, "\\boxed{(13 - 9) * (10 - 4) = 24}", "(13 - 9) * (10 - 4)", true},
		{Game24{}, "Answer: (13-9)*(10-4) = 24", "(13-9)*(10-4)", true},
		{Game24{}, "4 * 6 = 24 (left: 24)", "", false},
		{Game24{}, "13 - 9 = 4 (left: 4 4 10)", "", false},
	}
	for _, tt := range tests {
		got, ok := tt.pack.ExtractAnswer(tt.text)
		if ok != tt.ok || got != tt.want {
			t.Errorf("%s.ExtractAnswer(%q) = %q, %v; want %q, %v", tt.pack.Name(), tt.text, got, ok, tt.want, tt.ok)
		}
	}
}

// TestParseNumber feeds GSM8K answers as models write them: one number is
// read exactly, and an answer with several numbers, or one that is not
// plainly a number, has none rather than a wrong one.
func TestParseNumber(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string // want "": no number
	}{
		{"72", "72"},
		{"$1,000.00", "1000"},
		{`\$18.00`, "18"},
		{"18 dollars", "18"},
		{`18 \text{ dollars}`, "18"},
		{`\text{18}`, "18"},
		{"x = 18", "18"},
		{"48 + 24 = 72", "72"},
		{"12 - 4 = 8", "8"},
		{"-5", "-5"},
		{"−5", "-5"}, // U+2212
		{"–5", "-5"}, // en dash
		{"-$5", "-5"},
		{"$-5", "-5"},
		{`\$-5`, "-5"},
		{"(-5)", "-5"},
		{"-0", "0"},
		{"-0.0", "0"},
		{"3/4", "3/4"},
		{".5", "0.5"},
		{"$.50", "0.5"},
		{"-3.50", "-3.5"},
		{"5.", "5"},
		{"50%", "50"},
		{`50\%`, "50"},
		{"1,234,567", "1234567"},
		{`1\,000`, "1000"},
		{`1{,}000`, "1000"},
		{"12 cm^2", "12"},
		{`12 \text{ ft}^{2}`, "12"},
		{"10000000000000000000000000000000000", "10000000000000000000000000000000000"},
		{"", ""},
		{"seventy-two", ""},
		{`\frac{3}{4}`, ""},
		{`3 \frac{1}{2}`, ""},
		{"2^{10}", ""},
		{"10^6", ""},
		{`5 \times 10^3`, ""},
		{"1e5", ""},
		{"1.5e3", ""},
		{"1,23", ""},
		{"12,5", ""},
		{"1.2.3", ""},
		{"3!", ""},
		{"18 - 2", ""},
		{"18-2", ""},
		{"x-5", ""},
		{"2 hours and 30 minutes", ""},
		{"7 but actually 8", ""},
		{"3, 5", ""},
		{"2:30", ""},
		{"x = 5 and y = 7", ""},
		{"1/0", ""},
		{"x2", ""},
		{"١٢", ""},
		{"１２", ""},
		{"1２", ""},
		{strings.Repeat("9", 1<<20), ""},
	}
	for _, tt := range tests {
		got, ok := ParseNumber(tt.in)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("ParseNumber(%q) = %q, %v; want %q", text.Clip(tt.in, 40), got, ok, tt.want)
		}
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pack core.Pack
		a, b string // normalise to the same key
	}{
		{GSM8K{}, "1,000", "1000"},
		{GSM8K{}, "$18.00", "18"},
		{GSM8K{}, "2000/2", "1000"},
		{MATH{}, `\dfrac{1}{2}`, `\frac{1}{2}`},
		{MATH{}, `\left( 3, \frac{\pi}{2} \right)`, `(3,\frac{\pi}{2})`},
		{MATH{}, `10^\circ`, "10"},
		{MATH{}, "−5", "-5"},
		{MATH{}, ".5", "0.5"},
		{MATH{}, `\$5`, "5"},
		{Game24{}, "(13-9)*(10-4)", "(10 - 4) × (13 - 9)"},
		{Game24{}, "4*6*1*1", `\boxed{4 \times 6 \times 1 \times 1}`},
		{Game24{}, "(13 - 9) * (10 - 4) = 24", "(13-9)*(10-4)"},
	}
	for _, tt := range tests {
		if ka, kb := tt.pack.Normalize(tt.a), tt.pack.Normalize(tt.b); ka != kb {
			t.Errorf("%s.Normalize: %q → %q but %q → %q", tt.pack.Name(), tt.a, ka, tt.b, kb)
		}
	}
	different := []struct {
		pack core.Pack
		a, b string
	}{
		{GSM8K{}, "72", "27"},
		{GSM8K{}, "12 - 4 = 8", "12"},
		{GSM8K{}, `\frac{3}{4}`, "3"},
		{GSM8K{}, "−5", "5"},
		{MATH{}, "12,5", "125"},
		{MATH{}, "1,23", "123"},
		{Game24{}, "(13-9)*(10-4)", "(13-4)*(10-9)"},
		{Game24{}, "13-9", "9-13"},
	}
	for _, tt := range different {
		if ka, kb := tt.pack.Normalize(tt.a), tt.pack.Normalize(tt.b); ka == kb {
			t.Errorf("%s.Normalize: %q and %q both → %q", tt.pack.Name(), tt.a, tt.b, ka)
		}
	}
}

func TestRegistered(t *testing.T) {
	t.Parallel()
	want := []string{"game24", "generic", "gsm8k", "math"}
	for _, name := range want {
		if _, err := Get(name); err != nil {
			t.Errorf("Get(%q): %v", name, err)
		}
	}
}

// lastScore scans by hand for what this expression matches.
var judgeScore = regexp.MustCompile(`[sS][cC][oO][rR][eE][\s*_]*[:=][\s*_]*(\d+(?:\.\d+)?)`)

func TestLastScoreMatchesTheExpression(t *testing.T) {
	replies := []string{
		"", "Score: 7", "score=3.5", "SCORE :\n 10", "Score: 4\nScore: 9", "score: x score: 2", "scores: 4",
		"Score: 5.", "Score: .5", "score:\t\f 8.25 and score = 1", "sCoRe=007", "Score:", "score 5", "ſcore: 5",
		"Scorescore: 6", "Score: 3 Score: ", "the score: 12.0.1", "**Score:** 8", "Score: __9__", "score*=_7",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"s", "S", "core", "CORE", " ", "\t", "\n", ":", "=", "1", "7", ".", "x", "é", "*", "_"}
	for i := 0; i < 3000; i++ {
		var b strings.Builder
		for j := rng.IntN(12); j >= 0; j-- {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		replies = append(replies, b.String())
	}
	for _, r := range replies {
		want, wantOK := "", false
		if m := judgeScore.FindAllStringSubmatch(r, -1); len(m) > 0 {
			want, wantOK = m[len(m)-1][1], true
		}
		if got, _, ok := lastScore(r); got != want || ok != wantOK {
			t.Fatalf("lastScore(%q) = %q, %v; the expression finds %q, %v", r, got, ok, want, wantOK)
		}
	}
}
