package mathequiv

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/cmplx"
	"sort"
	"strings"
)

// node is a parsed arithmetic expression.
type node interface{}

type (
	numNode   struct{ r *big.Rat }
	varNode   struct{ name string }
	constNode struct{ name string } // pi, i, inf
	negNode   struct{ x node }
	binNode   struct {
		op   byte // + - * / ^
		a, b node
	}
	fnNode struct {
		name string
		x    node
		base node // \log_b
	}
	rootNode  struct{ x, n node } // n nil: square root
	factNode  struct{ x node }
	absNode   struct{ x node }
	binomNode struct{ n, k node }
)

// expression is a parsed scalar with its free variables.
type expression struct {
	root node
	vars []string // sorted
}

var errSyntax = errors.New("not an arithmetic expression")

// parseExpr parses a cleaned LaTeX or plain arithmetic expression: numbers,
// one-letter variables, + - * / ^, \cdot, \times, \div, implicit products,
// \frac, \sqrt (and \sqrt[n]), \binom, \pi, i, \infty, n!, |x|, and the
// usual functions (\sin ... \ln, \log, \log_b, \exp).
func parseExpr(s string) (expression, error) {
	p := &parser{s: s, vars: map[string]bool{}}
	root, err := p.expr()
	if err != nil {
		return expression{}, err
	}
	p.skip()
	if p.i != len(p.s) {
		return expression{}, fmt.Errorf("%w: unexpected %q", errSyntax, p.s[p.i:])
	}
	vars := make([]string, 0, len(p.vars))
	for v := range p.vars {
		vars = append(vars, v)
	}
	sort.Strings(vars)
	return expression{root: root, vars: vars}, nil
}

type parser struct {
	s     string
	i     int
	vars  map[string]bool
	depth int
}

func (p *parser) skip() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *parser) peek() byte {
	p.skip()
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *parser) eat(c byte) bool {
	if p.peek() == c {
		p.i++
		return true
	}
	return false
}

// command returns the name of the command at the cursor (without the
// backslash), without consuming it.
func (p *parser) command() string {
	p.skip()
	if p.i >= len(p.s) || p.s[p.i] != '\\' {
		return ""
	}
	j := p.i + 1
	for j < len(p.s) && isLetter(p.s[j]) {
		j++
	}
	if j == p.i+1 && j < len(p.s) {
		j++ // \{ and friends
	}
	return p.s[p.i+1 : j]
}

func (p *parser) eatCommand(name string) bool {
	if p.command() == name {
		p.i += 1 + len(name)
		return true
	}
	return false
}

func (p *parser) expr() (node, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > 64 {
		return nil, fmt.Errorf("%w: nested too deeply", errSyntax)
	}
	x, err := p.unaryTerm()
	if err != nil {
		return nil, err
	}
	for {
		var op byte
		switch {
		case p.eat('+'):
			op = '+'
		case p.eat('-'):
			op = '-'
		default:
			return x, nil
		}
		y, err := p.unaryTerm()
		if err != nil {
			return nil, err
		}
		x = binNode{op, x, y}
	}
}

// unaryTerm is a term with optional leading signs: -2x is -(2x).
func (p *parser) unaryTerm() (node, error) {
	switch {
	case p.eat('-'):
		x, err := p.unaryTerm()
		if err != nil {
			return nil, err
		}
		return negNode{x}, nil
	case p.eat('+'):
		return p.unaryTerm()
	}
	return p.term()
}

func (p *parser) term() (node, error) {
	x, err := p.power()
	if err != nil {
		return nil, err
	}
	for {
		var op byte
		switch {
		case p.eat('*'), p.eatCommand("cdot"), p.eatCommand("times"), p.eatCommand("ast"):
			op = '*'
		case p.eat('/'), p.eatCommand("div"):
			op = '/'
		case p.startsAtom():
			if c := p.peek(); isDigit(c) || c == '.' {
				return nil, fmt.Errorf("%w: a number right after another factor", errSyntax)
			}
			op = '*'
		default:
			return x, nil
		}
		var y node
		if op != '*' || !p.startsAtom() {
			// After an explicit operator a sign is allowed: 2 \cdot -3.
			y, err = p.signedPower()
		} else {
			y, err = p.power()
		}
		if err != nil {
			return nil, err
		}
		x = binNode{op, x, y}
	}
}

func (p *parser) signedPower() (node, error) {
	if p.eat('-') {
		x, err := p.signedPower()
		if err != nil {
			return nil, err
		}
		return negNode{x}, nil
	}
	p.eat('+')
	return p.power()
}

// startsAtom reports whether the cursor is at the start of a factor that
// may follow another without an operator.
func (p *parser) startsAtom() bool {
	c := p.peek()
	switch {
	case c == 0:
		return false
	case isDigit(c), c == '.', isLetter(c), c == '(', c == '{':
		return true
	case c == '\\':
		switch p.command() {
		case "cdot", "times", "div", "ast", "cup", "pm", "mp", "}", "{", "\\":
			return false
		}
		return true
	}
	return false
}

func (p *parser) power() (node, error) {
	x, err := p.postfix()
	if err != nil {
		return nil, err
	}
	for p.eat('^') {
		e, err := p.arg(true)
		if err != nil {
			return nil, err
		}
		x = binNode{'^', x, e}
		for p.eat('!') {
			x = factNode{x}
		}
	}
	return x, nil
}

func (p *parser) postfix() (node, error) {
	x, err := p.atom()
	if err != nil {
		return nil, err
	}
	for p.peek() == '!' {
		p.i++
		x = factNode{x}
	}
	return x, nil
}

// arg reads a macro argument: {expr}, (expr), one digit, one letter, or a
// command atom; with signed, a leading minus (x^-1).
func (p *parser) arg(signed bool) (node, error) {
	c := p.peek()
	switch {
	case c == '{':
		p.i++
		return p.group('}')
	case c == '(':
		return p.atom()
	case isDigit(c):
		p.i++
		return numNode{new(big.Rat).SetInt64(int64(c - '0'))}, nil
	case isLetter(c):
		p.i++
		return p.letter(c), nil
	case c == '\\':
		return p.atom()
	case c == '-' && signed:
		p.i++
		x, err := p.arg(false)
		if err != nil {
			return nil, err
		}
		return negNode{x}, nil
	}
	return nil, fmt.Errorf("%w: missing argument", errSyntax)
}

// group reads an expression and the byte close that ends it (its opening
// byte already read).
func (p *parser) group(close byte) (node, error) {
	x, err := p.expr()
	if err != nil {
		return nil, err
	}
	if !p.eat(close) {
		return nil, fmt.Errorf("%w: missing %c", errSyntax, close)
	}
	return x, nil
}

// twoArgs reads the two arguments of \frac or \binom.
func (p *parser) twoArgs() (node, node, error) {
	a, err := p.arg(false)
	if err != nil {
		return nil, nil, err
	}
	b, err := p.arg(false)
	if err != nil {
		return nil, nil, err
	}
	return a, b, nil
}

func (p *parser) letter(c byte) node {
	if c == 'i' {
		return constNode{"i"}
	}
	p.vars[string(c)] = true
	return varNode{string(c)}
}

var functions = map[string]bool{
	"sin": true, "cos": true, "tan": true, "cot": true, "sec": true, "csc": true,
	"arcsin": true, "arccos": true, "arctan": true, "sinh": true, "cosh": true, "tanh": true,
	"ln": true, "log": true, "exp": true,
}

func (p *parser) atom() (node, error) {
	c := p.peek()
	switch {
	case c == '(':
		p.i++
		return p.group(')')
	case c == '{':
		return p.arg(false)
	case c == '|':
		p.i++
		x, err := p.group('|')
		if err != nil {
			return nil, err
		}
		return absNode{x}, nil
	case isDigit(c) || c == '.':
		return p.number()
	case isLetter(c):
		if strings.HasPrefix(p.s[p.i:], "sqrt") && p.i+4 < len(p.s) && (p.s[p.i+4] == '(' || p.s[p.i+4] == '{') {
			p.i += 4
			x, err := p.atom()
			if err != nil {
				return nil, err
			}
			return rootNode{x: x}, nil
		}
		p.i++
		return p.letter(c), nil
	case c == '\\':
		name := p.command()
		p.i += 1 + len(name)
		switch {
		case name == "frac":
			a, b, err := p.twoArgs()
			if err != nil {
				return nil, err
			}
			return binNode{'/', a, b}, nil
		case name == "binom":
			a, b, err := p.twoArgs()
			if err != nil {
				return nil, err
			}
			return binomNode{a, b}, nil
		case name == "sqrt":
			var n node
			if p.eat('[') {
				var err error
				if n, err = p.group(']'); err != nil {
					return nil, err
				}
			}
			x, err := p.arg(false)
			if err != nil {
				return nil, err
			}
			return rootNode{x: x, n: n}, nil
		case name == "pi":
			return constNode{"pi"}, nil
		case name == "infty":
			return constNode{"inf"}, nil
		case name == "imath":
			return constNode{"i"}, nil
		case functions[name]:
			return p.function(name)
		}
		return nil, fmt.Errorf("%w: command \\%s", errSyntax, name)
	}
	return nil, fmt.Errorf("%w: unexpected %q", errSyntax, string(c))
}

func (p *parser) function(name string) (node, error) {
	var base, pow node
	var err error
	for i := 0; i < 2; i++ {
		switch {
		case p.eat('_') && name == "log":
			if base, err = p.arg(false); err != nil {
				return nil, err
			}
		case p.eat('^'):
			if pow, err = p.arg(true); err != nil {
				return nil, err
			}
		}
	}
	var x node
	switch p.peek() {
	case '(', '{':
		x, err = p.atom()
	default:
		x, err = p.power()
	}
	if err != nil {
		return nil, err
	}
	var f node = fnNode{name: name, x: x, base: base}
	if pow != nil {
		f = binNode{'^', f, pow}
	}
	return f, nil
}

// number reads a decimal literal; an integer followed by \frac of two
// integers is a mixed number (1\frac{4}{5} is 9/5).
func (p *parser) number() (node, error) {
	start := p.i
	for p.i < len(p.s) && isDigit(p.s[p.i]) {
		p.i++
	}
	integer := true
	if p.i < len(p.s) && p.s[p.i] == '.' {
		integer = false
		p.i++
		for p.i < len(p.s) && isDigit(p.s[p.i]) {
			p.i++
		}
	}
	lit := p.s[start:p.i]
	if lit == "." {
		return nil, fmt.Errorf("%w: a lone point", errSyntax)
	}
	r, ok := new(big.Rat).SetString(strings.TrimSuffix(lit, "."))
	if !ok {
		return nil, fmt.Errorf("%w: bad number %q", errSyntax, lit)
	}
	if integer {
		if w, n, d, ok := mixedFraction(p.s[p.i:]); ok {
			p.i += w
			f := new(big.Rat).SetFrac(n, d)
			return numNode{r.Add(r, f)}, nil
		}
	}
	return numNode{r}, nil
}

// mixedFraction reads \frac{n}{d} of two integer literals at the start of
// s (after optional spaces).
func mixedFraction(s string) (width int, n, d *big.Int, ok bool) {
	t := strings.TrimLeft(s, " ")
	skipped := len(s) - len(t)
	if !strings.HasPrefix(t, `\frac{`) {
		return 0, nil, nil, false
	}
	rest := t[len(`\frac`):]
	var parts [2]*big.Int
	pos := 0
	for k := 0; k < 2; k++ {
		if pos >= len(rest) || rest[pos] != '{' {
			return 0, nil, nil, false
		}
		j := strings.IndexByte(rest[pos:], '}')
		if j < 0 {
			return 0, nil, nil, false
		}
		lit := rest[pos+1 : pos+j]
		if !allDigits(lit) {
			return 0, nil, nil, false
		}
		parts[k], _ = new(big.Int).SetString(lit, 10)
		pos += j + 1
	}
	if parts[1].Sign() == 0 {
		return 0, nil, nil, false
	}
	return skipped + len(`\frac`) + pos, parts[0], parts[1], true
}

// value is an evaluated expression: exact when it is a known rational,
// else a complex float.
type value struct {
	exact *big.Rat
	c     complex128
}

func exactValue(r *big.Rat) value {
	f, _ := r.Float64()
	return value{exact: r, c: complex(f, 0)}
}

func floatValue(c complex128) value { return value{c: c} }

var errEval = errors.New("cannot evaluate")

// maxBits bounds exact arithmetic: beyond it values go on as floats.
const maxBits = 4096

func eval(n node, env map[string]complex128) (value, error) {
	switch x := n.(type) {
	case numNode:
		return exactValue(x.r), nil
	case varNode:
		v, ok := env[x.name]
		if !ok {
			return value{}, fmt.Errorf("%w: free variable %s", errEval, x.name)
		}
		return floatValue(v), nil
	case constNode:
		switch x.name {
		case "pi":
			return floatValue(complex(math.Pi, 0)), nil
		case "i":
			return floatValue(complex(0, 1)), nil
		case "inf":
			return floatValue(complex(math.Inf(1), 0)), nil
		}
	case negNode:
		v, err := eval(x.x, env)
		if err != nil {
			return value{}, err
		}
		if v.exact != nil {
			return exactValue(new(big.Rat).Neg(v.exact)), nil
		}
		if isInf(v.c) {
			return floatValue(complex(-real(v.c), 0)), nil
		}
		return floatValue(-v.c), nil
	case binNode:
		a, err := eval(x.a, env)
		if err != nil {
			return value{}, err
		}
		b, err := eval(x.b, env)
		if err != nil {
			return value{}, err
		}
		return binary(x.op, a, b)
	case fnNode:
		v, err := eval(x.x, env)
		if err != nil {
			return value{}, err
		}
		return function(x.name, x.base, v, env)
	case rootNode:
		v, err := eval(x.x, env)
		if err != nil {
			return value{}, err
		}
		deg := exactValue(big.NewRat(2, 1))
		if x.n != nil {
			if deg, err = eval(x.n, env); err != nil {
				return value{}, err
			}
		}
		return root(v, deg)
	case factNode:
		v, err := eval(x.x, env)
		if err != nil {
			return value{}, err
		}
		if v.exact == nil || !v.exact.IsInt() || v.exact.Sign() < 0 || v.exact.Num().Cmp(big.NewInt(1000)) > 0 {
			return value{}, fmt.Errorf("%w: factorial of %v", errEval, v.c)
		}
		return exactValue(new(big.Rat).SetInt(new(big.Int).MulRange(1, v.exact.Num().Int64()))), nil
	case absNode:
		v, err := eval(x.x, env)
		if err != nil {
			return value{}, err
		}
		if v.exact != nil {
			return exactValue(new(big.Rat).Abs(v.exact)), nil
		}
		return floatValue(complex(cmplx.Abs(v.c), 0)), nil
	case binomNode:
		a, err := eval(x.n, env)
		if err != nil {
			return value{}, err
		}
		b, err := eval(x.k, env)
		if err != nil {
			return value{}, err
		}
		if a.exact == nil || b.exact == nil || !a.exact.IsInt() || !b.exact.IsInt() || a.exact.Sign() < 0 || b.exact.Sign() < 0 ||
			a.exact.Num().Cmp(big.NewInt(100000)) > 0 {
			return value{}, fmt.Errorf("%w: binomial of non-integers", errEval)
		}
		return exactValue(new(big.Rat).SetInt(new(big.Int).Binomial(a.exact.Num().Int64(), b.exact.Num().Int64()))), nil
	}
	return value{}, fmt.Errorf("%w: %T", errEval, n)
}

func isInf(c complex128) bool { return math.IsInf(real(c), 0) || math.IsInf(imag(c), 0) }

func binary(op byte, a, b value) (value, error) {
	if isInf(a.c) || isInf(b.c) {
		// Only signs of infinities are compared; arithmetic on them is not
		// an answer form we need.
		if op == '-' && !isInf(b.c) || op == '+' && !isInf(b.c) {
			return a, nil
		}
		return value{}, fmt.Errorf("%w: arithmetic with infinity", errEval)
	}
	if a.exact != nil && b.exact != nil {
		r := new(big.Rat)
		switch op {
		case '+':
			return exactValue(r.Add(a.exact, b.exact)), nil
		case '-':
			return exactValue(r.Sub(a.exact, b.exact)), nil
		case '*':
			return exactValue(r.Mul(a.exact, b.exact)), nil
		case '/':
			if b.exact.Sign() == 0 {
				return value{}, fmt.Errorf("%w: division by zero", errEval)
			}
			return exactValue(r.Quo(a.exact, b.exact)), nil
		case '^':
			if v, ok := exactPow(a.exact, b.exact); ok {
				return v, nil
			}
		}
	}
	switch op {
	case '+':
		return floatValue(a.c + b.c), nil
	case '-':
		return floatValue(a.c - b.c), nil
	case '*':
		return floatValue(a.c * b.c), nil
	case '/':
		if b.c == 0 {
			return value{}, fmt.Errorf("%w: division by zero", errEval)
		}
		return floatValue(a.c / b.c), nil
	case '^':
		if a.c == 0 && real(b.c) <= 0 {
			return value{}, fmt.Errorf("%w: 0 to a non-positive power", errEval)
		}
		// A real base to a real power with an odd-denominator rational
		// exponent stays real: (-8)^(1/3) = -2.
		if imag(a.c) == 0 && imag(b.c) == 0 && real(a.c) < 0 && b.exact != nil && b.exact.Denom().Bit(0) == 1 {
			m := math.Pow(-real(a.c), real(b.c))
			if b.exact.Num().Bit(0) == 1 {
				m = -m
			}
			return floatValue(complex(m, 0)), nil
		}
		if imag(a.c) == 0 && imag(b.c) == 0 && real(a.c) > 0 {
			return floatValue(complex(math.Pow(real(a.c), real(b.c)), 0)), nil
		}
		return floatValue(cmplx.Pow(a.c, b.c)), nil
	}
	return value{}, fmt.Errorf("%w: operator %c", errEval, op)
}

// exactPow computes base^exp exactly when exp is an integer, or a
// rational p/q whose q-th root of base is rational (8^(2/3) = 4).
func exactPow(base, exp *big.Rat) (value, bool) {
	if exp.Num().BitLen() > 16 || exp.Denom().BitLen() > 8 {
		return value{}, false
	}
	p, q := exp.Num().Int64(), exp.Denom().Int64()
	b := new(big.Rat).Set(base)
	if q != 1 {
		r, ok := ratRoot(b, q)
		if !ok {
			return value{}, false
		}
		b = r
	}
	if b.Sign() == 0 && p < 0 {
		return value{}, false
	}
	neg := p < 0
	if neg {
		p = -p
	}
	if int64(b.Num().BitLen()+b.Denom().BitLen())*p > maxBits {
		return value{}, false
	}
	num := new(big.Int).Exp(b.Num(), big.NewInt(p), nil)
	den := new(big.Int).Exp(b.Denom(), big.NewInt(p), nil)
	r := new(big.Rat).SetFrac(num, den)
	if neg {
		r.Inv(r)
	}
	return exactValue(r), true
}

// ratRoot returns the rational q-th root of r when there is one (a
// negative r only for odd q).
func ratRoot(r *big.Rat, q int64) (*big.Rat, bool) {
	if r.Sign() < 0 && q%2 == 0 {
		return nil, false
	}
	n, ok1 := intRoot(new(big.Int).Abs(r.Num()), q)
	d, ok2 := intRoot(r.Denom(), q)
	if !ok1 || !ok2 {
		return nil, false
	}
	out := new(big.Rat).SetFrac(n, d)
	if r.Sign() < 0 {
		out.Neg(out)
	}
	return out, true
}

// intRoot returns the exact q-th root of x >= 0, if it is an integer.
func intRoot(x *big.Int, q int64) (*big.Int, bool) {
	if x.Sign() == 0 || x.Cmp(big.NewInt(1)) == 0 {
		return new(big.Int).Set(x), true
	}
	if q == 2 {
		s := new(big.Int).Sqrt(x)
		return s, new(big.Int).Mul(s, s).Cmp(x) == 0
	}
	f, _ := new(big.Float).SetInt(x).Float64()
	guess := math.Round(math.Pow(f, 1/float64(q)))
	if math.IsInf(guess, 0) || guess > 1e15 {
		return nil, false
	}
	for d := -1.0; d <= 1; d++ {
		g := big.NewInt(int64(guess + d))
		if g.Sign() <= 0 {
			continue
		}
		if new(big.Int).Exp(g, big.NewInt(q), nil).Cmp(x) == 0 {
			return g, true
		}
	}
	return nil, false
}

func root(v, deg value) (value, error) {
	if deg.exact != nil && deg.exact.Sign() == 0 {
		return value{}, fmt.Errorf("%w: zeroth root", errEval)
	}
	if deg.exact != nil && deg.exact.IsInt() && v.exact != nil {
		if r, ok := ratRoot(v.exact, deg.exact.Num().Int64()); ok && deg.exact.Num().BitLen() < 16 {
			return exactValue(r), nil
		}
	}
	// Odd roots of negative reals are real.
	if deg.exact != nil && deg.exact.IsInt() && deg.exact.Num().Bit(0) == 1 && imag(v.c) == 0 && real(v.c) < 0 {
		return floatValue(complex(-math.Pow(-real(v.c), 1/real(deg.c)), 0)), nil
	}
	if imag(v.c) == 0 && real(v.c) >= 0 && imag(deg.c) == 0 {
		return floatValue(complex(math.Pow(real(v.c), 1/real(deg.c)), 0)), nil
	}
	return floatValue(cmplx.Pow(v.c, 1/deg.c)), nil
}

func function(name string, baseNode node, v value, env map[string]complex128) (value, error) {
	x := v.c
	var out complex128
	switch name {
	case "sin":
		out = cmplx.Sin(x)
	case "cos":
		out = cmplx.Cos(x)
	case "tan":
		out = cmplx.Tan(x)
	case "cot":
		out = cmplx.Cot(x)
	case "sec":
		out = 1 / cmplx.Cos(x)
	case "csc":
		out = 1 / cmplx.Sin(x)
	case "arcsin":
		out = cmplx.Asin(x)
	case "arccos":
		out = cmplx.Acos(x)
	case "arctan":
		out = cmplx.Atan(x)
	case "sinh":
		out = cmplx.Sinh(x)
	case "cosh":
		out = cmplx.Cosh(x)
	case "tanh":
		out = cmplx.Tanh(x)
	case "exp":
		out = cmplx.Exp(x)
	case "ln":
		if x == 0 {
			return value{}, fmt.Errorf("%w: log of 0", errEval)
		}
		out = cmplx.Log(x)
	case "log":
		if x == 0 {
			return value{}, fmt.Errorf("%w: log of 0", errEval)
		}
		base := complex(10, 0)
		if baseNode != nil {
			b, err := eval(baseNode, env)
			if err != nil {
				return value{}, err
			}
			base = b.c
		}
		lb := cmplx.Log(base)
		if lb == 0 {
			return value{}, fmt.Errorf("%w: log base 1", errEval)
		}
		out = cmplx.Log(x) / lb
	default:
		return value{}, fmt.Errorf("%w: function %s", errEval, name)
	}
	if cmplx.IsNaN(out) {
		return value{}, fmt.Errorf("%w: %s out of its domain", errEval, name)
	}
	return floatValue(out), nil
}

// close reports whether two values are equal: exactly for two rationals;
// a rational and a float when the float is that rational (sin(pi/6) is
// 1/2), as Canonical snaps it, so that a decimal close to an irrational
// value (1.4142135624 for \sqrt{2}) is not it; else within a relative
// 1e-9.
func closeValues(a, b value) bool {
	if a.exact != nil && b.exact != nil {
		return a.exact.Cmp(b.exact) == 0
	}
	if a.exact != nil || b.exact != nil {
		e, f := a.exact, b.c
		if e == nil {
			e, f = b.exact, a.c
		}
		if isInf(f) || math.Abs(imag(f)) > 1e-12*math.Max(1, math.Abs(real(f))) {
			return false
		}
		r, ok := snap(real(f))
		return ok && r.Cmp(e) == 0
	}
	if isInf(a.c) || isInf(b.c) {
		return isInf(a.c) && isInf(b.c) && math.Signbit(real(a.c)) == math.Signbit(real(b.c)) && imag(a.c) == 0 && imag(b.c) == 0
	}
	if cmplx.IsNaN(a.c) || cmplx.IsNaN(b.c) {
		return false
	}
	scale := math.Max(1, math.Max(cmplx.Abs(a.c), cmplx.Abs(b.c)))
	return cmplx.Abs(a.c-b.c) <= 1e-9*scale
}
