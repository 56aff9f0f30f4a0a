package calc

import (
	"context"
	"fmt"
	"math"
	"math/big"
)

// The four operations on fractions, computed as Knuth gives them (TAOCP
// 4.5.1): the greatest common divisors are taken of the operands, each at
// most maxBits, before the result is formed, and the result comes out in
// lowest terms. big.Rat forms the unreduced result first and reduces it
// with a GCD of two numbers of up to twice maxBits: 4–4.5 s for one sum of
// two fractions of a million bits (Lehmer's GCD is quadratic), between two
// checks of the call's deadline, to refuse a result that was over the
// limit from the start; and calc refused a product before it was reduced,
// so factors that cancel ((2^600000/3^400000) * (3^400000/2^600000)) read
// as too large. Here a result whose reduced size is over the limit is
// refused as soon as that is known, before it is formed, and the deadline
// is checked between the GCDs: the most work between two checks is one
// GCD of two numbers of maxBits.

var bigOne = big.NewInt(1)

// fraction is num/den, which must be in lowest terms with den > 0, made
// without the GCD that big.Rat's constructors take again (a second's work
// at the size limit): Num and Denom refer to the Rat's own parts.
func fraction(num, den *big.Int) *big.Rat {
	r := new(big.Rat).SetInt64(1) // a denominator of its own, that Denom returns
	r.Num().Set(num)
	r.Denom().Set(den)
	return r
}

// gcd is the greatest common divisor of |a| and |b|, without the work
// when one of them is 1.
func gcd(a, b *big.Int) *big.Int {
	if a.CmpAbs(bigOne) == 0 || b.CmpAbs(bigOne) == 0 {
		return bigOne
	}
	return new(big.Int).GCD(nil, nil, a, b)
}

// quo is a / b, b dividing a exactly (a itself when b is 1).
func quo(a, b *big.Int) *big.Int {
	if b.Cmp(bigOne) == 0 {
		return a
	}
	return new(big.Int).Quo(a, b)
}

// bitsLowerBound is the fewest bits a product of numbers of these bit
// lengths can have.
func bitsLowerBound(bits ...int) int {
	n := 0
	for _, b := range bits {
		n += b
	}
	return n - len(bits) + 1
}

// refuse is the error for a result whose numerator or denominator has more
// than maxBits: too small when it is below 1 in size (its size is its
// denominator's), else too large: check's error for a result formed, and
// add's and mul's for one known to be over before it is formed.
func refuse(tiny bool, maxBits int) error {
	if tiny {
		return fmt.Errorf("%w: an intermediate result's denominator has more than %d bits", ErrTooSmall, maxBits)
	}
	return fmt.Errorf("%w: an intermediate result has more than %d bits", ErrTooLarge, maxBits)
}

// add is x + y, or x - y when sub, refused with refuse when its
// denominator in lowest terms has more than maxBits (its numerator is
// checked by the caller, once it is formed).
func add(ctx context.Context, x, y *big.Rat, sub bool, maxBits int) (*big.Rat, error) {
	a, b := x.Num(), x.Denom()
	c, d := y.Num(), y.Denom()
	if sub {
		c = new(big.Int).Neg(c)
	}
	if b.Cmp(bigOne) == 0 && d.Cmp(bigOne) == 0 {
		return fraction(new(big.Int).Add(a, c), bigOne), nil
	}
	g := gcd(b, d)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b1, d1 := quo(b, g), quo(d, g)
	// The denominator is b1·(d/g2) for a g2 dividing g: b1·d1 at least.
	if bitsLowerBound(b1.BitLen(), d1.BitLen()) > maxBits {
		fx, _ := x.Float64()
		fy, _ := y.Float64()
		if sub {
			fy = -fy
		}
		return nil, refuse(math.Abs(fx+fy) < 1, maxBits)
	}
	t := new(big.Int).Mul(a, d1)
	t.Add(t, new(big.Int).Mul(c, b1))
	if t.Sign() == 0 {
		return new(big.Rat), nil
	}
	if g.Cmp(bigOne) == 0 {
		return fraction(t, new(big.Int).Mul(b1, d)), nil
	}
	g2 := gcd(t, g)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return fraction(quo(t, g2), new(big.Int).Mul(b1, quo(d, g2))), nil
}

// mul is x · y, refused with refuse when its numerator or denominator in
// lowest terms has more than maxBits.
func mul(ctx context.Context, x, y *big.Rat, maxBits int) (*big.Rat, error) {
	a, b := x.Num(), x.Denom()
	c, d := y.Num(), y.Denom()
	if a.Sign() == 0 || c.Sign() == 0 {
		return new(big.Rat), nil
	}
	g1 := gcd(a, d)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	g2 := gcd(c, b)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a, d = quo(a, g1), quo(d, g1)
	c, b = quo(c, g2), quo(b, g2)
	nb := bitsLowerBound(a.BitLen(), c.BitLen())
	db := bitsLowerBound(b.BitLen(), d.BitLen())
	if nb > maxBits || db > maxBits {
		return nil, refuse(db > nb, maxBits)
	}
	return fraction(new(big.Int).Mul(a, c), new(big.Int).Mul(b, d)), nil
}

// inverse is 1/y, y not 0.
func inverse(y *big.Rat) *big.Rat {
	num, den := new(big.Int).Set(y.Denom()), new(big.Int).Abs(y.Num())
	if y.Sign() < 0 {
		num.Neg(num)
	}
	return fraction(num, den)
}

// floorQuo is floor(x / y), y not 0, by one division of integers: the
// quotient need not be reduced.
func floorQuo(x, y *big.Rat) *big.Int {
	num := new(big.Int).Mul(x.Num(), y.Denom())
	den := new(big.Int).Mul(x.Denom(), y.Num())
	if den.Sign() < 0 {
		num.Neg(num)
		den.Neg(den)
	}
	// Euclidean division floors for a positive divisor.
	q, _ := new(big.Int).DivMod(num, den, new(big.Int))
	return q
}

// mod is x - y·floor(x/y), the remainder with the sign of y (Python's %).
// Its steps are not held to maxBits (y·floor(x/y) is as large as x, by
// which the remainder is smaller); the remainder is, by the caller.
func mod(ctx context.Context, x, y *big.Rat) (*big.Rat, error) {
	if y.Sign() == 0 {
		return nil, ErrDivByZero
	}
	k := floorQuo(x, y)
	ky, err := mul(ctx, fraction(k, bigOne), y, math.MaxInt)
	if err != nil {
		return nil, err
	}
	return add(ctx, x, ky, true, math.MaxInt)
}
