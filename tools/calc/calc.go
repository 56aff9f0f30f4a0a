// Package calc is Ponder's exact calculator: arithmetic on big rationals
// (math/big), so 0.1+0.2 is exactly 3/10 and 2^100 has all its 31 digits.
// It is offered to policies as the tool "calc".
//
//	v, err := calc.Eval("(1/3 + 1/6) * 2^10", nil) // 512
//	fmt.Println(calc.Format(v))                    // 512
//
// Expressions have numbers (integers, decimals and scientific notation,
// all read exactly), + - * / (also × ÷), ^ or ** (right-associative, binding
// tighter than a leading minus: -2^2 = -4), % (remainder with the sign of
// the divisor, as in Python), // (floor division), postfix ! (factorial;
// adjacent marks are the multifactorial, so n!! is the double factorial
// 7·5·3·1 and (n!)! the factorial of a factorial), parentheses, and
// functions that have exact results: abs, sign, floor, ceil, round (half
// away from zero, not to even as Python's), trunc, sqrt and cbrt and
// root(x, n) (when the root is rational), isqrt, gcd, lcm, factorial, comb
// (also binomial, choose), perm, min, max, mod, numerator, denominator.
// Results larger than Options.MaxBits (ErrTooLarge), or so near zero that
// their denominator is (ErrTooSmall), and the exponents and factorials
// that would make them, are refused before they are computed. Sizes are
// of fractions in lowest terms: factors that cancel are not too large.
package calc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"sync"
	"unicode"

	"github.com/ponder-rlm/ponder/core"
)

// Defaults of Options.
const (
	DefaultMaxBits = 1 << 20 // about 315,000 decimal digits
	DefaultMaxLen  = 10000
	maxDepth       = 200
)

// Options bound what an expression may ask for. The zero value means the
// defaults.
type Options struct {
	// MaxBits bounds the size of every intermediate numerator and
	// denominator, in lowest terms (default 2^20 bits).
	MaxBits int
	// MaxLen bounds the expression's length in bytes (default 10,000).
	MaxLen int
}

func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.MaxBits <= 0 {
		c.MaxBits = DefaultMaxBits
	}
	if c.MaxLen <= 0 {
		c.MaxLen = DefaultMaxLen
	}
	return c
}

// Errors wrapped by Eval.
var (
	ErrSyntax    = errors.New("syntax error")
	ErrDivByZero = errors.New("division by zero")
	ErrTooLarge  = errors.New("result too large")
	// ErrTooSmall is a value so near zero that its exact fraction's
	// denominator is over the bound (10^-400000): not a result too large.
	ErrTooSmall     = errors.New("result too small to hold exactly")
	ErrNotExact     = errors.New("no exact result")
	ErrDomain       = errors.New("argument out of domain")
	ErrUnknownIdent = errors.New("unknown name")
)

// Eval evaluates expr exactly.
func Eval(expr string, opts *Options) (*big.Rat, error) {
	return EvalContext(context.Background(), expr, opts)
}

// EvalContext is Eval that stops, with ctx's error, soon after ctx is done:
// between operations, between the steps of one (the GCDs of a sum or a
// product of fractions, each of two numbers of at most MaxBits: up to
// about a second at the default) and within long root computations. An
// expression within the limits can still take seconds (a 1024th root of a
// number of 2^20 bits), so callers with a deadline should use it.
func EvalContext(ctx context.Context, expr string, opts *Options) (*big.Rat, error) {
	o := opts.withDefaults()
	if len(expr) > o.MaxLen {
		return nil, fmt.Errorf("%w: the expression has %d bytes, more than the %d allowed", ErrTooLarge, len(expr), o.MaxLen)
	}
	toks, err := lex(expr)
	if err != nil {
		return nil, err
	}
	p := &parser{ctx: ctx, toks: toks, maxBits: o.MaxBits}
	v, err := p.sum()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, fmt.Errorf("%w: unexpected %q at offset %d", ErrSyntax, t.text, t.pos)
	}
	return v, nil
}

// brief writes v for an error message: exactly when it is short, else its
// first and last digits and how many there are, so that a message about
// a number of 300,000 digits stays a line long.
func brief(v *big.Rat) string {
	s := Format(v)
	if len(s) <= 60 {
		return s
	}
	digits := len(s)
	if s[0] == '-' {
		digits--
	}
	if !v.IsInt() {
		return fmt.Sprintf("%s…%s (%d characters)", s[:24], s[len(s)-12:], len(s))
	}
	return fmt.Sprintf("%s…%s (%d digits)", s[:24], s[len(s)-12:], digits)
}

// Format writes v exactly: an integer, or a fraction p/q.
func Format(v *big.Rat) string {
	if v.IsInt() {
		return v.Num().String()
	}
	return v.RatString()
}

// Decimal writes v in decimal with up to digits significant fraction
// digits, and reports whether that is exact.
func Decimal(v *big.Rat, digits int) (string, bool) {
	if v.IsInt() {
		return v.Num().String(), true
	}
	// A fraction in lowest terms has a finite decimal expansion iff its
	// denominator has no prime factors but 2 and 5; it is written out
	// when that takes at most maxExactDigits digits. The fives are divided
	// out one at a time only up to that many: a denominator of 5^450000
	// (1e-300000 has one) took that many divisions of a million-bit
	// number, 40 s that ignored the call's deadline.
	const maxExactDigits = 1000
	d := new(big.Int).Set(v.Denom())
	twos := int(d.TrailingZeroBits())
	d.Rsh(d, uint(twos))
	fives := 0
	five, m := big.NewInt(5), new(big.Int)
	for twos <= maxExactDigits && fives <= maxExactDigits {
		q, r := new(big.Int).QuoRem(d, five, m)
		if r.Sign() != 0 {
			break
		}
		d = q
		fives++
	}
	small := belowSciLimit(v)
	if n := max(twos, fives); n <= maxExactDigits && d.Cmp(big.NewInt(1)) == 0 {
		s := strings.TrimRight(strings.TrimRight(v.FloatString(n), "0"), ".")
		if small {
			s = scientificOf(s)
		}
		return s, true
	}
	if small {
		return scientific(v, max(digits, 1))
	}
	// Significant digits: shift past the leading zeros of a small value
	// (at most sciZeros of them; its float64 is not 0).
	lead := 0
	abs := new(big.Rat).Abs(v)
	if abs.Cmp(big.NewRat(1, 1)) < 0 && abs.Sign() != 0 {
		f, _ := abs.Float64()
		lead = int(-math.Floor(math.Log10(f))) - 1
	}
	s := v.FloatString(digits + max(lead, 0))
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s, false
}

// A value whose decimal would start with more than sciZeros zeros after
// the point is written in scientific notation: 1/3^600000 was "≈ 0" (its
// float64 is 0, so the leading zeros were guessed at 300), and 300 zeros
// before the digits are unreadable anyway.
const sciZeros = 20

// belowSciLimit reports whether 0 < |v| < 10^-sciZeros.
func belowSciLimit(v *big.Rat) bool {
	if v.Sign() == 0 {
		return false
	}
	n := new(big.Int).Abs(v.Num())
	n.Mul(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(sciZeros), nil))
	return n.Cmp(v.Denom()) < 0
}

// scientificOf rewrites a decimal 0.000ddd (what FloatString writes of a
// small value, exactly) as d.dde-N.
func scientificOf(s string) string {
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	frac := strings.TrimPrefix(s, "0.")
	digits := strings.TrimLeft(frac, "0")
	exp := -(len(frac) - len(digits) + 1)
	return sign + mantissa(digits) + "e" + fmt.Sprint(exp)
}

// mantissa writes the digits d… as d.…, without trailing zeros.
func mantissa(digits string) string {
	if rest := strings.TrimRight(digits[1:], "0"); rest != "" {
		return digits[:1] + "." + rest
	}
	return digits[:1]
}

// scientific writes v ≠ 0 as d.ddde-N with sig significant digits,
// rounded half up, and reports whether that is exact. It divides
// integers once or twice: a Rat's arithmetic would reduce fractions of a
// million bits.
func scientific(v *big.Rat, sig int) (string, bool) {
	num, den := new(big.Int).Abs(v.Num()), v.Denom()
	// 10^e ≤ |v| < 10^(e+1); the bit lengths give e to within one.
	e := int(math.Floor(float64(num.BitLen()-den.BitLen()) * math.Log10(2)))
	lo := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(sig-1)), nil)
	hi := new(big.Int).Mul(lo, big.NewInt(10))
	ten := big.NewInt(10)
	var q, r big.Int
	for {
		// q = |v|·10^(sig-1-e), sig digits when e is right.
		k := sig - 1 - e
		p := new(big.Int).Exp(ten, big.NewInt(int64(abs(k))), nil)
		n, d := new(big.Int).Set(num), new(big.Int).Set(den)
		if k >= 0 {
			n.Mul(n, p)
		} else {
			d.Mul(d, p)
		}
		q.QuoRem(n, d, &r)
		switch {
		case q.Cmp(hi) >= 0:
			e++
			continue
		case q.Cmp(lo) < 0:
			e--
			continue
		}
		exact := r.Sign() == 0
		if r.Lsh(&r, 1).Cmp(d) >= 0 {
			q.Add(&q, big.NewInt(1))
			if q.Cmp(hi) == 0 {
				q.Set(lo)
				e++
			}
		}
		sign := ""
		if v.Sign() < 0 {
			sign = "-"
		}
		return sign + mantissa(q.String()) + "e" + fmt.Sprint(e), exact
	}
}

// --- lexer ---

type tokKind int

const (
	tEOF tokKind = iota
	tNum
	tIdent
	tOp
	tLParen
	tRParen
	tComma
)

type token struct {
	kind tokKind
	text string
	pos  int
	num  *big.Rat
}

func lex(s string) ([]token, error) {
	var out []token
	rs := []rune(s)
	// byte offsets for messages
	off := make([]int, len(rs)+1)
	{
		b := 0
		for i, r := range rs {
			off[i] = b
			b += len(string(r))
		}
		off[len(rs)] = b
	}
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
			i++
		case r >= '0' && r <= '9' || r == '.':
			j := i
			for j < len(rs) && (rs[j] >= '0' && rs[j] <= '9' || rs[j] == '.' || rs[j] == '_') {
				j++
			}
			if j < len(rs) && (rs[j] == 'e' || rs[j] == 'E') {
				k := j + 1
				if k < len(rs) && (rs[k] == '+' || rs[k] == '-') {
					k++
				}
				if k < len(rs) && rs[k] >= '0' && rs[k] <= '9' {
					// Python allows underscores in the exponent too
					// (1e1_0); parseNumber checks where they are.
					for k < len(rs) && (rs[k] >= '0' && rs[k] <= '9' || rs[k] == '_') {
						k++
					}
					j = k
				}
			}
			text := string(rs[i:j])
			v, err := parseNumber(text)
			if errors.Is(err, ErrTooLarge) || errors.Is(err, ErrTooSmall) {
				return nil, fmt.Errorf("%w: number %q at offset %d", err, text, off[i])
			}
			if errors.Is(err, errUnderscore) {
				return nil, fmt.Errorf("%w: bad number %q at offset %d: %v", ErrSyntax, text, off[i], err)
			}
			if err != nil {
				return nil, fmt.Errorf("%w: bad number %q at offset %d", ErrSyntax, text, off[i])
			}
			out = append(out, token{kind: tNum, text: text, pos: off[i], num: v})
			i = j
		case unicode.IsLetter(r) || r == '_':
			j := i
			for j < len(rs) && (unicode.IsLetter(rs[j]) || unicode.IsDigit(rs[j]) || rs[j] == '_') {
				j++
			}
			out = append(out, token{kind: tIdent, text: strings.ToLower(string(rs[i:j])), pos: off[i]})
			i = j
		case r == '(':
			out = append(out, token{kind: tLParen, text: "(", pos: off[i]})
			i++
		case r == ')':
			out = append(out, token{kind: tRParen, text: ")", pos: off[i]})
			i++
		case r == ',':
			out = append(out, token{kind: tComma, text: ",", pos: off[i]})
			i++
		case r == '*' && i+1 < len(rs) && rs[i+1] == '*':
			out = append(out, token{kind: tOp, text: "^", pos: off[i]})
			i += 2
		case r == '/' && i+1 < len(rs) && rs[i+1] == '/':
			out = append(out, token{kind: tOp, text: "//", pos: off[i]})
			i += 2
		case r == '!':
			// Adjacent marks are one operator: n!! is the double
			// factorial, n!!! the triple (multifactorial).
			j := i
			for j < len(rs) && rs[j] == '!' {
				j++
			}
			out = append(out, token{kind: tOp, text: string(rs[i:j]), pos: off[i]})
			i = j
		case strings.ContainsRune("+-*/^%", r):
			out = append(out, token{kind: tOp, text: string(r), pos: off[i]})
			i++
		case r == '×' || r == '·':
			out = append(out, token{kind: tOp, text: "*", pos: off[i]})
			i++
		case r == '÷':
			out = append(out, token{kind: tOp, text: "/", pos: off[i]})
			i++
		case r == '−' || r == '–':
			out = append(out, token{kind: tOp, text: "-", pos: off[i]})
			i++
		default:
			return nil, fmt.Errorf("%w: unexpected %q at offset %d", ErrSyntax, string(r), off[i])
		}
	}
	out = append(out, token{kind: tEOF, text: "end of expression", pos: off[len(rs)]})
	return out, nil
}

// errExponent and errNegExponent refuse a number's decimal exponent past
// ±100000 (a 10^100000 is 332,000 bits; the cap on any value is 2^20
// bits): 1e-200000 is too small to hold exactly, not too large.
var (
	errExponent    = fmt.Errorf("%w: its exponent must be between -100000 and 100000", ErrTooLarge)
	errNegExponent = fmt.Errorf("%w: its exponent must be between -100000 and 100000", ErrTooSmall)
)

// errUnderscore is a number with an underscore that is not between two
// digits: Python, whose syntax calc follows for them, refuses 1_000_,
// 1__0, 1_.5 and 1e_5, and so does calc rather than guess what was meant.
var errUnderscore = errors.New("an underscore goes between two digits, as in 1_000_000")

func parseNumber(text string) (*big.Rat, error) {
	for i := 0; i < len(text); i++ {
		if text[i] == '_' && (i == 0 || i == len(text)-1 || !isDigit(text[i-1]) || !isDigit(text[i+1])) {
			return nil, errUnderscore
		}
	}
	t := strings.ReplaceAll(text, "_", "")
	if strings.Count(t, ".") > 1 || t == "." {
		return nil, ErrSyntax
	}
	mant, exp := t, ""
	if i := strings.IndexAny(t, "eE"); i >= 0 {
		mant, exp = t[:i], t[i+1:]
	}
	v, ok := new(big.Rat).SetString(mant)
	if !ok {
		return nil, ErrSyntax
	}
	if exp != "" {
		bad := errExponent
		if strings.HasPrefix(exp, "-") {
			bad = errNegExponent
		}
		var e int
		if _, err := fmt.Sscan(exp, &e); err != nil {
			if _, ok := new(big.Int).SetString(strings.TrimPrefix(exp, "+"), 10); ok {
				return nil, bad
			}
			return nil, ErrSyntax
		}
		if e > 100000 || e < -100000 {
			return nil, bad
		}
		p := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(e))), nil)
		if e >= 0 {
			v.Mul(v, new(big.Rat).SetInt(p))
		} else {
			v.Quo(v, new(big.Rat).SetInt(p))
		}
	}
	return v, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func abs(i int) int {
	if i < 0 {
		return -i
	}
	return i
}

// --- parser ---

type parser struct {
	ctx     context.Context
	toks    []token
	i       int
	depth   int
	maxBits int
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) isOp(s string) bool {
	t := p.peek()
	return t.kind == tOp && t.text == s
}

// isFactorial reports whether the next token is a run of ! marks.
func (p *parser) isFactorial() bool {
	t := p.peek()
	return t.kind == tOp && strings.HasPrefix(t.text, "!")
}

func (p *parser) check(v *big.Rat) (*big.Rat, error) {
	if err := p.ctx.Err(); err != nil {
		return nil, err
	}
	if v.Num().BitLen() > p.maxBits || v.Denom().BitLen() > p.maxBits {
		return nil, refuse(tiny(v), p.maxBits)
	}
	return v, nil
}

// tiny reports whether 0 < |v| < 1: a value whose size is in its
// denominator.
func tiny(v *big.Rat) bool {
	return v.Sign() != 0 && v.Num().CmpAbs(v.Denom()) < 0
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return fmt.Errorf("%w: nested more than %d deep", ErrTooLarge, maxDepth)
	}
	return nil
}

func (p *parser) sum() (*big.Rat, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	v, err := p.product()
	if err != nil {
		return nil, err
	}
	for p.isOp("+") || p.isOp("-") {
		op := p.next().text
		w, err := p.product()
		if err != nil {
			return nil, err
		}
		if v, err = add(p.ctx, v, w, op == "-", p.maxBits); err != nil {
			return nil, err
		}
		if v, err = p.check(v); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (p *parser) product() (*big.Rat, error) {
	v, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.isOp("*") || p.isOp("/") || p.isOp("%") || p.isOp("//") {
		op := p.next()
		w, err := p.unary()
		if err != nil {
			return nil, err
		}
		switch op.text {
		case "*":
			// Sized once reduced: factors that cancel are not too large.
			if v, err = mul(p.ctx, v, w, p.maxBits); err != nil {
				return nil, err
			}
		case "/":
			if w.Sign() == 0 {
				return nil, fmt.Errorf("%w at offset %d", ErrDivByZero, op.pos)
			}
			if v, err = mul(p.ctx, v, inverse(w), p.maxBits); err != nil {
				return nil, err
			}
		case "%":
			if v, err = mod(p.ctx, v, w); err != nil {
				return nil, fmt.Errorf("%w at offset %d", err, op.pos)
			}
		case "//":
			if w.Sign() == 0 {
				return nil, fmt.Errorf("%w at offset %d", ErrDivByZero, op.pos)
			}
			v = new(big.Rat).SetInt(floorQuo(v, w))
		}
		if v, err = p.check(v); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (p *parser) unary() (*big.Rat, error) {
	if p.isOp("-") || p.isOp("+") {
		op := p.next().text
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer func() { p.depth-- }()
		v, err := p.unary()
		if err != nil {
			return nil, err
		}
		if op == "-" {
			return new(big.Rat).Neg(v), nil
		}
		return v, nil
	}
	return p.power()
}

func (p *parser) power() (*big.Rat, error) {
	base, err := p.postfix()
	if err != nil {
		return nil, err
	}
	if !p.isOp("^") {
		return base, nil
	}
	op := p.next()
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	exp, err := p.unary() // right-associative; allows 2^-1
	if err != nil {
		return nil, err
	}
	v, err := pow(p.ctx, base, exp, p.maxBits)
	if err != nil {
		return nil, fmt.Errorf("%w (the ^ at offset %d)", err, op.pos)
	}
	return p.check(v)
}

func (p *parser) postfix() (*big.Rat, error) {
	v, err := p.atom()
	if err != nil {
		return nil, err
	}
	for p.isFactorial() {
		if err := p.ctx.Err(); err != nil {
			return nil, err
		}
		op := p.next()
		if v, err = multifactorial(v, len(op.text), p.maxBits); err != nil {
			return nil, fmt.Errorf("%w (the %s at offset %d)", err, op.text, op.pos)
		}
	}
	return v, nil
}

func (p *parser) atom() (*big.Rat, error) {
	t := p.next()
	switch t.kind {
	case tNum:
		return p.check(t.num)
	case tLParen:
		v, err := p.sum()
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRParen {
			return nil, fmt.Errorf("%w: want ) at offset %d, got %q", ErrSyntax, c.pos, c.text)
		}
		return v, nil
	case tIdent:
		if p.peek().kind != tLParen {
			switch t.text {
			case "pi", "e", "tau", "phi", "inf", "nan":
				return nil, fmt.Errorf("%w: %s is irrational or not a number; calc only computes exact values", ErrNotExact, t.text)
			}
			return nil, fmt.Errorf("%w %q at offset %d (functions are called like gcd(12, 18))", ErrUnknownIdent, t.text, t.pos)
		}
		p.next()
		var args []*big.Rat
		if p.peek().kind == tRParen {
			p.next()
		} else {
			for {
				a, err := p.sum()
				if err != nil {
					return nil, err
				}
				args = append(args, a)
				c := p.next()
				if c.kind == tRParen {
					break
				}
				if c.kind != tComma {
					return nil, fmt.Errorf("%w: want , or ) at offset %d, got %q", ErrSyntax, c.pos, c.text)
				}
			}
		}
		v, err := call(p.ctx, t.text, args, p.maxBits)
		if err != nil {
			return nil, fmt.Errorf("%s at offset %d: %w", t.text, t.pos, err)
		}
		return p.check(v)
	}
	return nil, fmt.Errorf("%w: unexpected %q at offset %d", ErrSyntax, t.text, t.pos)
}

// --- arithmetic ---

func floor(v *big.Rat) *big.Int {
	// Euclidean division floors for a positive divisor, and a Rat's
	// denominator is always positive.
	q, _ := new(big.Int).DivMod(v.Num(), v.Denom(), new(big.Int))
	return q
}

func ceil(v *big.Rat) *big.Int {
	f := floor(v)
	if !v.IsInt() {
		f.Add(f, big.NewInt(1))
	}
	return f
}

func pow(ctx context.Context, base, exp *big.Rat, maxBits int) (*big.Rat, error) {
	if !exp.IsInt() {
		// base^(p/q) = (q-th root of base)^p when the root is rational.
		q := exp.Denom()
		if !q.IsInt64() || q.Int64() > 1024 {
			return nil, fmt.Errorf("%w: root of degree %s", ErrNotExact, q)
		}
		r, err := root(ctx, base, int(q.Int64()))
		if err != nil {
			return nil, err
		}
		return pow(ctx, r, new(big.Rat).SetInt(exp.Num()), maxBits)
	}
	e := exp.Num()
	if base.Sign() == 0 {
		if e.Sign() < 0 {
			return nil, fmt.Errorf("%w: 0 to a negative power", ErrDivByZero)
		}
		if e.Sign() == 0 {
			return big.NewRat(1, 1), nil
		}
		return new(big.Rat), nil
	}
	one := big.NewInt(1)
	if base.Num().CmpAbs(one) == 0 && base.Denom().Cmp(one) == 0 {
		if base.Sign() > 0 || e.Bit(0) == 0 {
			return big.NewRat(1, 1), nil
		}
		return big.NewRat(-1, 1), nil
	}
	bits := max(base.Num().BitLen(), base.Denom().BitLen())
	ae := new(big.Int).Abs(e)
	// |base|^|e| has about bits*|e| bits (bits-1 at least); refuse early.
	if !ae.IsInt64() || (int64(bits)-1)*ae.Int64() > int64(maxBits) || ae.Int64() > int64(maxBits) {
		// |base|^e is below 1 when |base| < 1 and e > 0 or the other
		// way round: 10^-400000 is tiny, not large.
		if tiny(base) == (e.Sign() > 0) {
			return nil, fmt.Errorf("%w: the power's denominator has more than %d bits", ErrTooSmall, maxBits)
		}
		return nil, fmt.Errorf("%w: the power has more than %d bits", ErrTooLarge, maxBits)
	}
	num := new(big.Int).Exp(base.Num(), ae, nil)
	den := new(big.Int).Exp(base.Denom(), ae, nil)
	if e.Sign() < 0 {
		num, den = den, num
		if den.Sign() < 0 {
			num.Neg(num)
			den.Neg(den)
		}
	}
	// Powers of coprime numbers are coprime: no GCD to reduce them.
	return fraction(num, den), nil
}

// iroot returns the n-th root of x >= 0 when it is an integer. It stops
// with ctx's error when ctx is done.
func iroot(ctx context.Context, x *big.Int, n int) (*big.Int, bool, error) {
	if x.Sign() == 0 || n == 1 {
		return new(big.Int).Set(x), true, nil
	}
	if n == 2 {
		r := new(big.Int).Sqrt(x)
		return r, new(big.Int).Mul(r, r).Cmp(x) == 0, nil
	}
	// Newton's method from an upper bound.
	r := new(big.Int).Lsh(big.NewInt(1), uint(x.BitLen()/n+1))
	bn := big.NewInt(int64(n))
	bn1 := big.NewInt(int64(n - 1))
	for {
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		// next = ((n-1) r + x / r^(n-1)) / n
		t := new(big.Int).Exp(r, bn1, nil)
		t.Quo(x, t)
		t.Add(t, new(big.Int).Mul(bn1, r))
		t.Quo(t, bn)
		if t.Cmp(r) >= 0 {
			break
		}
		r = t
	}
	return r, new(big.Int).Exp(r, bn, nil).Cmp(x) == 0, nil
}

func root(ctx context.Context, v *big.Rat, n int) (*big.Rat, error) {
	if n < 1 {
		return nil, fmt.Errorf("%w: root of degree %d", ErrDomain, n)
	}
	neg := v.Sign() < 0
	if neg && n%2 == 0 {
		return nil, fmt.Errorf("%w: even root of a negative number", ErrDomain)
	}
	a := new(big.Rat).Abs(v)
	num, ok1, err := iroot(ctx, a.Num(), n)
	if err != nil {
		return nil, err
	}
	den, ok2 := num, true
	if ok1 {
		if den, ok2, err = iroot(ctx, a.Denom(), n); err != nil {
			return nil, err
		}
	}
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("%w: the root of degree %d of %s is irrational", ErrNotExact, n, brief(v))
	}
	// Roots of coprime numbers are coprime: no GCD to reduce them.
	r := fraction(num, den)
	if neg {
		r.Neg(r)
	}
	return r, nil
}

func toInt(v *big.Rat, what string) (*big.Int, error) {
	if !v.IsInt() {
		return nil, fmt.Errorf("%w: %s must be an integer, got %s", ErrDomain, what, brief(v))
	}
	return v.Num(), nil
}

func smallInt(v *big.Rat, what string, lo, hi int64) (int64, error) {
	i, err := toInt(v, what)
	if err != nil {
		return 0, err
	}
	if !i.IsInt64() || i.Int64() < lo || i.Int64() > hi {
		kind := ErrTooLarge
		if i.Cmp(big.NewInt(lo)) < 0 {
			kind = ErrDomain // root(16, 0) is not a result too large
		}
		return 0, fmt.Errorf("%w: %s must be between %d and %d, got %s", kind, what, lo, hi, brief(new(big.Rat).SetInt(i)))
	}
	return i.Int64(), nil
}

// factorialLimits holds factorialLimit's answers by maxBits: computing one
// takes tens of thousands of logarithms, which each ! of "1!!!…!" paid
// again (seconds for one expression of 10,000 bytes).
var factorialLimits sync.Map

// factorialLimit is the largest n whose n! fits in maxBits (log2 n! < n log2 n).
func factorialLimit(maxBits int) int64 {
	if n, ok := factorialLimits.Load(maxBits); ok {
		return n.(int64)
	}
	n := int64(1)
	for lg := 0.0; lg < float64(maxBits); n++ {
		lg += math.Log2(float64(n + 1))
	}
	factorialLimits.Store(maxBits, n-1)
	return n - 1
}

func factorial(v *big.Rat, maxBits int) (*big.Rat, error) {
	if v.Sign() < 0 {
		return nil, fmt.Errorf("%w: factorial of a negative number", ErrDomain)
	}
	n, err := smallInt(v, "the factorial's argument", 0, factorialLimit(maxBits))
	if err != nil {
		return nil, err
	}
	if n < 2 {
		return big.NewRat(1, 1), nil
	}
	return new(big.Rat).SetInt(new(big.Int).MulRange(1, n)), nil
}

// multifactorial is v followed by k ! marks: v! for one; for more, the
// product v(v-k)(v-2k)… of the terms above 0 (7!! = 7·5·3·1 = 105, 8!! =
// 8·6·4·2, 10!!! = 10·7·4·1; 0 and 1 give 1), as mathematicians read
// n!!, not (n!)!, which is written with parentheses.
func multifactorial(v *big.Rat, k, maxBits int) (*big.Rat, error) {
	if k == 1 {
		return factorial(v, maxBits)
	}
	marks := strings.Repeat("!", k)
	if v.Sign() < 0 {
		return nil, fmt.Errorf("%w: %s of a negative number", ErrDomain, marks)
	}
	i, err := toInt(v, "the argument of "+marks)
	if err != nil {
		return nil, err
	}
	if !i.IsInt64() {
		return nil, fmt.Errorf("%w: the argument of %s must be at most %d, got %s", ErrTooLarge, marks, int64(math.MaxInt64), brief(v))
	}
	n, step := i.Int64(), int64(k)
	if n < 2 {
		return big.NewRat(1, 1), nil
	}
	terms := n / step
	if n%step != 0 {
		terms++
	}
	// The product is step^terms · Γ(n/step+1) / Γ(n/step-terms+1):
	// refuse it before computing it when it is over maxBits.
	x := float64(n) / float64(step)
	hi, _ := math.Lgamma(x + 1)
	lo, _ := math.Lgamma(x - float64(terms) + 1)
	if bits := (float64(terms)*math.Log(float64(step)) + hi - lo) / math.Ln2; bits > float64(maxBits)+1 {
		return nil, fmt.Errorf("%w: %d%s has about %.0f bits, more than %d", ErrTooLarge, n, marks, bits, maxBits)
	}
	out := stepProduct(n, terms, step)
	if out.BitLen() > maxBits {
		return nil, fmt.Errorf("%w: %d%s has more than %d bits", ErrTooLarge, n, marks, maxBits)
	}
	return new(big.Rat).SetInt(out), nil
}

// stepProduct is hi(hi-step)(hi-2·step)… of count terms, all above 0,
// multiplied in halves so that the big products are of like sizes.
func stepProduct(hi, count, step int64) *big.Int {
	if count <= 16 {
		out := big.NewInt(1)
		var t big.Int
		for j := range count {
			out.Mul(out, t.SetInt64(hi-j*step))
		}
		return out
	}
	half := count / 2
	left := stepProduct(hi, half, step)
	return left.Mul(left, stepProduct(hi-half*step, count-half, step))
}

func call(ctx context.Context, name string, args []*big.Rat, maxBits int) (*big.Rat, error) {
	want := func(n int) error {
		if len(args) != n {
			return fmt.Errorf("%w: takes %d argument(s), got %d", ErrSyntax, n, len(args))
		}
		return nil
	}
	switch name {
	case "abs":
		if err := want(1); err != nil {
			return nil, err
		}
		return new(big.Rat).Abs(args[0]), nil
	case "sign", "sgn":
		if err := want(1); err != nil {
			return nil, err
		}
		return big.NewRat(int64(args[0].Sign()), 1), nil
	case "floor", "ceil", "trunc", "round":
		if err := want(1); err != nil {
			return nil, err
		}
		v := args[0]
		var r *big.Int
		switch name {
		case "floor":
			r = floor(v)
		case "ceil":
			r = ceil(v)
		case "trunc":
			r = new(big.Int).Quo(v.Num(), v.Denom())
		case "round": // half away from zero: floor((2|p| + q) / 2q)
			n := new(big.Int).Lsh(new(big.Int).Abs(v.Num()), 1)
			n.Add(n, v.Denom())
			r = n.Quo(n, new(big.Int).Lsh(v.Denom(), 1))
			if v.Sign() < 0 {
				r.Neg(r)
			}
		}
		return new(big.Rat).SetInt(r), nil
	case "sqrt", "cbrt":
		if err := want(1); err != nil {
			return nil, err
		}
		n := 2
		if name == "cbrt" {
			n = 3
		}
		return root(ctx, args[0], n)
	case "root":
		if err := want(2); err != nil {
			return nil, err
		}
		n, err := smallInt(args[1], "the root's degree", 1, 1024)
		if err != nil {
			return nil, err
		}
		return root(ctx, args[0], int(n))
	case "isqrt":
		if err := want(1); err != nil {
			return nil, err
		}
		i, err := toInt(args[0], "isqrt's argument")
		if err != nil {
			return nil, err
		}
		if i.Sign() < 0 {
			return nil, fmt.Errorf("%w: isqrt of a negative number", ErrDomain)
		}
		return new(big.Rat).SetInt(new(big.Int).Sqrt(i)), nil
	case "gcd", "lcm":
		if len(args) < 1 {
			return nil, fmt.Errorf("%w: takes at least one argument", ErrSyntax)
		}
		acc, err := toInt(args[0], name+"'s arguments")
		if err != nil {
			return nil, err
		}
		acc = new(big.Int).Abs(acc)
		for _, a := range args[1:] {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			b, err := toInt(a, name+"'s arguments")
			if err != nil {
				return nil, err
			}
			b = new(big.Int).Abs(b)
			g := new(big.Int).GCD(nil, nil, acc, b)
			if name == "gcd" {
				acc = g
			} else if g.Sign() == 0 {
				acc = new(big.Int)
			} else {
				acc = new(big.Int).Mul(new(big.Int).Quo(acc, g), b)
				if acc.BitLen() > maxBits {
					return nil, fmt.Errorf("%w: the result has more than %d bits", ErrTooLarge, maxBits)
				}
			}
		}
		return new(big.Rat).SetInt(acc), nil
	case "factorial", "fact":
		if err := want(1); err != nil {
			return nil, err
		}
		return factorial(args[0], maxBits)
	case "comb", "binomial", "choose", "perm":
		if err := want(2); err != nil {
			return nil, err
		}
		n, err := toInt(args[0], "n")
		if err != nil {
			return nil, err
		}
		k, err := toInt(args[1], "k")
		if err != nil {
			return nil, err
		}
		if n.Sign() < 0 || k.Sign() < 0 {
			return nil, fmt.Errorf("%w: n and k must not be negative", ErrDomain)
		}
		if k.Cmp(n) > 0 {
			return new(big.Rat), nil
		}
		if !n.IsInt64() {
			return nil, fmt.Errorf("%w: n is too large", ErrTooLarge)
		}
		nn, kk := n.Int64(), k.Int64()
		if name != "perm" && kk > nn-kk {
			kk = nn - kk
		}
		// The result has at most kk*log2(nn) bits.
		if float64(kk)*math.Log2(float64(nn)+1) > float64(maxBits) {
			return nil, fmt.Errorf("%w: the result has more than %d bits", ErrTooLarge, maxBits)
		}
		if name == "perm" {
			if kk == 0 {
				return big.NewRat(1, 1), nil
			}
			return new(big.Rat).SetInt(new(big.Int).MulRange(nn-kk+1, nn)), nil
		}
		return new(big.Rat).SetInt(new(big.Int).Binomial(nn, kk)), nil
	case "min", "max":
		if len(args) < 1 {
			return nil, fmt.Errorf("%w: takes at least one argument", ErrSyntax)
		}
		best := args[0]
		for _, a := range args[1:] {
			c := a.Cmp(best)
			if (name == "min" && c < 0) || (name == "max" && c > 0) {
				best = a
			}
		}
		return best, nil
	case "mod":
		if err := want(2); err != nil {
			return nil, err
		}
		return mod(ctx, args[0], args[1])
	case "numerator", "denominator":
		if err := want(1); err != nil {
			return nil, err
		}
		if name == "numerator" {
			return new(big.Rat).SetInt(args[0].Num()), nil
		}
		return new(big.Rat).SetInt(args[0].Denom()), nil
	case "sin", "cos", "tan", "log", "ln", "exp", "log10", "log2", "asin", "acos", "atan":
		return nil, fmt.Errorf("%w: %s is not exact on rationals; use the python tool for floating point", ErrNotExact, name)
	}
	return nil, fmt.Errorf("%w: function %q (known: abs, sign, floor, ceil, round, trunc, sqrt, cbrt, root, isqrt, gcd, lcm, factorial, comb, perm, min, max, mod, numerator, denominator)", ErrUnknownIdent, name)
}

// --- the tool ---

// Tool is the "calc" tool.
type Tool struct {
	opts Options
}

var _ core.Tool = (*Tool)(nil)

// New returns the calc tool.
func New(opts *Options) *Tool { return &Tool{opts: opts.withDefaults()} }

// Schema is the JSON Schema of the tool's arguments.
const Schema = `{"type":"object","properties":{"expression":{"type":"string","minLength":1,` +
	`"description":"arithmetic expression, e.g. (3/4 + 2^10) * 7 or comb(52, 5)"}},` +
	`"required":["expression"],"additionalProperties":false}`

// Spec implements core.Tool.
func (t *Tool) Spec() core.ToolSpec {
	return core.ToolSpec{
		Name: "calc",
		Description: "Exact calculator on big rationals: + - * / ^ % // ! (n!! is the double factorial) and parentheses, " +
			"with abs, floor, ceil, round (half away from zero), sqrt, root, gcd, lcm, factorial, comb, perm, min, max, mod. " +
			"Results are exact integers or fractions p/q.",
		Schema: json.RawMessage(Schema),
	}
}

// Result is the structured result of a calc call.
type Result struct {
	Exact   string `json:"exact"`
	Decimal string `json:"decimal"`
	// IsExactDecimal says whether Decimal is exact (not rounded).
	IsExactDecimal bool `json:"decimal_exact"`
	IsInteger      bool `json:"integer"`
}

// Call implements core.Tool.
func (t *Tool) Call(ctx context.Context, args json.RawMessage) (core.ToolResult, error) {
	var a struct {
		Expression string `json:"expression"`
	}
	if err := json.Unmarshal(args, &a); err != nil {
		return core.ToolResult{Text: "calc: arguments: " + err.Error(), IsError: true}, nil
	}
	if err := ctx.Err(); err != nil {
		return core.ToolResult{}, err
	}
	v, err := EvalContext(ctx, a.Expression, &t.opts)
	if err != nil {
		if ctx.Err() != nil {
			return core.ToolResult{}, ctx.Err()
		}
		return core.ToolResult{Text: "calc: " + err.Error(), IsError: true}, nil
	}
	r := Result{Exact: Format(v), IsInteger: v.IsInt()}
	r.Decimal, r.IsExactDecimal = Decimal(v, 20)
	text := r.Exact
	if !r.IsInteger {
		sep := " ≈ "
		if r.IsExactDecimal {
			sep = " = "
		}
		text += sep + r.Decimal
	}
	return core.ToolResult{Text: text, Structured: r}, nil
}
