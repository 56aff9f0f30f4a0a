// Package mathequiv decides whether two final answers of competition
// mathematics (MATH, MATH-500) are the same answer.
//
//	mathequiv.Equal(`\dfrac{1}{2}`, "0.5")            // true
//	mathequiv.Equal(`\boxed{x = 3}`, "3")             // true
//	mathequiv.Equal(`(-\infty, 2) \cup (3, \infty)`, `(3,\infty)\cup(-\infty,2)`) // true
//	mathequiv.Equal(`\frac{1}{2}`, `\frac{1}{3}`)     // false
//	mathequiv.Canonical(`\frac12`)                    // "1/2"
//
// An answer is first cleaned (Clean: \boxed{}, $, spacing, \left/\right,
// \dfrac, degrees, units, thousands separators, \text{}, "x ="), then read
// as one of: a number or expression, compared by value (exactly for
// rationals, within 1e-9 relative otherwise, and at three fixed points
// for expressions with variables, so x^2+2x equals x(x+2)); a tuple or
// interval (brackets must match, elements in order); a list of solutions
// or a set (any order; a \pm b stands for both); a union of intervals; a
// matrix; an equation (equal up to a nonzero factor); or else text
// (case-insensitive). Decimal approximations of irrational values are not
// accepted: 1.414 is not \sqrt{2}.
//
// Equal(a, b) implies Canonical(a) == Canonical(b), so Canonical can key
// majority votes.
package mathequiv

// Equal reports whether candidate and reference are the same answer.
func Equal(candidate, reference string) bool {
	return equal(parse(Clean(candidate), 0), parse(Clean(reference), 0))
}

// Canonical returns a key such that equal answers have equal keys:
// rationals as p/q ("1/2", "-3"), other values as their snapped or 9-digit
// decimal form, tuples and sets of keys, and lower-cased text.
func Canonical(answer string) string {
	return key(parse(Clean(answer), 0))
}
