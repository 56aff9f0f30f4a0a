package tasks

import (
	"strconv"
	"strings"

	"github.com/ponder-rlm/ponder/core"
)

// JudgeSystem is the system prompt of the LLM-as-judge evaluator.
const JudgeSystem = "You are a strict grader. You check a proposed solution to a problem and rate how likely it is to be correct."

// JudgeInstruction ends every judge prompt; the reply must hold "Score: N".
const JudgeInstruction = "Check the steps above. Reply with a short justification and then a line \"Score: N\" where N is an integer from 1 (certainly wrong) to 10 (certainly correct)."

// JudgePrompt asks the policy to grade a (partial or complete) solution.
func JudgePrompt(problem string, steps []string) []core.Message {
	return core.LayoutPrompt(JudgeSystem, problem, steps, JudgeInstruction)
}

// lastScore returns the number N of the last "score: N" in s: the
// expression [sS][cC][oO][rR][eE]\s*[:=]\s*(\d+(?:\.\d+)?), scanned by
// hand because searches parse a score per node (a test checks the scan
// against the expression).
func lastScore(s string) (string, bool) {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }
	isDigit := func(c byte) bool { return '0' <= c && c <= '9' }
	found, ok := "", false
	for i := 0; i+5 <= len(s); i++ {
		if !strings.EqualFold(s[i:i+5], "score") {
			continue
		}
		j := i + 5
		for j < len(s) && isSpace(s[j]) {
			j++
		}
		if j >= len(s) || (s[j] != ':' && s[j] != '=') {
			continue
		}
		j++
		for j < len(s) && isSpace(s[j]) {
			j++
		}
		start := j
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if j == start {
			continue
		}
		if j+1 < len(s) && s[j] == '.' && isDigit(s[j+1]) {
			j++
			for j < len(s) && isDigit(s[j]) {
				j++
			}
		}
		found, ok = s[start:j], true
		i = j - 1
	}
	return found, ok
}

// ParseJudgeScore reads "Score: N" (1..10) from a judge reply and maps it
// linearly onto [-1, 1].
func ParseJudgeScore(reply string) (float64, bool) {
	num, ok := lastScore(reply)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 1 || v > 10 {
		return 0, false
	}
	return (v - 5.5) / 4.5, true
}
