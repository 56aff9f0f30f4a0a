package core

import (
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"github.com/ponder-rlm/ponder/internal/text"
)

// ExtractBoxed returns the content of the last \boxed{...} in text, with
// nested braces balanced.
func ExtractBoxed(text string) (string, bool) {
	i := strings.LastIndex(text, `\boxed`)
	if i < 0 {
		return "", false
	}
	rest := text[i+len(`\boxed`):]
	rest = strings.TrimLeft(rest, " ")
	if !strings.HasPrefix(rest, "{") {
		return "", false
	}
	depth := 0
	for j, r := range rest {
		switch r {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return strings.TrimSpace(rest[1:j]), true
			}
		}
	}
	return "", false
}

var (
	// answerMarker is "answer:", "answer =" or "answer is", with the space
	// after it (line breaks included: "The answer is\n14"), or "answer to
	// <what> is" ("The answer to the question is 6"), where <what> (group
	// 1) is a short phrase within the sentence: the first "is" ends it, so
	// "The answer to the question is 6, which is even" reads 6.
	answerMarker = regexp.MustCompile(`(?i)\banswer(?:\s+to\s+((?:[^.!\n;:=]|\.\d){1,80}?)\s+is\b\s*:?|\s*(?:is\s*:?|[:=]))\s*`)
	// partOf is what makes "the answer to <what>" one on the way: a part
	// of the problem ("part one", "the first question", "step 2", "(a)",
	// "this sub-problem", "the question so far"), unless it names them all
	// (wholeOf: "both parts", "all the steps").
	partOf = regexp.MustCompile(`(?i)\b(?:parts?|steps?|stages?|pieces?|cases?|sub-?(?:problem|question|task|goal|part|` +
		`expression|step|case|total)s?|first|second|third|fourth|fifth|sixth|next|previous|\d+(?:st|nd|rd|th)|` +
		`so\s+far|for\s+now)\b|\(\s*(?:[a-h]|[ivx]{1,4}|\d{1,2})\s*\)|\b(?:question|problem|exercise|item)\s+\d`)
	wholeOf = regexp.MustCompile(`(?i)\b(?:both|all|every|whole|entire|overall)\b`)
	// whLast is a phrase that ends with a question word, which an "is"
	// follows within the question ("the answer to what is 2 + 2 is 4").
	whLast = regexp.MustCompile(`(?i)\b(?:what|who|which|where|when|how|why)$`)
	// sentenceBreak ends an answer written inside prose: "14. I hope it is
	// correct" (Minerva's format), "x = 3. Then ...". The period must follow
	// a digit, a closing bracket or dollar, or a lower-case word, so that
	// initials and titles ("J. K. Rowling", "Dr. Who") stay whole.
	sentenceBreak = regexp.MustCompile(`(?:[0-9$)}\]*]|[a-z]{2})(\.)\s+[A-Z]`)
	numberRe      = regexp.MustCompile(`-?\$?\d[\d,]*(?:\.\d+)?(?:/\d+)?`)
	// notFinal is a word before "answer" that makes it one on the way:
	// "the partial answer is 5", "my first answer was", "the sub-answer is".
	notFinal = regexp.MustCompile(`(?i)\b(?:partial|intermediate|interim|current|temporary|tentative|preliminary|` +
		`provisional|running|initial|first|previous|earlier|original|approximate|rough|estimated|candidate|possible|` +
		`draft|wrong|incorrect|sub)[\s-]*$`)
	// goesOn is reasoning that goes on in the answer's own sentence: "5,
	// now we add 3", "5 so far", "5; we still need to subtract 2".
	goesOn = regexp.MustCompile(`(?i)(?:[,;:.]\s*|\s(?:and|but|so)\s+)(?:and\s+|so\s+|but\s+)?(?:now|next|then|` +
		`after\s+that|still|plus|(?:we|i)\s+(?:now\s+|then\s+|next\s+|still\s+)?(?:add|subtract|multiply|divide|need|` +
		`have\s+to|must|carry|continue|compute|calculate|move\s+on|proceed|plug|substitute))\b|` +
		`\b(?:so\s+far|for\s+now|for\s+the\s+moment|at\s+this\s+(?:point|stage)|up\s+to\s+now|until\s+now)\b`)
	// concluding is a "now" or "then" that goes on to no step: "5, now
	// that we know x", "5, then." (as in "so it is 5, then"), "5 and now
	// we're done".
	concluding = regexp.MustCompile(`(?i)\b(?:now|then)\s+that\b|[,;]\s*then$|\b(?:and\s+)?(?:now\s+)?(?:we|i)(?:'re|'m|\s+are|` +
		`\s+am)\s+(?:now\s+)?(?:all\s+)?(?:done|finished)\b`)
	// nextStep opens a sentence that takes the answer as a step: "The
	// answer is 5. Now we add 3." or "Then 5 * 2 = 10.": an opener that
	// goes on to a step of work (stepWork), or one that is itself one
	// ("It remains to", "We still need to"). "Now we are done", "Then she
	// has $18" or "Plus, this matches the estimate" take the answer as
	// none, and a check of the answer ("Now let me verify") does not.
	nextStep = regexp.MustCompile(`(?i)^(?:and\s+|so\s+)?(?:(?:adding|subtracting|multiplying|dividing|it\s+remains|` +
		`(?:we|i)\s+(?:still|need|have\s+to|must))\b|(?:now|next|then|after\s+that|plus|(?:we|i)\s+(?:now|then|next))\b)`)
	stepOpener = regexp.MustCompile(`(?i)^(?:and\s+|so\s+)?(?:now|next|then|after\s+that|plus|(?:we|i)\s+(?:now|then|next))\b`)
	stepWork   = regexp.MustCompile(`(?i)\b(?:add(?:s|ed|ing)?|subtract\w*|multipl\w*|divid\w*|plug\w*|substitut\w*|comput\w*|` +
		`calculat\w*|find\w*|solv\w*|simplif\w*|evaluat\w*|combin\w*|convert\w*|appl(?:y|ies|ied|ying)|take|takes|taking|` +
		`consider\w*|proceed\w*|continu\w*|carr(?:y|ies|ied|ying)|need\w*|must|have\s+to|has\s+to|mov(?:e|ing)\s+on|` +
		`(?:we|i|you)\s+(?:\w+\s+)?(?:get|obtain))\b|[0-9)]\s*[-+*/×÷]\s*[0-9(]`)
	// explains opens a clause that explains the answer before it: ", which
	// is the number of apples left", " because 6 * 7 = 42", "; this is the
	// total". Group 1 is the comma or semicolon, group 2 the word;
	// cutExplanation decides which forms end the answer.
	explains = regexp.MustCompile(`(?i)(?:([,;])\s*|\s+)(which|where|because|since|as|now\s+that|this|that|it)\b`)
	// stepAdverb, in a clause after the answer, may take it on to a step:
	// "which is then multiplied by 2".
	stepAdverb = regexp.MustCompile(`(?i)\b(?:now|then|next)\b`)
	// proseWord is a word of three letters or more, as an aside in
	// parentheses holds ("(rounded)", "(since 6 * 7 = 42)") and a factor
	// or an interval does not ("(x + 1)", "(2, 3)").
	proseWord = regexp.MustCompile(`[A-Za-z]{3,}`)
	// arithmetic is sums of numbers alone, as an aside that works a
	// number out holds ("12 (4 + 8)"); a factor holds a letter ("3 (x +
	// 1)", "2 (3 + \sqrt{2})").
	arithmetic = regexp.MustCompile(`^[\d\s.,$+\-*/×÷=]*\d\s*[+\-*/×÷=]\s*\$?\d[\d\s.,$+\-*/×÷=]*$`)
	checking   = regexp.MustCompile(`(?i)\b(?:check|checking|verify|verifying|confirm|confirming|double-check|recheck|` +
		`make\s+sure|ensure|sanity)\b`)
)

// ExtractAnswer finds a final answer in text: the last \boxed{...}, else
// the last "#### x", else the last "answer: x" / "answer is x" / "answer
// to <the question> is x". The last
// one wins within each form, even on one line, because a model that
// corrects itself ("Answer: 12 ... wait ... Answer: 14") ends with the
// answer it settled on, as lm-eval-harness and the MATH grader read it. The
// forms keep their order of precedence: every prompt asks for \boxed, so a
// box is the final answer and the prose after it ("the answer is correct",
// a Markdown "#### Check" heading) is commentary, not a correction.
// Likewise an answer line that only judges an earlier answer ("the
// answer is correct") yields to it.
// An "answer" line's answer ends at the end of its line or sentence, or
// where a clause that only explains it opens (cutExplanation: "5, which
// is ..."), and one on the way to the answer ("the partial answer is 5,
// now we add 3": isFinal; "the answer to part one is 5": partOf) is none.
// It does not fall back to the last number in the text: a step that
// states no answer has none.
func ExtractAnswer(text string) (string, bool) {
	if b, ok := ExtractBoxed(text); ok {
		return b, true
	}
	// The regular expression is costly next to a search's other work per
	// step: most steps hold neither marker, which a plain scan rules out
	// (the expression's case folding also takes ſ for s).
	if !strings.Contains(text, "####") && !containsFoldASCII(text, "answer") && !strings.Contains(text, "ſ") {
		return "", false
	}
	for rest := text; ; {
		i := strings.LastIndex(rest, "####")
		if i < 0 {
			break
		}
		if a, _ := answerAt(rest[i+len("####"):]); a != "" {
			return a, true
		}
		rest = rest[:i]
	}
	m := answerMarker.FindAllStringSubmatchIndex(text, -1)
	verdict := ""
	for k := len(m) - 1; k >= 0; k-- {
		if m[k][2] >= 0 {
			// "The answer to part one is 5" answers a part on the way.
			if what := text[m[k][2]:m[k][3]]; partOf.MatchString(what) && !wholeOf.MatchString(what) {
				continue
			}
		}
		full, after := answerAt(text[m[k][1]:])
		if m[k][2] >= 0 && whLast.MatchString(text[m[k][2]:m[k][3]]) {
			// "The answer to what is 2 + 2 is 4": the question's own "is"
			// ended the phrase too soon.
			if i := strings.Index(full, " is "); i >= 0 {
				full = strings.TrimLeft(full[i+len(" is "):], " :")
			}
		}
		a, why := cutExplanation(full)
		switch {
		case a == "":
		case !isFinal(text[:m[k][0]], full, after):
		case why != "" && clauseGoesOn(why):
		case isVerdict(a):
			// "Answer: 14. Checking: the answer is correct." The verdict
			// is about an answer before it, which wins; alone, it is the
			// answer (a true-or-false question's "the answer is true").
			if verdict == "" {
				verdict = a
			}
		default:
			return a, true
		}
	}
	return verdict, verdict != ""
}

// cutExplanation splits an answer read after a marker into the answer
// and a clause that only explains it, so that "5, which is the number of
// apples left" and "5 because 2 + 3 = 5" both read 5 and vote together.
// why is the clause's text after its opening word ("" when there is
// none). A clause is cut where it opens:
//   - after a comma or semicolon: "which", "where", "because", "since",
//     "as" (not "as well"), "now that", "this", "that", "it" ("5; this is
//     the total", "18, that is what she makes");
//   - after a space alone: "because", "since", "now that", and "which"
//     after a value ("5 which is the total"; after words, a bare "which"
//     restricts them: "the smallest number which is prime");
//   - as an aside in parentheses at the end that holds a word ("42
//     (since 6 * 7 = 42)", "18 (dollars)") or, after a number, only
//     arithmetic ("12 (4 + 8)"), but not "3 (x + 1)" or "5 (mod 7)".
//
// It is cut only outside brackets and after an answer-like head: one that
// holds a digit or math (a value: "x = 3, y = 4, which ..."), or a short
// one: up to three words before a comma, semicolon or parenthesis, one
// word before a bare "because" or "since", none before a bare "which".
// A longer head is taken for a
// sentence that is itself the answer, whose clause may be part of it
// ("Rome fell because of overexpansion", "the days since 1900"), and an
// answer that opens with the word ("because of its history") is kept
// whole.
func cutExplanation(a string) (answer, why string) {
	for _, m := range explains.FindAllStringSubmatchIndex(a, -1) {
		head := strings.TrimRight(a[:m[0]], " \t,;")
		word := strings.ToLower(a[m[4]:m[5]])
		rest := strings.TrimLeft(a[m[5]:], " \t")
		maxWords := 3
		switch {
		case m[2] >= 0:
			if word == "as" && strings.HasPrefix(strings.ToLower(rest), "well") {
				continue
			}
		case word == "which":
			maxWords = 0
		case word == "because" || word == "since" || strings.HasPrefix(word, "now"):
			maxWords = 1
		default:
			continue
		}
		if answerLike(head, maxWords) && depth(a[:m[0]]) == 0 {
			return trimAnswer(head), rest
		}
	}
	if !strings.HasSuffix(a, ")") {
		return a, ""
	}
	// The aside's opening parenthesis: the one that closes at the end.
	d := 0
	for i := len(a) - 1; i > 0; i-- {
		switch a[i] {
		case ')', ']', '}':
			d++
		case '(', '[', '{':
			d--
		}
		if d != 0 {
			continue
		}
		if a[i] != '(' || (a[i-1] != ' ' && a[i-1] != '\t') {
			return a, ""
		}
		aside := a[i+1 : len(a)-1]
		head := strings.TrimRight(a[:i], " \t,;")
		if !(prose(aside) && answerLike(head, 3)) && !(arithmetic.MatchString(aside) && strings.ContainsAny(head, "0123456789")) {
			return a, ""
		}
		return trimAnswer(head), aside
	}
	return a, ""
}

// clauseGoesOn reports whether a clause cut from an answer goes on
// reasoning with it ("5, which we now add to 3", "5, which is then
// multiplied by 2"), as an answer's own sentence may (goesOn), so that the
// answer is one on the way.
func clauseGoesOn(why string) bool {
	if goesOn.MatchString(", " + why) {
		return true
	}
	loc := stepAdverb.FindStringIndex(why)
	return loc != nil && stepWork.MatchString(why[loc[1]:])
}

// answerLike reports whether head reads as an answer that a clause after
// it explains: a value (a digit or math in it) or at most maxWords words.
func answerLike(head string, maxWords int) bool {
	head = strings.Trim(head, "* \t")
	if head == "" {
		return false
	}
	return strings.ContainsAny(head, "0123456789$\\=^_{}") || len(strings.Fields(head)) <= maxWords
}

// depth is how many brackets of any kind s leaves open: a clause inside
// "(a, which ...)" or "\text{, since }" is part of the answer.
func depth(s string) int {
	d := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(', '[', '{':
			d++
		case ')', ']', '}':
			d--
		}
	}
	return d
}

// prose reports whether an aside in parentheses holds a word rather than
// math: a word of three letters or more that is no LaTeX command
// ("\sqrt") and no function ("sin", "mod").
func prose(s string) bool {
	for _, m := range proseWord.FindAllStringIndex(s, -1) {
		if m[0] > 0 && s[m[0]-1] == '\\' {
			continue
		}
		switch strings.ToLower(s[m[0]:m[1]]) {
		case "sin", "cos", "tan", "cot", "sec", "csc", "log", "exp", "mod", "pmod", "max", "min", "gcd", "lcm", "det", "arg", "lim":
			continue
		}
		return true
	}
	return false
}

// isVerdict reports whether an answer is only a judgement of an answer
// ("correct", "right", "wrong", ...), as a model's check of its own
// answer ends.
func isVerdict(a string) bool {
	switch strings.ToLower(strings.TrimRight(a, ".!")) {
	case "correct", "right", "wrong", "incorrect", "valid", "invalid", "reasonable", "confirmed", "verified":
		return true
	}
	return false
}

// answerAt reads the answer that starts s (after a marker): up to the end
// of its line and of its sentence, without surrounding space or a final
// period. after is the text that follows it.
func answerAt(s string) (answer, after string) {
	s = strings.TrimLeft(s, " \t\r\n")
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s, after = s[:i], s[i:]
	}
	if loc := sentenceBreak.FindStringSubmatchIndex(s); loc != nil {
		s, after = s[:loc[2]], s[loc[2]+1:]+after
	}
	return trimAnswer(s), after
}

// trimAnswer drops the space, final periods and Markdown emphasis around
// an answer: "** 18" ("**Answer:** 18"), "18.**" ("**The answer is
// 18.**"), "**18**." ("The answer is **18**.").
func trimAnswer(s string) string {
	for {
		t := strings.TrimRight(strings.Trim(strings.TrimSpace(s), "*"), ".")
		if t == s {
			return s
		}
		s = t
	}
}

// isFinal reports whether answer, read after a marker that follows
// before, is a final answer rather than one on the way to it (a model
// writes "the answer is" mid-reasoning too): the marker is not qualified
// ("the partial answer is 5"), the answer's sentence does not go on
// reasoning ("5, now we add 3") and the next sentence, on its line or
// the next, does not take it as a step ("5. Now we add 3").
func isFinal(before, answer, after string) bool {
	if notFinal.MatchString(strings.TrimRight(before, " \t*_")) || goesOn.MatchString(concluding.ReplaceAllString(answer, "")) {
		return false
	}
	next := strings.TrimLeft(after, " \t\r\n")
	if i := strings.IndexByte(next, '\n'); i >= 0 {
		next = next[:i]
	}
	if loc := sentenceBreak.FindStringSubmatchIndex(next); loc != nil {
		next = next[:loc[2]]
	}
	if !nextStep.MatchString(next) || checking.MatchString(next) {
		return true
	}
	if loc := stepOpener.FindStringIndex(next); loc != nil {
		// "Now we add 3", "Then 5 * 2 = 10": a step; "Now we are done",
		// "Then she has $18": none.
		return !stepWork.MatchString(next[loc[1]:])
	}
	return false
}

// containsFoldASCII reports whether s contains the lower-case ASCII word
// sub in any case, without allocating.
func containsFoldASCII(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		j := 0
		for ; j < len(sub); j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != sub[j] {
				break
			}
		}
		if j == len(sub) {
			return true
		}
	}
	return false
}

// ExtractNumber returns the first number in s in canonical form: commas,
// dollar signs and trailing zeros after a decimal point removed.
func ExtractNumber(s string) (string, bool) {
	m := numberRe.FindString(s)
	if m == "" {
		return "", false
	}
	m = strings.NewReplacer(",", "", "$", "").Replace(m)
	if strings.Contains(m, ".") && !strings.Contains(m, "/") {
		m = strings.TrimRight(strings.TrimRight(m, "0"), ".")
	}
	if m == "-0" {
		m = "0"
	}
	return m, true
}

// GenericPack poses any problem: solve step by step and box the answer.
// Answers are compared as numbers when they are numbers, else as trimmed
// lower-case text.
type GenericPack struct{}

var _ Pack = GenericPack{}

// Name implements Pack.
func (GenericPack) Name() string { return "generic" }

const genericSystem = "You are a careful problem solver. Reason step by step. " +
	"When you reach the final answer, write it as \\boxed{ANSWER}."

// Instructions of the generic pack's prompts.
const (
	SolveInstruction = "Solve the problem step by step, one step per line, then give the final answer as \\boxed{ANSWER}."
	StepInstruction  = "Write only the next step. If it completes the solution, end it with the final answer as \\boxed{ANSWER}."
)

// LayoutPrompt lays out a prompt the way every built-in pack does, so that
// one parser (tasks.ParsePrompt) reads them all:
//
//	Problem:
//	<problem>
//
//	Steps so far:
//	Step 1: <step>
//	...
//
//	<instruction>
func LayoutPrompt(system, problem string, steps []string, instruction string) []Message {
	size := len("Problem:\n\n\nSteps so far:\n\n") + len(problem) + len(instruction)
	for _, s := range steps {
		size += len("Step 1000: \n") + len(s)
	}
	var b strings.Builder
	b.Grow(size)
	b.WriteString("Problem:\n")
	b.WriteString(problem)
	b.WriteString("\n\n")
	if len(steps) > 0 {
		b.WriteString("Steps so far:\n")
		var num [20]byte
		for i, s := range steps {
			b.WriteString("Step ")
			b.Write(strconv.AppendInt(num[:0], int64(i+1), 10))
			b.WriteString(": ")
			b.WriteString(s)
			b.WriteByte('\n')
		}
		b.WriteByte('\n')
	}
	b.WriteString(instruction)
	return []Message{{Role: "system", Content: system}, {Role: "user", Content: b.String()}}
}

// SolvePrompt implements Pack.
func (GenericPack) SolvePrompt(problem string) []Message {
	return LayoutPrompt(genericSystem, problem, nil, SolveInstruction)
}

// StepPrompt implements Pack.
func (GenericPack) StepPrompt(problem string, steps []string) []Message {
	return LayoutPrompt(genericSystem, problem, steps, StepInstruction)
}

// ExtractAnswer implements Pack.
func (GenericPack) ExtractAnswer(text string) (string, bool) { return ExtractAnswer(text) }

// Normalize implements Pack: votes are counted by this key, so forms that
// write the same answer share it and different answers never do. Minus
// signs (−, –, －) are "-", white space is collapsed, a final period and
// case are dropped; an answer that is one number, written plainly ("-5",
// "$1,000", "+5", "0.50", ".5", "1/2", "$-5$"), is keyed by its exact value,
// so "-5" and "−5", "0.5" and "1/2" vote together, while "5x", "5!", "5%"
// or "5 apples" are text and never vote with "5".
func (GenericPack) Normalize(a string) string {
	s := strings.TrimSpace(text.OneLine(minusSigns.Replace(a)))
	s = strings.TrimSpace(strings.TrimRight(s, "."))
	if k, ok := numberKey(s); ok {
		return k
	}
	return strings.ToLower(s)
}

var (
	minusSigns = strings.NewReplacer("\u2212", "-", "\u2013", "-", "\u2014", "-", "\ufe63", "-", "\uff0d", "-")
	// plainNumber is a number and nothing else: a sign, digits with or
	// without thousands separators, decimals, a fraction bar.
	plainNumber = regexp.MustCompile(`^[-+]?\s?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)(?:/\d+)?$`)
)

// maxKeyDigits bounds the numbers numberKey reads exactly: a megabyte of
// digits would cost seconds as a big.Rat.
const maxKeyDigits = 256

// digitSeparators drops the separators a number may be written with
// (made once: Normalize runs for every vote).
var digitSeparators = strings.NewReplacer(",", "", " ", "")

// numberKey is the exact value of s when s is one plainly written number
// (dollar signs, as currency or math delimiters, aside), as a reduced
// fraction or integer.
func numberKey(s string) (string, bool) {
	s = strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(s, `\$`, ""), "$", ""))
	if len(s) > maxKeyDigits || !plainNumber.MatchString(s) {
		return "", false
	}
	s = digitSeparators.Replace(s)
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return "", false // a division by zero
	}
	return r.RatString(), true
}
