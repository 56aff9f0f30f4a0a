package tasks

import (
	"regexp"
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

var judgeScore = regexp.MustCompile(`(?i)score\s*[:=]\s*(\d+(?:\.\d+)?)`)

// ParseJudgeScore reads "Score: N" (1..10) from a judge reply and maps it
// linearly onto [-1, 1].
func ParseJudgeScore(reply string) (float64, bool) {
	m := judgeScore.FindAllStringSubmatch(reply, -1)
	if len(m) == 0 {
		return 0, false
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(m[len(m)-1][1]), 64)
	if err != nil || v < 1 || v > 10 {
		return 0, false
	}
	return (v - 5.5) / 4.5, true
}
