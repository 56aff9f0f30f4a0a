package tasks

import (
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/text"
)

// Game24 poses the Game of 24 (problem "4 9 10 13"): combine the four
// numbers with +, -, * and / into exactly 24, using each once. Its prompts
// follow Tree of Thoughts (Yao et al., 2023): a step is one move
// "13 - 9 = 4 (left: 4 4 10)", three moves leave one number, and the fourth
// step writes the whole expression as \boxed{(13 - 9) * (10 - 4)}.
//
// Answers need no ground truth: Verify evaluates the expression with exact
// rational arithmetic.
type Game24 struct{}

var (
	_ core.Pack     = Game24{}
	_ core.Verifier = Game24{}
	_ Valuer        = Game24{}
	_ Proposer      = Game24{}
	_ DataProblem   = Game24{}
)

// ProblemIsData implements DataProblem: the problem is the four numbers.
func (Game24) ProblemIsData() {}

// System prompts and instructions of the Game of 24 pack.
const (
	Game24System = "You are playing the Game of 24: combine four numbers with +, -, * and / into exactly 24, " +
		"using each number exactly once."
	Game24SolveInstruction = "Use each of the four numbers exactly once, with +, -, *, / and parentheses, to make 24. " +
		"Work in three steps, one per line, each combining two numbers like \"13 - 9 = 4 (left: 4 4 10)\"; " +
		"then write the whole expression as \\boxed{EXPRESSION}, for example \\boxed{(13 - 9) * (10 - 4)}."
	Game24StepInstruction = "Write only the next step: combine two of the numbers left with +, -, * or / and write it as " +
		"\"13 - 9 = 4 (left: 4 4 10)\", listing the numbers left after it. When one number is left, write instead " +
		"the whole expression over the four original numbers as \\boxed{EXPRESSION}."
	Game24ProposeInstruction = "List possible next steps, one per line, each combining two of the numbers left with " +
		"+, -, * or / and written as \"13 - 9 = 4 (left: 4 4 10)\". When one number is left, write instead the " +
		"whole expression over the four original numbers as \\boxed{EXPRESSION}."
	Game24ValueSystem = "You judge positions in the Game of 24: whether the numbers left can still be combined " +
		"with +, -, * and / into exactly 24."
	Game24ValueInstruction = "Evaluate whether the numbers left can reach 24. Reply with a short reason and then a " +
		"last line with one word: sure, likely or impossible."
)

// Values of the Game of 24 value verdicts on core's [-1, 1] scale. Tree of
// Thoughts weighs sure/likely/impossible as 20/1/0.001; Ponder keeps the
// order and the gap between sure and likely but centres the scale:
// sure = 1, likely = 0.1, impossible = -1.
const (
	Game24Sure       = 1.0
	Game24Likely     = 0.1
	Game24Impossible = -1.0
)

// Name implements core.Pack.
func (Game24) Name() string { return "game24" }

// SolvePrompt implements core.Pack.
func (Game24) SolvePrompt(problem string) []core.Message {
	return core.LayoutPrompt(Game24System, problem, nil, Game24SolveInstruction)
}

// StepPrompt implements core.Pack: the instruction starts with the numbers
// left after the steps so far.
func (Game24) StepPrompt(problem string, steps []string) []core.Message {
	return core.LayoutPrompt(Game24System, problem, steps, numbersLeftLine(problem, steps)+Game24StepInstruction)
}

// ProposePrompt implements Proposer: Tree of Thoughts' propose prompt, which
// asks for several possible next moves at once.
func (Game24) ProposePrompt(problem string, steps []string) []core.Message {
	return core.LayoutPrompt(Game24System, problem, steps, numbersLeftLine(problem, steps)+Game24ProposeInstruction)
}

// ParseProposals implements Proposer: the lines of reply that are moves, or
// hold a final expression, in their order.
func (Game24) ParseProposals(reply string) []string {
	var out []string
	for _, line := range strings.Split(reply, "\n") {
		line = strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(line), "-*•"))
		if line == "" {
			continue
		}
		if _, ok := ParseMove(line); ok {
			out = append(out, line)
		} else if _, ok := core.ExtractBoxed(line); ok {
			out = append(out, line)
		}
	}
	return out
}

// ValuePrompt implements Valuer: can the numbers left still reach 24?
func (Game24) ValuePrompt(problem string, steps []string) []core.Message {
	return core.LayoutPrompt(Game24ValueSystem, problem, steps, numbersLeftLine(problem, steps)+Game24ValueInstruction)
}

var verdictRe = regexp.MustCompile(`(?i)\b(sure|likely|impossible)\b`)

// negation ends the text before a negated verdict: "not sure", "isn't
// likely", "never impossible".
var negation = regexp.MustCompile(`(?i)(?:\bnot|\bnever|\bno|n't|n’t)\s*$`)

// ParseValue implements Valuer: the last sure/likely/impossible in reply,
// mapped to Game24Sure, Game24Likely or Game24Impossible. A negated last
// verdict ("I am not sure") is none.
func (Game24) ParseValue(reply string) (float64, bool) {
	m := verdictRe.FindAllStringIndex(reply, -1)
	if len(m) == 0 {
		return 0, false
	}
	last := m[len(m)-1]
	if negation.MatchString(reply[max(0, last[0]-16):last[0]]) {
		return 0, false
	}
	switch strings.ToLower(reply[last[0]:last[1]]) {
	case "sure":
		return Game24Sure, true
	case "likely":
		return Game24Likely, true
	default:
		return Game24Impossible, true
	}
}

// numbersLeftLine is "Numbers left: 4 4 10\n" for the state after steps:
// the true state when the moves are legal, else what the last move claims.
func numbersLeftLine(problem string, steps []string) string {
	left := ""
	if st, err := Game24Play(problem, steps); err == nil {
		left = FormatNumbers(st.Nums)
	} else {
		left = text.OneLine(problem)
		for _, s := range steps {
			if m, ok := ParseMove(s); ok && m.Left != nil {
				left = FormatNumbers(m.Left)
			}
		}
	}
	return "Numbers left: " + left + "\n"
}

var eq24 = regexp.MustCompile(`\s*=\s*24(?:\.0*)?\s*$`)

// ExtractAnswer implements core.Pack: the boxed (or "answer:") expression,
// without a trailing "= 24". A move such as "4 * 6 = 24 (left: 24)" is not
// an answer.
func (Game24) ExtractAnswer(text string) (string, bool) {
	a, ok := core.ExtractAnswer(text)
	if !ok {
		return "", false
	}
	a = strings.TrimSpace(eq24.ReplaceAllString(strings.TrimSpace(a), ""))
	return a, a != ""
}

// Normalize implements core.Pack: an expression in a canonical form
// (operands of + and * sorted, one pair of parentheses per operation), so
// "(13-9)*(10-4)" and "(10 - 4) × (13 - 9)" vote together. Text that is no
// expression is returned with spaces removed.
func (Game24) Normalize(a string) string {
	e, err := parseExpr(cleanExpr(a))
	if err != nil {
		return strings.Join(strings.Fields(a), "")
	}
	return strings.TrimSuffix(strings.TrimPrefix(e.canon(), "("), ")")
}

// Verify implements core.Verifier without a ground truth: the answer is
// correct when it uses the problem's four numbers exactly once each and
// evaluates to exactly 24. It is not applicable when the problem is not
// four numbers.
func (Game24) Verify(problem, answer, truth string) (bool, bool) {
	if _, ok := Game24Numbers(problem); !ok {
		return false, false
	}
	return Check24(problem, answer) == nil, true
}

// CheckProblem implements core.ProblemChecker: a Game of 24 puzzle is its
// four numbers.
func (Game24) CheckProblem(problem string) error {
	if _, ok := Game24Numbers(problem); !ok {
		return fmt.Errorf("a Game of 24 puzzle is its four numbers and nothing else, such as \"4 9 10 13\"; got %q", text.Clip(strings.TrimSpace(problem), 80))
	}
	return nil
}

// Errors of Check24.
var (
	ErrNot24        = errors.New("expression does not evaluate to 24")
	ErrWrongNumbers = errors.New("expression does not use each number of the problem exactly once")
	ErrDivByZero    = errors.New("division by zero")
)

// Check24 reports why expr is not a solution of the Game of 24 problem, or
// nil when it is one. Arithmetic is exact (math/big.Rat).
func Check24(problem, expr string) error {
	want, ok := Game24Numbers(problem)
	if !ok {
		return fmt.Errorf("problem %q is not four numbers", problem)
	}
	e, err := parseExpr(cleanExpr(expr))
	if errors.Is(err, errTooManyNumbers) {
		return ErrWrongNumbers
	}
	if err != nil {
		return err
	}
	if got := e.literals(nil); FormatNumbers(sortRats(got)) != FormatNumbers(sortRats(want)) {
		return ErrWrongNumbers
	}
	v, err := e.eval()
	if err != nil {
		return err
	}
	if v.Cmp(big.NewRat(24, 1)) != 0 {
		return fmt.Errorf("%w (it is %s)", ErrNot24, FormatRat(v))
	}
	return nil
}

// Game24Numbers reads the numbers of a problem such as "4 9 10 13".
func Game24Numbers(problem string) ([]*big.Rat, bool) {
	f := strings.Fields(problem)
	if len(f) != 4 {
		return nil, false
	}
	return parseRats(f)
}

func parseRats(f []string) ([]*big.Rat, bool) {
	out := make([]*big.Rat, 0, len(f))
	for _, s := range f {
		r, ok := parseRat(s)
		if !ok {
			return nil, false
		}
		out = append(out, r)
	}
	return out, true
}

func parseRat(s string) (*big.Rat, bool) {
	if s == "" || strings.ContainsAny(s, "eE") {
		return nil, false
	}
	r, ok := new(big.Rat).SetString(s)
	return r, ok
}

// FormatRat writes r as an integer ("4"), or as a reduced fraction ("8/3").
func FormatRat(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	return r.RatString()
}

// FormatNumbers writes numbers separated by spaces.
func FormatNumbers(nums []*big.Rat) string {
	s := make([]string, len(nums))
	for i, n := range nums {
		s[i] = FormatRat(n)
	}
	return strings.Join(s, " ")
}

func sortRats(nums []*big.Rat) []*big.Rat {
	out := append([]*big.Rat(nil), nums...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Cmp(out[j]) < 0 })
	return out
}

// --- moves ---

// Move is one step of the Game of 24: A Op B = Result, with the numbers
// Left after it (nil when the step does not list them).
type Move struct {
	A, B   *big.Rat
	Op     byte // '+', '-', '*' or '/'
	Result *big.Rat
	Left   []*big.Rat
}

// String writes the move as "13 - 9 = 4 (left: 4 4 10)".
func (m Move) String() string {
	s := FormatRat(m.A) + " " + string(m.Op) + " " + FormatRat(m.B) + " = " + FormatRat(m.Result)
	if m.Left != nil {
		s += " (left: " + FormatNumbers(m.Left) + ")"
	}
	return s
}

const ratPat = `-?\d+(?:/\d+)?`

var moveRe = regexp.MustCompile(`^\s*(` + ratPat + `)\s*([-+*/×÷x])\s*(` + ratPat + `)\s*=\s*(` + ratPat + `)\s*(?:\(\s*left\s*:\s*([^)]*)\))?`)

// ParseMove reads a step "13 - 9 = 4 (left: 4 4 10)". It checks the form,
// not the arithmetic: see Game24State.Apply.
func ParseMove(s string) (Move, bool) {
	m := moveRe.FindStringSubmatch(s)
	if m == nil {
		return Move{}, false
	}
	nums, ok := parseRats([]string{m[1], m[3], m[4]})
	if !ok {
		return Move{}, false
	}
	op := map[string]byte{"+": '+', "-": '-', "*": '*', "/": '/', "×": '*', "x": '*', "÷": '/'}[m[2]]
	mv := Move{A: nums[0], Op: op, B: nums[1], Result: nums[2]}
	if m[5] != "" || strings.Contains(strings.ToLower(s), "left") {
		left, ok := parseRats(strings.Fields(strings.ReplaceAll(m[5], ",", " ")))
		if !ok {
			return Move{}, false
		}
		mv.Left = sortRats(left)
		if mv.Left == nil {
			mv.Left = []*big.Rat{}
		}
	}
	return mv, true
}

// Game24State is a position: the numbers left, each with the expression
// over the original numbers that made it.
type Game24State struct {
	Nums  []*big.Rat
	Exprs []string
}

// NewGame24State is the starting position of a problem.
func NewGame24State(problem string) (Game24State, error) {
	nums, ok := Game24Numbers(problem)
	if !ok {
		return Game24State{}, fmt.Errorf("game24: problem %q is not four numbers", problem)
	}
	st := Game24State{}
	for _, n := range sortRats(nums) {
		st.Nums = append(st.Nums, n)
		st.Exprs = append(st.Exprs, FormatRat(n))
	}
	return st, nil
}

// Game24Play replays moves from the start of problem. It fails on a step
// that is not a legal move (see Apply); a step that holds a final answer
// ends the replay.
func Game24Play(problem string, steps []string) (Game24State, error) {
	st, err := NewGame24State(problem)
	if err != nil {
		return st, err
	}
	for i, s := range steps {
		mv, ok := ParseMove(s)
		if !ok {
			if _, ok := (Game24{}).ExtractAnswer(s); ok {
				return st, nil
			}
			return st, fmt.Errorf("game24: step %d is not a move: %q", i+1, s)
		}
		if st, err = st.Apply(mv); err != nil {
			return st, fmt.Errorf("game24: step %d: %w", i+1, err)
		}
	}
	return st, nil
}

// ApplyOp computes a op b exactly; it fails on division by zero.
func ApplyOp(a *big.Rat, op byte, b *big.Rat) (*big.Rat, error) {
	r := new(big.Rat)
	switch op {
	case '+':
		return r.Add(a, b), nil
	case '-':
		return r.Sub(a, b), nil
	case '*':
		return r.Mul(a, b), nil
	case '/':
		if b.Sign() == 0 {
			return nil, ErrDivByZero
		}
		return r.Quo(a, b), nil
	}
	return nil, fmt.Errorf("unknown operator %q", op)
}

// Apply plays a move: both operands must be among the numbers left (twice
// when they are equal), the result must be right, and the numbers the move
// says are left, if it says, must be the numbers left.
func (s Game24State) Apply(m Move) (Game24State, error) {
	i := s.index(m.A, -1)
	j := s.index(m.B, i)
	if i < 0 || j < 0 {
		return s, fmt.Errorf("move %q uses a number that is not left (left: %s)", m.String(), FormatNumbers(s.Nums))
	}
	r, err := ApplyOp(m.A, m.Op, m.B)
	if err != nil {
		return s, fmt.Errorf("move %q: %w", m.String(), err)
	}
	if r.Cmp(m.Result) != 0 {
		return s, fmt.Errorf("move %q: %s %c %s is %s", m.String(), FormatRat(m.A), m.Op, FormatRat(m.B), FormatRat(r))
	}
	next := s.combine(i, j, m.Op, r)
	if m.Left != nil && FormatNumbers(m.Left) != FormatNumbers(next.Nums) {
		return s, fmt.Errorf("move %q: numbers left are %s", m.String(), FormatNumbers(next.Nums))
	}
	return next, nil
}

func (s Game24State) index(v *big.Rat, skip int) int {
	for k, n := range s.Nums {
		if k != skip && n.Cmp(v) == 0 {
			return k
		}
	}
	return -1
}

// combine replaces numbers i and j by r = Nums[i] op Nums[j].
func (s Game24State) combine(i, j int, op byte, r *big.Rat) Game24State {
	var next Game24State
	for k := range s.Nums {
		if k != i && k != j {
			next.Nums = append(next.Nums, s.Nums[k])
			next.Exprs = append(next.Exprs, s.Exprs[k])
		}
	}
	expr := "(" + s.Exprs[i] + " " + string(op) + " " + s.Exprs[j] + ")"
	if len(next.Nums) == 0 {
		expr = s.Exprs[i] + " " + string(op) + " " + s.Exprs[j]
	}
	// Insert in order, keeping Exprs aligned.
	at := sort.Search(len(next.Nums), func(k int) bool { return next.Nums[k].Cmp(r) > 0 })
	next.Nums = append(next.Nums[:at], append([]*big.Rat{r}, next.Nums[at:]...)...)
	next.Exprs = append(next.Exprs[:at], append([]string{expr}, next.Exprs[at:]...)...)
	return next
}

// Moves lists every legal move from s: for each pair of numbers left, their
// sum, product, the larger minus the smaller, and each quotient with a
// non-zero divisor; moves with the same operands and result are listed
// once.
func (s Game24State) Moves() []Move {
	var out []Move
	seen := map[string]bool{}
	for i := 0; i < len(s.Nums); i++ {
		for j := i + 1; j < len(s.Nums); j++ {
			a, b := s.Nums[i], s.Nums[j]
			if a.Cmp(b) < 0 {
				a, b = b, a
			}
			for _, c := range [][2]*big.Rat{{a, b}, {b, a}} {
				for _, op := range []byte{'+', '-', '*', '/'} {
					if (op == '+' || op == '*' || op == '-') && c[0] != a {
						continue
					}
					r, err := ApplyOp(c[0], op, c[1])
					if err != nil {
						continue
					}
					m := Move{A: c[0], B: c[1], Op: op, Result: r}
					next, err := s.Apply(m)
					if err != nil {
						continue
					}
					m.Left = next.Nums
					if k := m.String(); !seen[k] {
						seen[k] = true
						out = append(out, m)
					}
				}
			}
		}
	}
	return out
}

// Solved reports whether s is the single number 24.
func (s Game24State) Solved() bool {
	return len(s.Nums) == 1 && s.Nums[0].Cmp(big.NewRat(24, 1)) == 0
}

// Solvable reports whether the numbers left can still make 24.
func (s Game24State) Solvable() bool { return Solvable24(s.Nums) }

// Solve returns an expression over the original numbers that makes 24 from
// s, trying pairs and operations in the order given by perm (nil: in
// order); perm lets callers find different solutions.
func (s Game24State) Solve(perm func(n int) []int) (string, bool) {
	if len(s.Nums) == 1 {
		return s.Exprs[0], s.Solved()
	}
	if !s.Solvable() {
		return "", false
	}
	type cand struct {
		i, j int
		op   byte
	}
	var cands []cand
	for i := range s.Nums {
		for j := range s.Nums {
			if i == j {
				continue
			}
			for _, op := range []byte{'+', '-', '*', '/'} {
				if (op == '+' || op == '*') && i > j {
					continue
				}
				cands = append(cands, cand{i, j, op})
			}
		}
	}
	order := make([]int, len(cands))
	for k := range order {
		order[k] = k
	}
	if perm != nil {
		order = perm(len(cands))
	}
	for _, k := range order {
		c := cands[k]
		r, err := ApplyOp(s.Nums[c.i], c.op, s.Nums[c.j])
		if err != nil {
			continue
		}
		next := s.combine(c.i, c.j, c.op, r)
		if next.Solvable() {
			return next.Solve(perm)
		}
	}
	return "", false
}

// solvableMemo maps sorted numbers (three or more) to their solvability.
// Keys come from Game of 24 positions, a few dozen per puzzle.
var solvableMemo sync.Map

// Solvable24 reports whether nums can be combined with +, -, * and / into
// exactly 24, using each exactly once. Results for three or more numbers
// are memoised.
func Solvable24(nums []*big.Rat) bool {
	if len(nums) == 0 {
		return false
	}
	if len(nums) <= 2 {
		return solvable(nums) // cheaper than the memo
	}
	sorted := sortRats(nums)
	key := FormatNumbers(sorted)
	if v, ok := solvableMemo.Load(key); ok {
		return v.(bool)
	}
	ok := solvable(sorted)
	solvableMemo.Store(key, ok)
	return ok
}

func solvable(nums []*big.Rat) bool {
	if len(nums) == 1 {
		return nums[0].Cmp(big.NewRat(24, 1)) == 0
	}
	for i := 0; i < len(nums); i++ {
		for j := i + 1; j < len(nums); j++ {
			var rest []*big.Rat
			for k := range nums {
				if k != i && k != j {
					rest = append(rest, nums[k])
				}
			}
			a, b := nums[i], nums[j]
			for _, c := range [][3]any{{a, byte('+'), b}, {a, byte('*'), b}, {a, byte('-'), b}, {b, byte('-'), a}, {a, byte('/'), b}, {b, byte('/'), a}} {
				r, err := ApplyOp(c[0].(*big.Rat), c[1].(byte), c[2].(*big.Rat))
				if err != nil {
					continue
				}
				if Solvable24(append(append([]*big.Rat(nil), rest...), r)) {
					return true
				}
			}
		}
	}
	return false
}

// --- expressions ---

var exprReplacer = strings.NewReplacer("−", "-", "–", "-", `\times`, "*", `\cdot`, "*", `\div`, "/", "×", "*", "÷", "/", "x", "*", "X", "*",
	"·", "*", "⋅", "*", "∗", "*", "∕", "/",
	`\left`, "", `\right`, "", `\,`, "", `\;`, "", `\:`, "", `\!`, "", "[", "(", "]", ")", "{", "(", "}", ")", "$", "")

func cleanExpr(s string) string {
	s = strings.TrimSpace(s)
	if b, ok := core.ExtractBoxed(s); ok {
		s = b
	}
	s = expandFracs(s, 0)
	s = exprReplacer.Replace(s)
	return strings.TrimSpace(eq24.ReplaceAllString(s, ""))
}

// fracCmd is a LaTeX fraction command.
var fracCmd = regexp.MustCompile(`\\[dt]?frac`)

// expandFracs writes each \frac{A}{B} (or \dfrac, \tfrac, \frac12) of s as
// ((A)/(B)), nested fractions included, so that the parser reads a LaTeX
// answer as the division it is. A fraction it cannot read (a missing
// argument, nesting deeper than maxExprDepth) is left as it is, and the
// parser rejects it.
func expandFracs(s string, depth int) string {
	if depth > maxExprDepth || !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for {
		loc := fracCmd.FindStringIndex(s)
		if loc == nil {
			b.WriteString(s)
			return b.String()
		}
		num, rest, ok1 := latexArg(s[loc[1]:])
		den, rest, ok2 := latexArg(rest)
		if !ok1 || !ok2 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:loc[0]])
		b.WriteString("((" + expandFracs(num, depth+1) + ")/(" + expandFracs(den, depth+1) + "))")
		s = rest
	}
}

// latexArg splits the argument of a LaTeX command off s: a {group} with
// balanced braces, or one character ("\frac12").
func latexArg(s string) (arg, rest string, ok bool) {
	s = strings.TrimLeft(s, " ")
	if s == "" {
		return "", s, false
	}
	if s[0] != '{' {
		if s[0] == '}' || s[0] == '\\' {
			return "", s, false
		}
		return s[:1], s[1:], true
	}
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			if depth--; depth == 0 {
				return s[1:i], s[i+1:], true
			}
		}
	}
	return "", s, false
}

type expr struct {
	op   byte // 0 for a number
	num  *big.Rat
	l, r *expr
}

// Bounds of parseExpr. A Game of 24 expression has four numbers and a few
// parentheses; the bounds keep hostile model output (a megabyte of "1+1+…"
// or of parentheses) from costing more than a linear scan.
const (
	maxExprNumbers = 16
	maxExprDepth   = 32
	maxNumberLen   = 64
)

// errTooManyNumbers is parseExpr's error for more than maxExprNumbers
// numbers.
var errTooManyNumbers = fmt.Errorf("expression has more than %d numbers", maxExprNumbers)

// parseExpr parses + - * / over non-negative numbers with parentheses; it
// has no unary minus, as the game has none. White space is ignored.
func parseExpr(s string) (*expr, error) {
	p := &exprParser{s: strings.Join(strings.Fields(s), "")}
	if p.s == "" {
		return nil, errors.New("empty expression")
	}
	e, err := p.sum()
	if err != nil {
		return nil, err
	}
	if p.i != len(p.s) {
		return nil, fmt.Errorf("unexpected %q in expression", text.Clip(p.s[p.i:], 40))
	}
	return e, nil
}

type exprParser struct {
	s       string
	i       int
	numbers int // numbers read so far
	depth   int // open parentheses
}

func (p *exprParser) sum() (*expr, error) {
	l, err := p.product()
	for err == nil && p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
		op := p.s[p.i]
		p.i++
		var r *expr
		if r, err = p.product(); err == nil {
			l = &expr{op: op, l: l, r: r}
		}
	}
	return l, err
}

func (p *exprParser) product() (*expr, error) {
	l, err := p.atom()
	for err == nil && p.i < len(p.s) && (p.s[p.i] == '*' || p.s[p.i] == '/') {
		op := p.s[p.i]
		p.i++
		var r *expr
		if r, err = p.atom(); err == nil {
			l = &expr{op: op, l: l, r: r}
		}
	}
	return l, err
}

func (p *exprParser) atom() (*expr, error) {
	if p.i >= len(p.s) {
		return nil, errors.New("expression ends early")
	}
	if p.s[p.i] == '(' {
		if p.depth++; p.depth > maxExprDepth {
			return nil, fmt.Errorf("expression nests parentheses more than %d deep", maxExprDepth)
		}
		p.i++
		e, err := p.sum()
		p.depth--
		if err != nil {
			return nil, err
		}
		if p.i >= len(p.s) || p.s[p.i] != ')' {
			return nil, errors.New("missing )")
		}
		p.i++
		return e, nil
	}
	j := p.i
	for j < len(p.s) && (p.s[j] >= '0' && p.s[j] <= '9' || p.s[j] == '.') {
		j++
	}
	if j == p.i {
		return nil, fmt.Errorf("unexpected %q in expression", text.Clip(p.s[p.i:], 40))
	}
	if p.numbers++; p.numbers > maxExprNumbers {
		return nil, errTooManyNumbers
	}
	if j-p.i > maxNumberLen {
		return nil, fmt.Errorf("number %q is too long", text.Clip(p.s[p.i:j], 20))
	}
	r, ok := parseRat(p.s[p.i:j])
	if !ok {
		return nil, fmt.Errorf("bad number %q", p.s[p.i:j])
	}
	p.i = j
	return &expr{num: r}, nil
}

func (e *expr) eval() (*big.Rat, error) {
	if e.op == 0 {
		return e.num, nil
	}
	a, err := e.l.eval()
	if err != nil {
		return nil, err
	}
	b, err := e.r.eval()
	if err != nil {
		return nil, err
	}
	return ApplyOp(a, e.op, b)
}

func (e *expr) literals(acc []*big.Rat) []*big.Rat {
	if e.op == 0 {
		return append(acc, e.num)
	}
	return e.r.literals(e.l.literals(acc))
}

func (e *expr) canon() string {
	if e.op == 0 {
		return FormatRat(e.num)
	}
	a, b := e.l.canon(), e.r.canon()
	if (e.op == '+' || e.op == '*') && a > b {
		a, b = b, a
	}
	return "(" + a + string(e.op) + b + ")"
}
