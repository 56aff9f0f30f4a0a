package main

import (
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

var numRE = regexp.MustCompile(`-?\d+`)

// Numbers reads the four numbers of a Game of 24 problem ("4 9 10 13",
// "Use 4, 9, 10 and 13 to make 24").
func Numbers(problem string) ([]int64, error) {
	var out []int64
	for _, m := range numRE.FindAllString(problem, -1) {
		n, err := strconv.ParseInt(m, 10, 64)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	// "... to make 24" names the target after the numbers.
	if len(out) == 5 && out[4] == 24 && strings.Contains(problem, "24") {
		out = out[:4]
	}
	if len(out) != 4 {
		return nil, fmt.Errorf("want 4 numbers, found %d", len(out))
	}
	return out, nil
}

// Check reports whether expr uses exactly nums and evaluates to target.
func Check(nums []int64, expr string, target int) (bool, string) {
	expr = strings.TrimSpace(strings.NewReplacer("×", "*", "÷", "/", "−", "-", `\times`, "*", `\div`, "/", `\cdot`, "*").Replace(expr))
	if i := strings.Index(expr, "="); i >= 0 {
		expr = expr[:i]
	}
	p := &parser{s: expr}
	v, err := p.expr()
	if err == nil {
		if p.skip(); p.i < len(p.s) {
			err = fmt.Errorf("unexpected %q at %d", p.s[p.i:], p.i)
		}
	}
	if err != nil {
		return false, "not an arithmetic expression: " + err.Error()
	}
	used := append([]int64(nil), p.nums...)
	want := append([]int64(nil), nums...)
	sort.Slice(used, func(i, j int) bool { return used[i] < used[j] })
	sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
	if fmt.Sprint(used) != fmt.Sprint(want) {
		return false, fmt.Sprintf("uses %v, must use each of %v once", used, want)
	}
	if v.Cmp(big.NewRat(int64(target), 1)) != 0 {
		return false, fmt.Sprintf("evaluates to %s, not %d", v.RatString(), target)
	}
	return true, fmt.Sprintf("%s = %d", expr, target)
}

// parser is a recursive-descent parser of + - * / and parentheses over
// integers, evaluating with big.Rat as it goes.
type parser struct {
	s     string
	i     int
	depth int
	nums  []int64
}

func (p *parser) skip() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *parser) expr() (*big.Rat, error) {
	v, err := p.term()
	if err != nil {
		return nil, err
	}
	for {
		p.skip()
		if p.i >= len(p.s) || (p.s[p.i] != '+' && p.s[p.i] != '-') {
			return v, nil
		}
		op := p.s[p.i]
		p.i++
		w, err := p.term()
		if err != nil {
			return nil, err
		}
		if op == '+' {
			v = new(big.Rat).Add(v, w)
		} else {
			v = new(big.Rat).Sub(v, w)
		}
	}
}

func (p *parser) term() (*big.Rat, error) {
	v, err := p.factor()
	if err != nil {
		return nil, err
	}
	for {
		p.skip()
		if p.i >= len(p.s) || (p.s[p.i] != '*' && p.s[p.i] != '/') {
			return v, nil
		}
		op := p.s[p.i]
		p.i++
		w, err := p.factor()
		if err != nil {
			return nil, err
		}
		if op == '*' {
			v = new(big.Rat).Mul(v, w)
		} else {
			if w.Sign() == 0 {
				return nil, fmt.Errorf("division by zero")
			}
			v = new(big.Rat).Quo(v, w)
		}
	}
}

func (p *parser) factor() (*big.Rat, error) {
	p.skip()
	if p.i >= len(p.s) {
		return nil, fmt.Errorf("expression ends early")
	}
	switch c := p.s[p.i]; {
	case c == '(':
		if p.depth++; p.depth > 32 {
			return nil, fmt.Errorf("parentheses nested too deep")
		}
		defer func() { p.depth-- }()
		p.i++
		v, err := p.expr()
		if err != nil {
			return nil, err
		}
		p.skip()
		if p.i >= len(p.s) || p.s[p.i] != ')' {
			return nil, fmt.Errorf("missing )")
		}
		p.i++
		return v, nil
	case c >= '0' && c <= '9':
		start := p.i
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		n, err := strconv.ParseInt(p.s[start:p.i], 10, 64)
		if err != nil {
			return nil, err
		}
		p.nums = append(p.nums, n)
		if len(p.nums) > 16 {
			return nil, fmt.Errorf("too many numbers")
		}
		return new(big.Rat).SetInt64(n), nil
	default:
		return nil, fmt.Errorf("unexpected %q", c)
	}
}
