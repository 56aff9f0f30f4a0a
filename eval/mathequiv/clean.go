package mathequiv

import (
	"regexp"
	"strings"
	"unicode"
)

// Clean removes what does not change an answer's meaning: \boxed{} and
// dollar delimiters, spacing commands, \left and \right, \dfrac and \tfrac,
// degree signs, percent and dollar signs, units (\text{ cm}^2, "5 cents"),
// thousands separators (10,\!080 and 58,500), \text{} around words, a
// trailing period, and a leading "x =" or "x \in". Spaces are dropped except
// where one separates a command from a following letter (\cot x).
func Clean(s string) string {
	s = strings.TrimSpace(s)
	if b, ok := lastGroup(s, `\boxed`); ok {
		s = b
	} else if b, ok := lastGroup(s, `\fbox`); ok {
		s = b
	}
	if len(s) > maxAnswerLen {
		return s // text: see maxAnswerLen
	}
	s = unicodeRepl.Replace(s)
	s = strings.TrimSpace(s)
	// Math delimiters.
	for _, d := range [][2]string{{`\(`, `\)`}, {`\[`, `\]`}, {`$$`, `$$`}} {
		if strings.HasPrefix(s, d[0]) && strings.HasSuffix(s, d[1]) && len(s) >= len(d[0])+len(d[1]) {
			s = s[len(d[0]) : len(s)-len(d[1])]
		}
	}
	s = strings.ReplaceAll(s, `\$`, " ")
	s = strings.ReplaceAll(s, "$", " ")
	s = strings.ReplaceAll(s, "\n", " ")
	// Thousands separators written with a negative thin space: 10,\!080.
	for i := 0; i < 8; i++ {
		t := thinThousands.ReplaceAllString(s, "$1$2")
		if t == s {
			break
		}
		s = t
	}
	s = layoutRepl.Replace(s)
	s = degree.ReplaceAllString(s, "")
	s = strings.NewReplacer(`\%`, "", "%", "").Replace(s)
	// "2 or 3", "x = 2 \text{ and } x = 3": lists of solutions.
	s = textConj.ReplaceAllString(s, ",")
	if strings.ContainsAny(s, "0123456789") {
		s = plainConj.ReplaceAllString(s, ",")
	}
	s = removeUnits(s)
	s = strings.TrimSpace(s)
	s = strings.TrimRight(s, ". ")
	s = strings.TrimSpace(s)
	s = collapseThousands(s)
	s = squeezeSpaces(s)
	s = stripAssignment(s)
	s = braceArgs(s)
	return s
}

// maxAnswerLen bounds the answers that are cleaned and parsed: the longest
// MATH-500 answer has 53 bytes, and a megabyte of model output in a
// \boxed{} would cost seconds to clean. A longer answer is compared as
// text.
const maxAnswerLen = 4096

var unicodeRepl = strings.NewReplacer(
	"−", "-", "–", "-", "×", `\times `, "·", `\cdot `, "÷", `\div `, "π", `\pi `, "∞", `\infty `,
	"√", `\sqrt`, "∪", `\cup `, "±", `\pm `, "°", `^\circ`, "\u00a0", " ", "∅", `\emptyset `,
)

var layoutRepl = strings.NewReplacer(
	`\\`, `\\`, // a row break stays (and is not read as "\ ")
	`\left.`, "", `\right.`, "", `\left`, "", `\right`, "", `\bigl`, "", `\bigr`, "", `\Bigl`, "", `\Bigr`, "",
	`\big`, "", `\Big`, "",
	`\displaystyle`, "", `\textstyle`, "",
	`\dfrac`, `\frac`, `\tfrac`, `\frac`, `\cfrac`, `\frac`, `\dbinom`, `\binom`, `\tbinom`, `\binom`,
	`\!`, "", `\,`, "", `\;`, "", `\:`, "", `\ `, " ", `\qquad`, " ", `\quad`, " ", "~", " ",
	`\infty`, `\infty `, `\infinity`, `\infty `,
	`\varnothing`, `\emptyset`, `\lbrace`, `\{`, `\rbrace`, `\}`, `\lvert`, "|", `\rvert`, "|", `\vert`, "|",
)

var (
	thinThousands = regexp.MustCompile(`(\d),\\!\s*(\d{3})`)
	degree        = regexp.MustCompile(`\^\s*\{?\s*\\circ\s*\}?|\\degree|\\circ\s*$`)
	unitText      = regexp.MustCompile(`\\(?:text|textrm|textnormal|mbox|mathrm|textit|textbf)\s*\{\s+[^{}]*\}(?:\s*\^\s*\{?\s*[23]\s*\}?)?`)
	unitWord      = regexp.MustCompile(`(?i)^(.*?[0-9})])\s*(` + unitWords + `)\b(?:\s*\^\s*\{?[23]\}?)?(?:\s+(?:` + unitWords + `)\b(?:\s*\^\s*\{?[23]\}?)?)*$`)
	textWrap      = regexp.MustCompile(`\\(?:text|textrm|textnormal|mbox|mathrm|textit|textbf|mathbf|mathit|operatorname)\s*\{([^{}]*)\}`)
	assignment    = regexp.MustCompile(`^[A-Za-z](?:_\{?[A-Za-z0-9]+\}?)?\s*(?:=|\\in\b)\s*(.+)$`)
	spaces        = regexp.MustCompile(`\s+`)
	textConj      = regexp.MustCompile(`\\(?:text|textrm|mbox|mathrm)\s*\{\s*(?:or|and)\s*\}`)
	plainConj     = regexp.MustCompile(`\s+(?:or|and)\s+`)
)

// unitWords are units that may follow a number in an answer.
const unitWords = `units?|square|sq|cubic|cm|centimeters?|mm|millimeters?|km|kilometers?|meters?|metres?|m|inches|inch|in|` +
	`feet|foot|ft|yards?|yd|miles?|mi|degrees?|deg|radians?|rad|cents?|dollars?|hours?|hrs?|minutes?|mins?|` +
	`seconds?|secs?|days?|weeks?|months?|years?|mph|pounds?|lbs?|ounces?|oz|grams?|g|kg|liters?|litres?|ml|` +
	`gallons?|people|persons?|students?|ways|points?|times|percent|apples|boxes|books|pages|marbles|tiles|cubes|` +
	`students|children|handshakes|games|rounds|steps|sides|diagonals|outfits|numbers|integers|digits|cookies|` +
	`candies|coins|balls|cars|trees|eggs`

// removeUnits drops units after a quantity: \text{ cm}^2 after something,
// then (with \text{} unwrapped) unit words at the end ("5 cents", "12 square units"). A lone letter
// unit (m, g, in) needs a space before it, or it is a variable: 2m is 2
// times m.
func removeUnits(s string) string {
	var b strings.Builder
	last := 0
	for _, m := range unitText.FindAllStringIndex(s, -1) {
		if strings.TrimSpace(s[:m[0]]) == "" {
			continue // a lone \text{ word} is the answer, not a unit
		}
		b.WriteString(s[last:m[0]])
		b.WriteString(" ")
		last = m[1]
	}
	b.WriteString(s[last:])
	s = unwrapText(b.String())
	for i := 0; i < 2; i++ {
		t := strings.TrimSpace(s)
		m := unitWord.FindStringSubmatch(t)
		if m == nil {
			break
		}
		head := strings.TrimSpace(m[1])
		if !hasDigitOrCommand(head) {
			break
		}
		if len(m[2]) == 1 && !strings.HasPrefix(t[len(m[1]):], " ") {
			break
		}
		s = head
	}
	return s
}

func hasDigitOrCommand(s string) bool {
	for _, r := range s {
		if unicode.IsDigit(r) || r == '\\' || r == '}' {
			return true
		}
	}
	return false
}

// unwrapText replaces \text{word} by word (repeatedly, for nesting).
func unwrapText(s string) string {
	for i := 0; i < 4; i++ {
		t := textWrap.ReplaceAllString(s, "$1")
		if t == s {
			break
		}
		s = t
	}
	return s
}

// collapseThousands removes commas from numbers written with thousands
// separators (58,500 or 1,000,000) outside brackets; "1,-2" and "3, 5, 7"
// are lists and stay.
func collapseThousands(s string) string {
	var b strings.Builder
	depth := 0
	i := 0
	for i < len(s) {
		c := s[i]
		switch c {
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
		}
		if depth == 0 && c >= '0' && c <= '9' && (i == 0 || !isDigitOrDot(s[i-1])) {
			j := i
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			if j-i <= 3 && j < len(s) && s[j] == ',' {
				k := j
				groups := 0
				for k+4 <= len(s) && s[k] == ',' && allDigits(s[k+1:k+4]) && (k+4 == len(s) || !isDigit(s[k+4])) {
					k += 4
					groups++
				}
				if groups > 0 && (k == len(s) || s[k] != ',' || !(k+1 < len(s) && isDigit(s[k+1]))) {
					b.WriteString(s[i:j])
					for p := j; p < k; p += 4 {
						b.WriteString(s[p+1 : p+4])
					}
					i = k
					continue
				}
			}
			b.WriteString(s[i:j])
			i = j
			continue
		}
		b.WriteByte(c)
		i++
	}
	return b.String()
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isDigitOrDot(c byte) bool { return isDigit(c) || c == '.' }
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

// squeezeSpaces drops spaces, keeping one where it separates a command
// name from a letter (\cot x), and turns the rest of a space between two
// numbers into one space (137 \frac{1}{2} keeps its meaning either way).
func squeezeSpaces(s string) string {
	s = spaces.ReplaceAllString(strings.TrimSpace(s), " ")
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' {
			b.WriteByte(s[i])
			continue
		}
		prev := b.String()
		next := byte(0)
		if i+1 < len(s) {
			next = s[i+1]
		}
		if endsWithCommand(prev) && isLetter(next) {
			b.WriteByte(' ')
			continue
		}
		if len(prev) > 0 && isDigitOrDot(prev[len(prev)-1]) && isDigitOrDot(next) {
			b.WriteByte(' ')
		}
	}
	return b.String()
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

func endsWithCommand(s string) bool {
	i := len(s)
	for i > 0 && isLetter(s[i-1]) {
		i--
	}
	return i < len(s) && i > 0 && s[i-1] == '\\'
}

// stripAssignment turns "x = 3" and "x \in [1, 2]" into their right-hand
// side when the left is one variable and the right holds no other "=".
func stripAssignment(s string) string {
	m := assignment.FindStringSubmatch(s)
	if m == nil || strings.Contains(m[1], "=") {
		return s
	}
	return strings.TrimSpace(m[1])
}

// braceArgs writes the arguments of \frac, \sqrt, \binom, ^ and _ in one
// form: \frac12 and \frac 1 2 become \frac{1}{2}, \sqrt2 becomes \sqrt{2},
// x^{2} becomes x^2, 4210_{5} becomes 4210_5.
func braceArgs(s string) string {
	var b strings.Builder
	i := 0
	for i < len(s) {
		switch {
		case strings.HasPrefix(s[i:], `\frac`) && !isLetterAt(s, i+5), strings.HasPrefix(s[i:], `\binom`) && !isLetterAt(s, i+6):
			name := `\frac`
			if s[i+1] == 'b' {
				name = `\binom`
			}
			b.WriteString(name)
			i += len(name)
			for a := 0; a < 2; a++ {
				arg, n := latexArg(s[i:])
				if n == 0 {
					break
				}
				b.WriteString("{" + braceArgs(arg) + "}")
				i += n
			}
		case strings.HasPrefix(s[i:], `\sqrt`) && !isLetterAt(s, i+5):
			b.WriteString(`\sqrt`)
			i += 5
			if i < len(s) && s[i] == '[' {
				if j := matchClose(s, i); j > 0 {
					b.WriteString("[" + braceArgs(s[i+1:j]) + "]")
					i = j + 1
				}
			}
			arg, n := latexArg(s[i:])
			if n > 0 {
				b.WriteString("{" + braceArgs(arg) + "}")
				i += n
			}
		case s[i] == '^' || s[i] == '_':
			b.WriteByte(s[i])
			i++
			arg, n := latexArg(s[i:])
			if n == 0 {
				continue
			}
			inner := braceArgs(arg)
			if len(inner) == 1 {
				b.WriteString(inner)
			} else {
				b.WriteString("{" + inner + "}")
			}
			i += n
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String()
}

func isLetterAt(s string, i int) bool { return i < len(s) && isLetter(s[i]) }

// latexArg reads one macro argument at the start of s: a braced group, a
// command (\pi), or one character. It returns the argument without braces
// and how many bytes it took (0 when there is none).
func latexArg(s string) (string, int) {
	i := 0
	for i < len(s) && s[i] == ' ' {
		i++
	}
	if i >= len(s) {
		return "", 0
	}
	switch {
	case s[i] == '{':
		j := matchClose(s, i)
		if j < 0 {
			return "", 0
		}
		return s[i+1 : j], j + 1
	case s[i] == '\\':
		j := i + 1
		for j < len(s) && isLetter(s[j]) {
			j++
		}
		if j == i+1 && j < len(s) {
			j++
		}
		return s[i:j], j
	case s[i] == '}' || s[i] == ')' || s[i] == ']':
		return "", 0
	}
	return s[i : i+1], i + 1
}

// matchClose returns the index of the bracket closing the one at s[i], or
// -1.
func matchClose(s string, i int) int {
	open := s[i]
	var close byte
	switch open {
	case '{':
		close = '}'
	case '[':
		close = ']'
	case '(':
		close = ')'
	default:
		return -1
	}
	depth := 0
	for j := i; j < len(s); j++ {
		switch s[j] {
		case open:
			depth++
		case close:
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return -1
}

// lastGroup returns the braced argument of the last occurrence of macro.
func lastGroup(s, macro string) (string, bool) {
	i := strings.LastIndex(s, macro)
	if i < 0 {
		return "", false
	}
	rest := strings.TrimLeft(s[i+len(macro):], " ")
	if !strings.HasPrefix(rest, "{") {
		return "", false
	}
	j := matchClose(rest, 0)
	if j < 0 {
		return "", false
	}
	return strings.TrimSpace(rest[1:j]), true
}
