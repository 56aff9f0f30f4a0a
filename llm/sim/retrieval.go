package sim

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"unicode"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/tasks"
)

// grounded answers prompts whose problem carries retrieved passages
// (core.GroundedProblem, made when a task names a collection): a solution
// or step quotes the passage sentence that best matches the question, cites
// its passage and boxes it; judges rate a path on track when it contains
// that sentence. It reports false for prompts without passages.
func (s *Server) grounded(msgs []core.Message) (generator, string, bool) {
	problem, kind := lastUser(msgs), tasks.KindSolve
	var steps []string
	if id, ok := tasks.Identify(msgs); ok {
		problem, kind, steps = id.Problem, id.Kind, id.Steps
	}
	question, passages, ok := core.ParseGrounded(problem)
	if !ok || len(passages) == 0 {
		return nil, "", false
	}
	n, sentence := bestSentence(question, passages)
	if sentence == "" {
		return nil, "", false
	}
	answer := strings.TrimRight(sentence, ".!? ")
	switch kind {
	case tasks.KindJudge, tasks.KindValue, tasks.KindPRM:
		on := false
		for _, st := range steps {
			on = on || strings.Contains(st, answer)
		}
		return s.rate(kind, on, -1), "grounded-" + string(kind), true
	}
	text := fmt.Sprintf("According to [%d] (%s): %s The answer is \\boxed{%s}.", n, passages[n-1].Source, sentence, answer)
	return func(*rand.Rand) sample { return sample{text, true} }, "grounded", true
}

// bestSentence returns the passage number and the sentence sharing the
// most question words, rarer words counting more; ties go to the earlier.
func bestSentence(question string, passages []core.Passage) (int, string) {
	qwords := map[string]bool{}
	for _, w := range words(question) {
		qwords[w] = true
	}
	type sent struct {
		n    int
		text string
		ws   map[string]bool
	}
	var all []sent
	df := map[string]int{}
	for i, p := range passages {
		for _, st := range sentences(p.Text) {
			ws := map[string]bool{}
			for _, w := range words(st) {
				ws[w] = true
			}
			for w := range ws {
				df[w]++
			}
			all = append(all, sent{i + 1, st, ws})
		}
	}
	bestN, best, bestScore := 0, "", 0.0
	for _, st := range all {
		score := 0.0
		for w := range qwords {
			if st.ws[w] {
				score += 1 / float64(df[w])
			}
		}
		if score > bestScore {
			bestN, best, bestScore = st.n, st.text, score
		}
	}
	return bestN, best
}

var simStop = map[string]bool{}

func init() {
	for _, w := range strings.Fields("a an the is are was were of in on at to for by with and or what which who whom when where why how does do did its it this that be from as") {
		simStop[w] = true
	}
}

func words(s string) []string {
	var out []string
	for _, w := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if !simStop[w] {
			out = append(out, w)
		}
	}
	return out
}

// sentences splits text at sentence ends and line breaks.
func sentences(text string) []string {
	var out []string
	start := 0
	flush := func(end int) {
		if s := norm(text[start:end]); s != "" {
			out = append(out, s)
		}
		start = end
	}
	for i := 0; i < len(text); i++ {
		switch text[i] {
		case '.', '?', '!':
			// A dot between digits (146.520) does not end a sentence.
			if i+1 < len(text) && (text[i+1] == ' ' || text[i+1] == '\n') {
				flush(i + 1)
			}
		case '\n':
			if i+1 < len(text) && text[i+1] == '\n' {
				flush(i)
			}
		}
	}
	flush(len(text))
	return out
}
