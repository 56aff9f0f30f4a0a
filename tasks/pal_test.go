package tasks

import (
	"fmt"
	"testing"
)

func TestPALPromptRoundTrip(t *testing.T) {
	t.Parallel()
	problem := "Janet has 3 apples.\n\nShe buys 4 more. How many?"
	got, ok := ParsePALPrompt(PALPrompt(problem))
	if !ok || got.Problem != problem || got.Repair {
		t.Errorf("PALPrompt read back as %+v, %v", got, ok)
	}
	prog := "a = 3\n\nb = 4\nprint(a + b)"
	out := "Traceback (most recent call last):\n\n  File \"/tmp/main.py\", line 1\nNameError: x"
	got, ok = ParsePALPrompt(PALRepairPrompt(problem, prog, out))
	if !ok || !got.Repair || got.Program != prog || got.Problem != problem || got.Output == "" {
		t.Errorf("PALRepairPrompt read back as %+v, %v", got, ok)
	}
	if _, ok := ParsePALPrompt(GSM8K{}.SolvePrompt(problem)); ok {
		t.Error("a GSM8K prompt was read as a PAL prompt")
	}
	if _, ok := Identify(PALPrompt(problem)); ok {
		t.Error("Identify claims the PAL prompt")
	}
}

func TestExtractProgram(t *testing.T) {
	t.Parallel()
	tests := []struct {
		reply, want string
		ok          bool
	}{
		{"Here:\n```python\nprint(1)\n```\nDone.", "print(1)", true},
		{"```py\nx = 2\nprint(x)\n```", "x = 2\nprint(x)", true},
		{"```\nprint(3)\n```", "print(3)", true},
		{"first\n```python\nprint(1)\n```\nbetter\n```python\nprint(2)\n```", "print(2)", true},
		{"```json\n{\"a\": 1}\n```", "", false},
		{"print(4)", "print(4)", true},
		{"The answer is 4.", "", false},
		{"```python\n\n```", "", false},
		{"```python\n\n    return x + 1\n\n```", "    return x + 1", true},
	}
	for _, tt := range tests {
		got, ok := ExtractProgram(tt.reply)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ExtractProgram(%q) = %q, %v; want %q, %v", tt.reply, got, ok, tt.want, tt.ok)
		}
	}
}

func TestPALAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct{ out, want string }{
		{"18\n", "18"},
		{"working...\n  42  \n\n", "42"},
		{"", ""},
	}
	for _, tt := range tests {
		got, ok := PALAnswer(tt.out)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("PALAnswer(%q) = %q, %v", tt.out, got, ok)
		}
	}
}

func ExampleExtractProgram() {
	prog, _ := ExtractProgram("Let me compute it.\n```python\neggs = 16 - 3 - 4\nprint(eggs * 2)\n```")
	fmt.Println(prog)
	// Output:
	// eggs = 16 - 3 - 4
	// print(eggs * 2)
}
