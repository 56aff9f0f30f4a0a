package config

import (
	"fmt"
	"strconv"
	"strings"
)

// CheckNumber is the one rule for how a number setting or number flag may
// be written, used for config files, PONDER_* variables and command-line
// flags (cmd/ponder wraps every number flag with it), so that one value
// is refused in the same words wherever it is written. The caller puts
// the setting, variable or flag in front of its error.
//
// It refuses a leading zero before the point (010, -007, 0_10, 00, and in
// a fraction 00.5 or 01e3): YAML 1.1 reads 010 as octal 8 and a Go flag
// in base 0 did too, while the writer may have meant 10; a fraction is
// held to the same rule so that no number reads one way and the next one
// another. It refuses NaN and infinities (NaN, Inf, -Infinity, .nan,
// .inf), which strconv and pflag read as floats: a NaN rate limit refused
// every request and a NaN temperature passed every range check.
//
// Anything else (0, 0.5, .5, 0x1f, 1_000, words) is left to the parser
// of where it was written, whose own error names what it wants; so only a
// number that reads is refused here, and the number suggested reads too.
func CheckNumber(s string) error {
	unsigned := strings.TrimLeft(s, "+-")
	if len(s)-len(unsigned) > 1 {
		return nil // +-1: not a number; the parser says so
	}
	switch strings.ToLower(strings.TrimPrefix(unsigned, ".")) {
	case "nan", "inf", "infinity":
		return fmt.Errorf("%s is not a finite number; write one in decimal digits", s)
	}
	whole := unsigned[:len(unsigned)-len(strings.TrimLeft(unsigned, "0123456789_"))]
	rest := strings.ReplaceAll(unsigned[len(whole):], "_", "")
	whole = strings.ReplaceAll(whole, "_", "")
	if len(whole) < 2 || whole[0] != '0' {
		return nil
	}
	if rest != "" {
		// Only a fraction or an exponent follows (00.5, 01e3), not 00x1
		// or 01abc, which are no numbers to suggest one for.
		if _, err := strconv.ParseFloat(whole+rest, 64); err != nil || !strings.ContainsAny(rest[:1], ".eE") {
			return nil
		}
	}
	want := strings.TrimLeft(whole, "0")
	switch {
	case want == "" && rest == "":
		want = "0" // -00 is 0
	case want == "":
		want = "0" + rest
	default:
		want += rest
	}
	if strings.HasPrefix(s, "-") && want != "0" {
		want = "-" + want
	}
	return fmt.Errorf("%s has a leading zero, which could be read as octal (010 is 8) and is refused in every number; "+
		"write it without the leading zero: %s", s, want)
}
