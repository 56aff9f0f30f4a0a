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

// lastScore returns the number N of the last "score: N" in s, and the
// text after it: the expression
// [sS][cC][oO][rR][eE][\s*_]*[:=][\s*_]*(\d+(?:\.\d+)?), where * and _
// are markdown ("**Score:** 8"), scanned by hand because searches parse a
// score per node (a test checks the scan against the expression).
func lastScore(s string) (num, rest string, ok bool) {
	isSpace := func(c byte) bool {
		return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '*' || c == '_'
	}
	isDigit := func(c byte) bool { return '0' <= c && c <= '9' }
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
		num, rest, ok = s[start:j], s[j:], true
		i = j - 1
	}
	return num, rest, ok
}

// outOf reads what follows a score: "/10" or "out of 10" (a denominator
// other than 10 is another scale), or an exponent ("1e1") that makes the
// number something else. It reports false for those.
func outOf(rest string) bool {
	if len(rest) >= 2 && (rest[0] == 'e' || rest[0] == 'E') && strings.ContainsRune("0123456789+-", rune(rest[1])) {
		return false
	}
	r := strings.TrimLeft(rest, " \t*_")
	switch {
	case strings.HasPrefix(r, "/"):
		r = r[1:]
	case len(r) >= 6 && strings.EqualFold(r[:6], "out of"):
		r = r[6:]
	default:
		return true
	}
	r = strings.TrimLeft(r, " \t")
	end := 0
	for end < len(r) && '0' <= r[end] && r[end] <= '9' {
		end++
	}
	return r[:end] == "10"
}

// ParseJudgeScore reads "Score: N" (1..10) from a judge reply and maps it
// linearly onto [-1, 1]. "N/10" and "N out of 10" are read as N; a score
// on another scale ("4/5", "4 out of 5") is no score.
func ParseJudgeScore(reply string) (float64, bool) {
	num, rest, ok := lastScore(reply)
	if !ok || !outOf(rest) {
		return 0, false
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 1 || v > 10 {
		return 0, false
	}
	return (v - 5.5) / 4.5, true
}
