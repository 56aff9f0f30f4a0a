package calc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestEval(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr, want string
	}{
		{"1+2*3", "7"},
		{"(1+2)*3", "9"},
		{"0.1+0.2", "3/10"},
		{"2^100", "1267650600228229401496703205376"},
		{"2**100", "1267650600228229401496703205376"},
		{"2^3^2", "512"},
		{"-2^2", "-4"},
		{"(-2)^2", "4"},
		{"2^-2", "1/4"},
		{"(2/3)^-3", "27/8"},
		{"4^(1/2)", "2"},
		{"(27/8)^(2/3)", "9/4"},
		{"1/3 + 1/6", "1/2"},
		{"7 % 3", "1"},
		{"-7 % 3", "2"},
		{"7 % -3", "-2"},
		{"7 // 2", "3"},
		{"-7 // 2", "-4"},
		{"5!", "120"},
		// Adjacent marks are the multifactorial; parentheses or a space
		// apply ! again.
		{"3!!", "3"},
		{"7!!", "105"},
		{"8!!", "384"},
		{"10!!!", "280"},
		{"0!!", "1"},
		{"1!!", "1"},
		{"2!!!", "2"},
		{"5!!!!!", "5"},
		{"-7!!", "-105"},
		{"(3!)!", "720"},
		{"3! !", "720"},
		{"2^3!!", "8"},
		{"1e-100000 * 1e100000", "1"},
		{"factorial(20)", "2432902008176640000"},
		{"comb(52, 5)", "2598960"},
		{"binomial(10, 0)", "1"},
		{"perm(5, 2)", "20"},
		{"comb(3, 5)", "0"},
		{"gcd(12, 18, 27)", "3"},
		{"lcm(4, 6, 10)", "60"},
		{"sqrt(144/25)", "12/5"},
		{"cbrt(-27)", "-3"},
		{"root(1024, 10)", "2"},
		{"isqrt(99)", "9"},
		{"floor(-7/2)", "-4"},
		{"ceil(-7/2)", "-3"},
		{"round(5/2)", "3"},
		{"round(-5/2)", "-3"},
		{"trunc(-7/2)", "-3"},
		{"abs(-3/4)", "3/4"},
		{"min(3, 1/2, 2)", "1/2"},
		{"max(3, 1/2, 2)", "3"},
		{"mod(10, 4)", "2"},
		{"numerator(6/8)", "3"},
		{"denominator(6/8)", "4"},
		{"1.5e3", "1500"},
		{"2.5E-1", "1/4"},
		{"1_000_000 * 3", "3000000"},
		{"1_0.2_5e1_0", "102500000000"},
		{"0.000_1", "1/10000"},
		{"12 × 3 ÷ 4 − 1", "8"},
		{"  ( ( 1 ) ) ", "1"},
		{"sign(-5)", "-1"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			v, err := Eval(tt.expr, nil)
			if err != nil {
				t.Fatalf("Eval(%q): %v", tt.expr, err)
			}
			if got := Format(v); got != tt.want {
				t.Errorf("Eval(%q) = %s, want %s", tt.expr, got, tt.want)
			}
		})
	}
}

func TestEvalErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr string
		want error
		msg  string
	}{
		{"1/0", ErrDivByZero, "offset 1"},
		{"5 % 0", ErrDivByZero, ""},
		{"0^-1", ErrDivByZero, ""},
		{"2^(10^9)", ErrTooLarge, "bits"},
		{"10^10^10", ErrTooLarge, ""},
		{"99999999!", ErrTooLarge, ""},
		{"99999999!!", ErrTooLarge, "99999999!! has about"},
		{"(10^30)!!", ErrTooLarge, "at most"},
		{"(-3)!!", ErrDomain, "!! of a negative number"},
		{"(7/2)!!", ErrDomain, "integer"},
		// Values near zero are not too large: their denominator is.
		{"10^-400000", ErrTooSmall, "the power's denominator has more than 1048576 bits (the ^ at offset 2)"},
		{"(1/2)^2000000", ErrTooSmall, "denominator"},
		{"(-10)^-400001", ErrTooSmall, "denominator"},
		{"(2/3)^-2000000", ErrTooLarge, "the power has"},
		{"1/3^600000 / 3^600000", ErrTooSmall, "an intermediate result's denominator"},
		{"1/10^400000", ErrTooLarge, "the power has"},
		{"1e-200000", ErrTooSmall, "result too small to hold exactly: its exponent must be between -100000 and 100000"},
		{"factorial(-1)", ErrDomain, ""},
		{"factorial(1/2)", ErrDomain, "integer"},
		{"sqrt(2)", ErrNotExact, "irrational"},
		{"sqrt(-4)", ErrDomain, ""},
		{"root(16, 0)", ErrDomain, "degree must be between 1 and 1024, got 0"},
		{"root(16, -2)", ErrDomain, "degree"},
		{"root(16, 2000)", ErrTooLarge, "degree"},
		{"2^(1/2)", ErrNotExact, ""},
		{"pi * 2", ErrNotExact, "exact"},
		{"sin(1)", ErrNotExact, "python"},
		{"foo(1)", ErrUnknownIdent, "known"},
		{"x + 1", ErrUnknownIdent, ""},
		{"1 +", ErrSyntax, "end of expression"},
		{"(1 + 2", ErrSyntax, "want )"},
		{"1 2", ErrSyntax, "unexpected"},
		{"1..2", ErrSyntax, "bad number"},
		// Underscores only between digits, as Python reads numbers.
		{"1_000_", ErrSyntax, `bad number "1_000_" at offset 0: an underscore goes between two digits`},
		{"1__0", ErrSyntax, `bad number "1__0"`},
		{"2 + 1_.5", ErrSyntax, `bad number "1_.5" at offset 4`},
		{"1._5", ErrSyntax, "between two digits"},
		{"1e_5", ErrSyntax, `unexpected "e_5"`},
		{"1e5_", ErrSyntax, "between two digits"},
		{"1_e5", ErrSyntax, "between two digits"},
		{"1e1000000000", ErrTooLarge, "exponent must be between -100000 and 100000"},
		{"2.5e-999999999999999999999", ErrTooSmall, "exponent"},
		{"1e+100001", ErrTooLarge, "exponent"},
		{"1 $ 2", ErrSyntax, "offset 2"},
		{"", ErrSyntax, ""},
		{"gcd(1/2, 3)", ErrDomain, ""},
		{"abs(1, 2)", ErrSyntax, "takes 1"},
		{strings.Repeat("(", 300) + "1" + strings.Repeat(")", 300), ErrTooLarge, "nested"},
		{strings.Repeat("1+", 6000) + "1", ErrTooLarge, "bytes"},
		{"comb(10^9, 10^8)", ErrTooLarge, ""},
	}
	for _, tt := range tests {
		name := tt.expr
		if len(name) > 30 {
			name = name[:30]
		}
		t.Run(name, func(t *testing.T) {
			_, err := Eval(tt.expr, nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Eval(%q) error = %v, want %v", tt.expr, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Eval(%q) error %q does not say %q", tt.expr, err, tt.msg)
			}
		})
	}
}

func TestMaxBits(t *testing.T) {
	t.Parallel()
	o := &Options{MaxBits: 64}
	if _, err := Eval("2^63", o); err != nil {
		t.Errorf("2^63 within 64 bits: %v", err)
	}
	if _, err := Eval("2^64", o); !errors.Is(err, ErrTooLarge) {
		t.Errorf("2^64 over 64 bits: err = %v", err)
	}
	if _, err := Eval("2^40 * 2^40", o); !errors.Is(err, ErrTooLarge) {
		t.Errorf("product over 64 bits: err = %v", err)
	}
	if _, err := Eval("21!", o); !errors.Is(err, ErrTooLarge) {
		t.Errorf("21! over 64 bits: err = %v", err)
	}
	// 33!! is 6332659870762850625 (63 bits), 35!! 65 bits.
	if v, err := Eval("33!!", o); err != nil || Format(v) != "6332659870762850625" {
		t.Errorf("33!! within 64 bits: %v, %v", v, err)
	}
	if _, err := Eval("35!!", o); !errors.Is(err, ErrTooLarge) {
		t.Errorf("35!! over 64 bits: err = %v", err)
	}
	if _, err := Eval("2^-64", o); !errors.Is(err, ErrTooSmall) {
		t.Errorf("2^-64 over 64 bits: err = %v", err)
	}
	// A product near zero is too small, not too large.
	if _, err := Eval("2^-40 * 2^-40", o); !errors.Is(err, ErrTooSmall) {
		t.Errorf("2^-40 * 2^-40 over 64 bits: err = %v", err)
	}
	if _, err := Eval("-2^-40 * (3/2^40)", o); !errors.Is(err, ErrTooSmall) {
		t.Errorf("-2^-40 * (3/2^40) over 64 bits: err = %v", err)
	}
}

// n followed by k marks is n(n-k)(n-2k)… down to a term of 1 to k, as a
// plain loop computes it.
func TestMultifactorial(t *testing.T) {
	t.Parallel()
	for k := 1; k <= 6; k++ {
		for n := int64(0); n <= 120; n++ {
			want := big.NewInt(1)
			for m := n; m > 0; m -= int64(k) {
				want.Mul(want, big.NewInt(m))
			}
			expr := fmt.Sprint(n) + strings.Repeat("!", k)
			v, err := Eval(expr, nil)
			if err != nil || Format(v) != want.String() {
				t.Fatalf("%s = %v, %v; want %s", expr, v, err, want)
			}
		}
	}
	// The largest allowed: the estimate before computing agrees with the
	// size after.
	v, err := Eval("120000!!", nil)
	if err != nil || v.Num().BitLen() > DefaultMaxBits {
		t.Fatalf("120000!!: %d bits, %v", v.Num().BitLen(), err)
	}
}

func TestDecimal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr, want string
		exact      bool
	}{
		{"5/4", "1.25", true},
		{"1/3", "0.33333333333333333333", false},
		{"-1/8", "-0.125", true},
		{"1/30000", "0.000033333333333333333333", false},
		{"7", "7", true},
		// Below 10^-20, scientific notation: 1/3^600000 was "0" (its
		// float64 is 0); exact when it is.
		{"1/3^600000", "1.7667219407636937011e-286273", false},
		{"-1/3^600000", "-1.7667219407636937011e-286273", false},
		{"1e-330", "1e-330", true},
		{"-2/3 * 1e-330", "-6.6666666666666666667e-331", false},
		{"1/2^100", "7.888609052210118054117285652827862296732064351090230047702789306640625e-31", true},
		{"123e-23", "1.23e-21", true},
		{"1e-20", "0.00000000000000000001", true},
		{"1/3 * 1e-20", "3.3333333333333333333e-21", false},
		{"1e-21 * (10^20 - 1/2)", "0.0999999999999999999995", true},
		{"(10^21-1)/10^42", "9.99999999999999999999e-22", true},
		{"(10^22-1)/(3*10^43)", "3.333333333333333333333e-22", true},
		{"(10^22-1)/(7*10^43)", "1.4285714285714285714e-22", false},
		{"(2*10^20-1)/10^41", "1.99999999999999999999e-21", true},
		{"(2*10^20 - 1/3)/10^41", "2e-21", false}, // 1.99999999999999999999666… rounded up
		{"1e-100000", "1e-100000", true},
		{"1/5^450000", "3.1481019730010187504e-314537", false},
	}
	for _, tt := range tests {
		v, err := Eval(tt.expr, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, exact := Decimal(v, 20)
		if got != tt.want || exact != tt.exact {
			t.Errorf("Decimal(%s) = %s, %v; want %s, %v", tt.expr, got, exact, tt.want, tt.exact)
		}
	}
}

func TestTool(t *testing.T) {
	t.Parallel()
	tool := New(nil)
	tests := []struct {
		args, want string
		isErr      bool
	}{
		{`{"expression":"2^100"}`, "1267650600228229401496703205376", false},
		{`{"expression":"1/3"}`, "1/3 ≈ 0.33333333333333333333", false},
		{`{"expression":"3/8"}`, "3/8 = 0.375", false},
		{`{"expression":"1/0"}`, "calc: division by zero at offset 1", true},
		{`{"expression":`, "calc: arguments:", true},
	}
	for _, tt := range tests {
		res, err := tool.Call(context.Background(), json.RawMessage(tt.args))
		if err != nil {
			t.Fatalf("Call(%s): %v", tt.args, err)
		}
		if !strings.HasPrefix(res.Text, tt.want) || res.IsError != tt.isErr {
			t.Errorf("Call(%s) = %q (error %v), want %q (error %v)", tt.args, res.Text, res.IsError, tt.want, tt.isErr)
		}
	}
}

// TestAgainstInt64 checks random integer expressions against int64
// arithmetic where it does not overflow.
func TestAgainstInt64(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		a, b, c := r.Int64N(2000)-1000, r.Int64N(2000)-1000, r.Int64N(50)+1
		expr := fmt.Sprintf("(%d) * (%d) - (%d) // %d + (%d) %% %d", a, b, a, c, b, c)
		want := a*b - floorDiv(a, c) + pyMod(b, c)
		v, err := Eval(expr, nil)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		if got := Format(v); got != fmt.Sprint(want) {
			t.Fatalf("%s = %s, want %d", expr, got, want)
		}
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func pyMod(a, b int64) int64 { return a - b*floorDiv(a, b) }

func ExampleEval() {
	v, err := Eval("(1/3 + 1/6) * 2^10", nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(Format(v))
	v, _ = Eval("0.1 + 0.2", nil)
	fmt.Println(Format(v))
	// Output:
	// 512
	// 3/10
}

// BenchmarkEval10k evaluates 10,000 mixed expressions per iteration.
func BenchmarkEval10k(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	forms := []string{
		"(%d + %d) * %d / 7",
		"%d^3 - %d^2 + %d",
		"gcd(%d, %d) + lcm(%d, 12)",
		"(%d/3 + %d/5) * %d.25",
		"comb(%d, 3) + %d %% 7 - %d // 3",
	}
	exprs := make([]string, 10000)
	for i := range exprs {
		f := forms[i%len(forms)]
		exprs[i] = fmt.Sprintf(f, r.IntN(1000)+1, r.IntN(1000)+1, r.IntN(1000)+1)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, e := range exprs {
			if _, err := Eval(e, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e4, "ns/expr")
}

// A call's deadline stops the evaluation: a 1024th root of a number of a
// million bits takes seconds of Newton steps, and the tool's timeout must
// not leave it running (or make the caller wait for it).
func TestEvalStopsAtDeadline(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := EvalContext(ctx, "root((2^1023+1)^1024, 1024)", nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("stopped after %s", d)
	}
	res, err := New(nil).Call(ctx, json.RawMessage(`{"expression":"1+1"}`))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call after the deadline: %+v, %v", res, err)
	}
}

// An error about a huge operand names it in a line, not in 300,000 digits.
func TestErrorsAbbreviateHugeNumbers(t *testing.T) {
	t.Parallel()
	for _, expr := range []string{"(2^(2^20-1))!", "root(2^(2^20-1)+1, 3)", "factorial(2^(2^20-1)/3)"} {
		_, err := Eval(expr, nil)
		if err == nil {
			t.Fatalf("%s: no error", expr)
		}
		if msg := err.Error(); len(msg) > 300 || !strings.Contains(msg, "…") || !strings.Contains(msg, " (31565") {
			t.Errorf("%s: %d bytes: %.200s", expr, len(msg), msg)
		}
	}
	// lcm stops as soon as its running result is too large.
	_, err := Eval("lcm(2^(2^20-1), 3^600000, 5^400000)", nil)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "lcm at offset 0: result too large: the result has") {
		t.Errorf("lcm: %v", err)
	}
}

// A chain of separate factorials as long as an expression may be is
// evaluated. (Marks written together are one multifactorial.)
func TestFactorialChain(t *testing.T) {
	t.Parallel()
	v, err := Eval("1"+strings.Repeat(" !", (DefaultMaxLen-1)/2), nil)
	if err != nil || Format(v) != "1" {
		t.Fatalf("= %v, %v", v, err)
	}
}

// BenchmarkFactorialChain: each ! of a chain costs one factorial, not the
// tens of thousands of logarithms that find the largest factorial
// allowed ("1 ! ! … !" of 10,000 bytes took 6 s).
//
//	go test -run '^$' -bench FactorialChain ./tools/calc/
func BenchmarkFactorialChain(b *testing.B) {
	expr := "1" + strings.Repeat(" !", (DefaultMaxLen-1)/2)
	for b.Loop() {
		if _, err := Eval(expr, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDecimalOfHugeDenominators: a denominator that is a huge power of 5
// (1e-300000 has one) was divided by 5 once per factor, quadratic in its
// size: 1/5^450000 took about 40 s, after Eval and past any deadline.
// Exactness still holds up to 1000 decimal digits.
func TestDecimalOfHugeDenominators(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		expr  string
		exact bool
	}{
		{"1/10^1000", true}, {"1/10^1001", true}, {"1/(7*10^1001)", false}, {"3/2^1000", true}, {"3/2^1001", false},
		{"1/5^1000", true}, {"1/5^1001", false}, {"1/(3*5^2000)", false},
	} {
		v, err := Eval(tt.expr, nil)
		if err != nil {
			t.Fatal(err)
		}
		if s, exact := Decimal(v, 20); exact != tt.exact || s == "" {
			t.Errorf("Decimal(%s): exact %v, want %v", tt.expr, exact, tt.exact)
		}
	}
	done := make(chan string, 1)
	go func() {
		res, err := New(nil).Call(context.Background(), json.RawMessage(`{"expression":"1/5^450000"}`))
		if err != nil {
			done <- err.Error()
			return
		}
		done <- res.Text
	}()
	select {
	case got := <-done:
		if !strings.Contains(got, " ≈ 3.1481019730010187504e-314537") {
			t.Errorf("got %.100q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the decimal of 1/5^450000 took over 5s")
	}
}

// BenchmarkHugeFractions is the cost of one operation on two fractions
// of about a million bits each: a sum and a quotient whose results are
// over the limit (coprime denominators), and a product and a quotient
// whose factors cancel to 1. One such operation took 4–4.5 s, between
// two of the checks of the call's deadline.
//
//	go test -run '^$' -bench HugeFractions -benchtime 3x ./tools/calc/
func BenchmarkHugeFractions(b *testing.B) {
	x, y := "(2^600000/3^400000)", "(5^400000/7^350000)"
	for _, bm := range []struct{ name, expr string }{
		{"operands-only", "max(" + x + ", " + y + ")"}, // what the others spend before their operation
		{"sum", x + " + " + y},
		{"quotient", x + " / " + y},
		{"product-cancels", x + " * (3^400000/2^600000)"},
		{"quotient-cancels", x + " / " + x},
	} {
		b.Run(bm.name, func(b *testing.B) {
			for b.Loop() {
				_, _ = Eval(bm.expr, nil)
			}
		})
	}
}

// A product or quotient is sized once reduced, as the docs say of every
// intermediate result: factors that cancel are not too large. The
// product was refused from its factors' sizes, before it was reduced,
// while the same written with / gave 1.
func TestProductsAreSizedOnceReduced(t *testing.T) {
	t.Parallel()
	o := &Options{MaxBits: 64}
	for _, tt := range []struct{ expr, want string }{
		{"(2^60/3^30) * (3^30/2^60)", "1"},
		{"(2^60/3^30) / (2^60/3^30)", "1"},
		{"(2^60/3^30) * (3^30/5)", "1152921504606846976/5"},
		{"(3^30/2^60) * (-2^60/7)", "-205891132094649/7"},
		{"(2^60/3^30) / (5/3^30)", "1152921504606846976/5"},
		{"(2^63-1)/3^40 * 3^40", "9223372036854775807"},
	} {
		v, err := Eval(tt.expr, o)
		if err != nil || Format(v) != tt.want {
			t.Errorf("Eval(%q) with 64 bits = %v, %v; want %s", tt.expr, v, err, tt.want)
		}
	}
	// At the default limit, as the docs' example writes it.
	v, err := Eval("(2^600000/3^400000) * (3^400000/2^600000)", nil)
	if err != nil || Format(v) != "1" {
		t.Errorf("(2^600000/3^400000) * (3^400000/2^600000) = %v, %v; want 1", v, err)
	}
	// What does not cancel is still refused, too large or too small.
	for expr, want := range map[string]error{
		"(2^60/3^30) * (2^10/5)": ErrTooLarge, "(3^30/2^60) * (5/2^10)": ErrTooSmall,
		"(3^30/2^60) / (2^10/5)": ErrTooSmall, "1/3^30 + 1/5^20": ErrTooSmall, "3^39/2^40 - 5^26/7^12": ErrTooLarge,
	} {
		if _, err := Eval(expr, o); !errors.Is(err, want) {
			t.Errorf("Eval(%q) with 64 bits: %v, want %v", expr, err, want)
		}
	}
}

// The operations on fractions agree with big.Rat's on random operands.
func TestArithmeticMatchesBigRat(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(5, 6))
	frac := func() *big.Rat {
		num := big.NewInt(r.Int64N(2_000_001) - 1_000_000)
		num.Mul(num, new(big.Int).Exp(big.NewInt(int64(r.IntN(5)+2)), big.NewInt(int64(r.IntN(40))), nil))
		den := new(big.Int).Exp(big.NewInt(int64(r.IntN(6)+1)), big.NewInt(int64(r.IntN(30))), nil)
		den.Mul(den, big.NewInt(r.Int64N(1000)+1))
		return new(big.Rat).SetFrac(num, den)
	}
	ctx := context.Background()
	for i := 0; i < 3000; i++ {
		x, y := frac(), frac()
		sum, err1 := add(ctx, x, y, false, DefaultMaxBits)
		diff, err2 := add(ctx, x, y, true, DefaultMaxBits)
		prod, err3 := mul(ctx, x, y, DefaultMaxBits)
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatal(err)
		}
		check := func(op string, got, want *big.Rat) {
			t.Helper()
			// RatString of a fraction not in lowest terms differs.
			if got.RatString() != want.RatString() || got.Cmp(want) != 0 {
				t.Fatalf("%s %s %s = %s, want %s", x.RatString(), op, y.RatString(), got.RatString(), want.RatString())
			}
		}
		check("+", sum, new(big.Rat).Add(x, y))
		check("-", diff, new(big.Rat).Sub(x, y))
		check("*", prod, new(big.Rat).Mul(x, y))
		if y.Sign() == 0 {
			continue
		}
		q, err := mul(ctx, x, inverse(y), DefaultMaxBits)
		if err != nil {
			t.Fatal(err)
		}
		check("/", q, new(big.Rat).Quo(x, y))
		k := new(big.Rat).Quo(x, y)
		fl := new(big.Int).Div(k.Num(), k.Denom()) // Euclidean: floor for a positive denominator
		check("//", new(big.Rat).SetInt(floorQuo(x, y)), new(big.Rat).SetInt(fl))
		m, err := mod(ctx, x, y)
		if err != nil {
			t.Fatal(err)
		}
		check("%", m, new(big.Rat).Sub(x, new(big.Rat).Mul(y, new(big.Rat).SetInt(fl))))
	}
}

// cancelledAfter is a context whose Err is nil for its first n calls and
// context.Canceled from then on: a deadline that passes at a known step.
type cancelledAfter struct {
	context.Context
	n int
}

func (c *cancelledAfter) Err() error {
	if c.n <= 0 {
		return context.Canceled
	}
	c.n--
	return nil
}

// An operation on fractions checks the deadline between its GCDs (each up
// to a second's work at the size limit), not only once it is done: the
// call's deadline stopped nothing inside a 4 s sum.
func TestOperationsStopBetweenTheirSteps(t *testing.T) {
	t.Parallel()
	x, y := big.NewRat(2, 15), big.NewRat(7, 10) // a GCD of the denominators, then one of it and the numerator
	for steps := 0; steps < 2; steps++ {
		if v, err := add(&cancelledAfter{context.Background(), steps}, x, y, false, DefaultMaxBits); !errors.Is(err, context.Canceled) {
			t.Errorf("sum cancelled after %d steps: %v, %v", steps, v, err)
		}
		if v, err := mul(&cancelledAfter{context.Background(), steps}, x, y, DefaultMaxBits); !errors.Is(err, context.Canceled) {
			t.Errorf("product cancelled after %d steps: %v, %v", steps, v, err)
		}
	}
	if v, err := add(&cancelledAfter{context.Background(), 2}, x, y, false, DefaultMaxBits); err != nil || v.RatString() != "5/6" {
		t.Errorf("2/15 + 7/10 = %v, %v", v, err)
	}
}
