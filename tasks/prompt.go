package tasks

import (
	"regexp"
	"strings"

	"github.com/ponder-rlm/ponder/core"
)

// Prompt is a prompt laid out by core.LayoutPrompt, read back.
type Prompt struct {
	System      string
	Problem     string
	Steps       []string
	Instruction string
}

var stepLine = regexp.MustCompile(`(?m)^Step (\d+): `)

// ParsePrompt reads a prompt laid out by core.LayoutPrompt from the last
// user message of msgs. It reports false for prompts of any other shape.
func ParsePrompt(msgs []core.Message) (Prompt, bool) {
	var p Prompt
	user := ""
	for _, m := range msgs {
		switch m.Role {
		case "system":
			p.System = m.Content
		case "user":
			user = m.Content
		}
	}
	if !strings.HasPrefix(user, "Problem:\n") {
		return Prompt{}, false
	}
	rest := user[len("Problem:\n"):]
	if i := strings.Index(rest, "\n\nSteps so far:\n"); i >= 0 {
		p.Problem = rest[:i]
		rest = rest[i+len("\n\nSteps so far:\n"):]
		j := strings.LastIndex(rest, "\n\n")
		if j < 0 {
			return Prompt{}, false
		}
		p.Instruction = rest[j+2:]
		p.Steps = splitSteps(rest[:j])
		return p, true
	}
	j := strings.LastIndex(rest, "\n\n")
	if j < 0 {
		return Prompt{}, false
	}
	p.Problem, p.Instruction = rest[:j], rest[j+2:]
	return p, true
}

func splitSteps(s string) []string {
	idx := stepLine.FindAllStringIndex(s, -1)
	var out []string
	for i, m := range idx {
		end := len(s)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		out = append(out, strings.TrimRight(s[m[1]:end], "\n"))
	}
	return out
}
