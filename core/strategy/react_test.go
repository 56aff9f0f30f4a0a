package strategy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/core"
)

func TestParseTextAction(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, reply       string
		ok                bool
		tool, args, thght string
	}{
		{"plain", "Thought: add them\nAction: calc\nAction Input: {\"expression\": \"1+2\"}", true, "calc", `{"expression": "1+2"}`, "Thought: add them"},
		{"fenced json", "Action: python\nAction Input:\n```json\n{\"code\": \"print(1)\"}\n```", true, "python", `{"code": "print(1)"}`, ""},
		{"bare code", "Action: python\nAction Input:\n```python\nprint(1)\n```", true, "python", `{"code":"print(1)"}`, ""},
		{"hallucinated observation", "Action: calc\nAction Input: {\"expression\": \"2\"}\nObservation: 2\nAction: calc\nAction Input: {}", true, "calc", `{"expression": "2"}`, ""},
		{"trailing text", "Action: `calc`\nAction Input: {\"expression\": \"2\"} and then I will see", true, "calc", `{"expression": "2"}`, ""},
		{"bold markdown", "**Action:** calc\n**Action Input:** {\"expression\": \"3\"}", true, "calc", `{"expression": "3"}`, ""},
		{"no input", "Action: now\n", true, "now", `{}`, ""},
		{"final answer", "Thought: done\nFinal Answer: \\boxed{3}", false, "", "", ""},
		{"only input", "Action Input: {}", false, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, ok := parseTextAction(tt.reply)
			if ok != tt.ok {
				t.Fatalf("ok = %v", ok)
			}
			if !ok {
				return
			}
			if a.name != tt.tool || string(a.args) != tt.args || a.thought != tt.thght {
				t.Errorf("got %q %s %q; want %q %s %q", a.name, a.args, a.thought, tt.tool, tt.args, tt.thght)
			}
		})
	}
}

func TestWireNames(t *testing.T) {
	t.Parallel()
	specs := []core.ToolSpec{{Name: "python"}, {Name: "everything.echo"}, {Name: "everything__echo"}, {Name: "a b/c"}}
	w := newWireNames(specs)
	for _, s := range specs {
		wire := w.wire(s.Name)
		if !validWire(wire) {
			t.Errorf("%q → %q is not a valid function name", s.Name, wire)
		}
		if back := w.real(wire); back != s.Name {
			t.Errorf("%q → %q → %q", s.Name, wire, back)
		}
	}
	if w.wire("everything.echo") == w.wire("everything__echo") {
		t.Error("two tools share a wire name")
	}
	if w.real("unknown") != "unknown" {
		t.Error("an unknown wire name is not passed through")
	}
}

func validWire(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func TestTextToolProtocol(t *testing.T) {
	t.Parallel()
	p := TextToolProtocol([]core.ToolSpec{{Name: "calc", Description: "Exact\ncalculator", Schema: json.RawMessage(`{ "type": "object" }`)}})
	for _, want := range []string{"- calc: Exact calculator\n", `arguments (JSON Schema): {"type":"object"}`, "Action Input:", "Final Answer: \\boxed{ANSWER}"} {
		if !strings.Contains(p, want) {
			t.Errorf("protocol lacks %q:\n%s", want, p)
		}
	}
}
