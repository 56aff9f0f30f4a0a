package mathequiv

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
)

// kind is the shape of an answer.
type kind int

const (
	kindText      kind = iota // words, or anything that does not parse
	kindScalar                // one number or expression
	kindOrdered               // tuple, point or interval: (1,2), [3,4)
	kindUnordered             // a list of solutions or a set: 1, -2 or \{1, -2\}
	kindUnion                 // intervals joined by \cup
	kindMatrix                // \begin{pmatrix} ... \end{pmatrix}
	kindEquation              // lhs = rhs, equal up to a nonzero factor
)

// answer is a parsed final answer.
type answer struct {
	kind        kind
	text        string // cleaned text (all kinds), lower-cased for kindText
	expr        expression
	open, close byte
	elems       []answer
	rows, cols  int
}

// parse reads a cleaned answer.
func parse(s string, depth int) answer {
	s = strings.TrimSpace(s)
	a := answer{kind: kindText, text: textKey(s)}
	if s == "" || depth > 8 || len(s) > maxAnswerLen {
		return a
	}
	if parts := splitTop(s, `\cup`); len(parts) > 1 {
		u := answer{kind: kindUnion, text: s}
		for _, p := range parts {
			u.elems = append(u.elems, parse(p, depth+1))
		}
		return u
	}
	if m, ok := parseMatrix(s, depth); ok {
		return m
	}
	if len(s) >= 4 && strings.HasPrefix(s, `\{`) && strings.HasSuffix(s, `\}`) && balanced(s[2:len(s)-2]) {
		return unordered(s, splitTop(s[2:len(s)-2], ","), depth)
	}
	if (s[0] == '(' || s[0] == '[') && (s[len(s)-1] == ')' || s[len(s)-1] == ']') && enclosed(s) {
		if parts := splitTop(s[1:len(s)-1], ","); len(parts) > 1 {
			o := answer{kind: kindOrdered, text: s, open: s[0], close: s[len(s)-1]}
			for _, p := range parts {
				o.elems = append(o.elems, parse(stripAssignment(p), depth+1))
			}
			return o
		}
	}
	if parts := splitTop(s, ","); len(parts) > 1 {
		return unordered(s, parts, depth)
	}
	if pm := expandPM(s); len(pm) > 1 {
		return unordered(s, pm, depth)
	}
	if parts := splitTop(s, "="); len(parts) == 2 {
		l, errL := parseExpr(parts[0])
		r, errR := parseExpr(parts[1])
		if errL == nil && errR == nil && len(union(l.vars, r.vars)) > 0 {
			return answer{kind: kindEquation, text: s, expr: expression{
				root: binNode{'-', l.root, r.root}, vars: union(l.vars, r.vars)}}
		}
		return a
	}
	if isWord(s) {
		return a
	}
	e, err := parseExpr(s)
	if err != nil {
		return a
	}
	return answer{kind: kindScalar, text: s, expr: e}
}

// textKey is the comparison form of an answer taken as text.
func textKey(s string) string {
	s = strings.ToLower(strings.Join(strings.Fields(s), ""))
	return strings.Trim(s, "{}")
}

// isWord reports text made of letters (with spaces, hyphens or
// apostrophes) that has a run of two or more letters, such as "even" or
// "Navin": it must not be read as a product of variables. (So "xy" is
// text, while "2xy" and "p-q" are expressions.)
func isWord(s string) bool {
	run, longest := 0, 0
	for i := 0; i < len(s); i++ {
		switch {
		case isLetter(s[i]):
			run++
			longest = max(longest, run)
		case s[i] == ' ' || s[i] == '-' || s[i] == '\'':
			run = 0
		default:
			return false
		}
	}
	return longest >= 2
}

func unordered(s string, parts []string, depth int) answer {
	u := answer{kind: kindUnordered, text: s}
	for _, p := range parts {
		p = stripAssignment(strings.TrimSpace(p))
		for _, q := range expandPM(p) {
			u.elems = append(u.elems, parse(q, depth+1))
		}
	}
	return u
}

// expandPM turns a \pm b into a+b and a-b (and \mp into a-b, a+b).
func expandPM(s string) []string {
	for _, op := range []string{`\pm`, `\mp`} {
		parts := splitTop(s, op)
		if len(parts) != 2 {
			continue
		}
		a, b := strings.TrimSpace(parts[0]), strings.TrimSpace(parts[1])
		plus, minus := "+", "-"
		if op == `\mp` {
			plus, minus = "-", "+"
		}
		if a == "" {
			return []string{plus + "(" + b + ")", minus + "(" + b + ")"}
		}
		return []string{a + plus + "(" + b + ")", a + minus + "(" + b + ")"}
	}
	return []string{s}
}

func union(a, b []string) []string {
	m := map[string]bool{}
	for _, v := range append(append([]string(nil), a...), b...) {
		m[v] = true
	}
	out := make([]string, 0, len(m))
	for v := range m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// enclosed reports whether the bracket opening s closes at its last
// character (so "(1,2)" is enclosed and "(a+5)(b+2)" is not).
func enclosed(s string) bool {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
			if depth == 0 && i != len(s)-1 {
				return false
			}
		}
	}
	return depth == 0
}

// balanced reports whether brackets in s never close more than opened
// and all close by the end.
func balanced(s string) bool {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
			if depth < 0 {
				return false
			}
		}
	}
	return depth == 0
}

// splitTop splits s at sep outside brackets; a command separator (\cup)
// must not run into a longer command name.
func splitTop(s, sep string) []string {
	var parts []string
	depth, last := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(', '[', '{':
			depth++
			continue
		case ')', ']', '}':
			depth--
			continue
		}
		if depth != 0 || !strings.HasPrefix(s[i:], sep) {
			continue
		}
		if sep[0] == '\\' && isLetterAt(s, i+len(sep)) {
			continue
		}
		if sep == "," && i > 0 && s[i-1] == '\\' {
			continue // \, spacing (already removed by Clean, but be safe)
		}
		parts = append(parts, s[last:i])
		last = i + len(sep)
		i = last - 1
	}
	return append(parts, s[last:])
}

func parseMatrix(s string, depth int) (answer, bool) {
	for _, env := range []string{"pmatrix", "bmatrix", "matrix", "Bmatrix"} {
		begin, end := `\begin{`+env+`}`, `\end{`+env+`}`
		if !strings.HasPrefix(s, begin) || !strings.HasSuffix(s, end) {
			continue
		}
		body := strings.TrimSpace(s[len(begin) : len(s)-len(end)])
		body = strings.TrimSuffix(strings.TrimSpace(body), `\\`)
		rows := strings.Split(body, `\\`)
		m := answer{kind: kindMatrix, text: s, rows: len(rows)}
		for i, r := range rows {
			cells := strings.Split(r, "&")
			if i == 0 {
				m.cols = len(cells)
			} else if len(cells) != m.cols {
				return answer{kind: kindText, text: textKey(s)}, true
			}
			for _, c := range cells {
				m.elems = append(m.elems, parse(strings.TrimSpace(c), depth+1))
			}
		}
		if m.cols == 1 || m.rows == 1 {
			// A vector is the tuple of its entries: (1, 2, 3).
			return answer{kind: kindOrdered, text: s, open: '(', close: ')', elems: m.elems}, true
		}
		return m, true
	}
	return answer{}, false
}

// points are where expressions with variables are compared: three
// assignments of fixed, irrational-looking values to every letter.
const numPoints = 3

func point(k int, vars []string) map[string]complex128 {
	env := make(map[string]complex128, len(vars))
	for _, v := range vars {
		h := fnv.New64a()
		fmt.Fprintf(h, "%s/%d", v, k)
		u := float64(mix(h.Sum64())>>11) / float64(1<<53)
		env[v] = complex(0.6+1.7*u, 0)
	}
	return env
}

// mix is splitmix64's finaliser: it spreads a hash's bits.
func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// values evaluates e at every comparison point (once when it has no
// variables), over the variables vars.
func (e expression) values(vars []string) ([]value, bool) {
	n := numPoints
	if len(vars) == 0 {
		n = 1
	}
	out := make([]value, n)
	for k := 0; k < n; k++ {
		v, err := eval(e.root, point(k, vars))
		if err != nil {
			return nil, false
		}
		out[k] = v
	}
	return out, true
}

// equal compares two parsed answers.
func equal(a, b answer) bool {
	if a.kind != b.kind {
		return false
	}
	switch a.kind {
	case kindText:
		return a.text == b.text
	case kindScalar:
		vars := union(a.expr.vars, b.expr.vars)
		va, okA := a.expr.values(vars)
		vb, okB := b.expr.values(vars)
		if !okA || !okB {
			return textKey(a.text) == textKey(b.text)
		}
		for k := range va {
			if !closeValues(va[k], vb[k]) {
				return false
			}
		}
		return true
	case kindEquation:
		vars := union(a.expr.vars, b.expr.vars)
		va, okA := a.expr.values(vars)
		vb, okB := b.expr.values(vars)
		if !okA || !okB {
			return textKey(a.text) == textKey(b.text)
		}
		ra, okA := ratios(va)
		rb, okB := ratios(vb)
		if !okA || !okB {
			return false
		}
		for k := range ra {
			if !closeValues(ra[k], rb[k]) {
				return false
			}
		}
		return true
	case kindOrdered:
		if a.open != b.open || a.close != b.close || len(a.elems) != len(b.elems) {
			return false
		}
		for i := range a.elems {
			if !equal(a.elems[i], b.elems[i]) {
				return false
			}
		}
		return true
	case kindMatrix:
		if a.rows != b.rows || a.cols != b.cols {
			return false
		}
		for i := range a.elems {
			if !equal(a.elems[i], b.elems[i]) {
				return false
			}
		}
		return true
	case kindUnordered, kindUnion:
		return matchAll(a.elems, b.elems)
	}
	return false
}

// ratios divides an equation's values by its first nonzero one, so that
// equations equal up to a factor compare equal.
func ratios(vs []value) ([]value, bool) {
	for _, d := range vs {
		if d.c != 0 && !isInf(d.c) {
			out := make([]value, len(vs))
			for i, v := range vs {
				out[i] = floatValue(v.c / d.c)
			}
			return out, true
		}
	}
	return nil, false
}

// matchAll reports whether a and b are equal as multisets: a perfect
// matching of equal elements, found by augmenting paths (Kuhn's
// algorithm) among the elements of the same key (Equal implies equal
// keys), so that lists with repeated elements ("1, 1, ..., 1, 2") cost
// polynomial time, not a backtracking search over their orders.
func matchAll(a, b []answer) bool {
	if len(a) != len(b) {
		return false
	}
	byKey := map[string][]int{}
	for j := range b {
		k := key(b[j])
		byKey[k] = append(byKey[k], j)
	}
	cands := make([][]int, len(a))
	for i := range a {
		if cands[i] = byKey[key(a[i])]; len(cands[i]) == 0 {
			return false
		}
	}
	type pair struct{ i, j int }
	memo := map[pair]bool{}
	eq := func(i, j int) bool {
		v, ok := memo[pair{i, j}]
		if !ok {
			v = equal(a[i], b[j])
			memo[pair{i, j}] = v
		}
		return v
	}
	owner := make([]int, len(b)) // owner[j]: the element of a matched to b[j], or -1
	for j := range owner {
		owner[j] = -1
	}
	seen := make([]bool, len(b))
	var augment func(i int) bool
	augment = func(i int) bool {
		for _, j := range cands[i] {
			if seen[j] {
				continue
			}
			seen[j] = true
			if eq(i, j) && (owner[j] < 0 || augment(owner[j])) {
				owner[j] = i
				return true
			}
		}
		return false
	}
	for i := range a {
		// A free equal partner first: lists of equal elements match
		// without a search.
		done := false
		for _, j := range cands[i] {
			if owner[j] < 0 && eq(i, j) {
				owner[j], done = i, true
				break
			}
		}
		if done {
			continue
		}
		clear(seen)
		if !augment(i) {
			return false
		}
	}
	return true
}

// key is the canonical form of a parsed answer.
func key(a answer) string {
	switch a.kind {
	case kindScalar:
		vs, ok := a.expr.values(a.expr.vars)
		if !ok {
			return "t:" + textKey(a.text)
		}
		if len(a.expr.vars) == 0 {
			return valueKey(vs[0])
		}
		parts := make([]string, len(vs))
		for i, v := range vs {
			parts[i] = floatKey(v.c)
		}
		return "f(" + strings.Join(a.expr.vars, ",") + ")=" + strings.Join(parts, ";")
	case kindEquation:
		vs, ok := a.expr.values(a.expr.vars)
		if !ok {
			return "t:" + textKey(a.text)
		}
		rs, ok := ratios(vs)
		if !ok {
			return "eq:0"
		}
		parts := make([]string, len(rs))
		for i, v := range rs {
			parts[i] = floatKey(v.c)
		}
		return "eq(" + strings.Join(a.expr.vars, ",") + ")=" + strings.Join(parts, ";")
	case kindOrdered:
		return string(a.open) + joinKeys(a.elems, false) + string(a.close)
	case kindUnordered:
		return "{" + joinKeys(a.elems, true) + "}"
	case kindUnion:
		return "U{" + joinKeys(a.elems, true) + "}"
	case kindMatrix:
		return "M" + strconv.Itoa(a.rows) + "x" + strconv.Itoa(a.cols) + "[" + joinKeys(a.elems, false) + "]"
	}
	return "t:" + a.text
}

func joinKeys(elems []answer, sorted bool) string {
	ks := make([]string, len(elems))
	for i, e := range elems {
		ks[i] = key(e)
	}
	if sorted {
		sort.Strings(ks)
	}
	return strings.Join(ks, ",")
}

func valueKey(v value) string {
	if v.exact != nil {
		return v.exact.RatString()
	}
	return floatKey(v.c)
}

// floatKey writes a float value, snapping to a nearby small-denominator
// rational (sin(pi/6) is 1/2) and infinities to inf and -inf.
func floatKey(c complex128) string {
	if isInf(c) {
		if real(c) < 0 {
			return "-inf"
		}
		return "inf"
	}
	re := realKey(real(c))
	if math.Abs(imag(c)) <= 1e-12*math.Max(1, math.Abs(real(c))) {
		return re
	}
	return "c(" + re + "," + realKey(imag(c)) + ")"
}

func realKey(x float64) string {
	if math.IsNaN(x) {
		return "nan"
	}
	if r, ok := snap(x); ok {
		return r.RatString()
	}
	return "~" + strconv.FormatFloat(x, 'g', 9, 64)
}

// snap returns the rational with denominator up to 10^4 that x is (within
// 1e-12 relative), found by continued fractions.
func snap(x float64) (*big.Rat, bool) {
	if math.Abs(x) > 1e15 {
		return nil, false
	}
	h0, h1 := big.NewInt(0), big.NewInt(1)
	k0, k1 := big.NewInt(1), big.NewInt(0)
	f := x
	tol := 1e-12 * math.Max(1, math.Abs(x))
	for i := 0; i < 40; i++ {
		a := math.Floor(f)
		ai := big.NewInt(int64(a))
		h0, h1 = h1, new(big.Int).Add(new(big.Int).Mul(ai, h1), h0)
		k0, k1 = k1, new(big.Int).Add(new(big.Int).Mul(ai, k1), k0)
		if k1.Cmp(big.NewInt(10000)) > 0 {
			return nil, false
		}
		r := new(big.Rat).SetFrac(h1, k1)
		rf, _ := r.Float64()
		if math.Abs(rf-x) <= tol {
			return r, true
		}
		frac := f - a
		if frac == 0 {
			return nil, false
		}
		f = 1 / frac
	}
	return nil, false
}
