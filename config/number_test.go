package config_test

import (
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/config"
)

// CheckNumber, the one rule for numbers in files, variables and flags:
// what it refuses says what to write, and that suggestion passes; what it
// takes (or leaves to the parser of where it was written) is nil.
func TestCheckNumber(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"010", "010 has a leading zero, which could be read as octal (010 is 8) and is refused in every number; write it without the leading zero: 10"},
		{"-007", "write it without the leading zero: -7"},
		{"+012", "write it without the leading zero: 12"},
		{"00", "write it without the leading zero: 0"},
		{"-00", "write it without the leading zero: 0"},
		{"0_10", "write it without the leading zero: 10"},
		{"00.5", "write it without the leading zero: 0.5"},
		{"-00.5", "write it without the leading zero: -0.5"},
		{"01e3", "write it without the leading zero: 1e3"},
		{"007.25", "write it without the leading zero: 7.25"},
		{"00.", "write it without the leading zero: 0."},
		{"NaN", "NaN is not a finite number; write one in decimal digits"},
		{"nan", "nan is not a finite number"},
		{"-Inf", "-Inf is not a finite number"},
		{"+Infinity", "+Infinity is not a finite number"},
		{".inf", ".inf is not a finite number"},
		{"-.INF", "-.INF is not a finite number"},
		{".NaN", ".NaN is not a finite number"},
		// Left alone: read as written, or refused by their parser.
		{"0", ""}, {"-0", ""}, {"0.5", ""}, {".5", ""}, {"-0.5", ""}, {"10", ""}, {"0e3", ""},
		{"1.5e2", ""}, {"0x1f", ""}, {"0b101", ""}, {"0o17", ""}, {"1_000", ""}, {"", ""},
		{"+-01", ""}, {"00x1", ""}, {"01abc", ""}, {"abc", ""}, {"infinite", ""},
	} {
		err := config.CheckNumber(tc.in)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v, want it taken", tc.in, err)
		case tc.want == "":
		case err == nil || !strings.Contains(err.Error(), tc.want):
			t.Errorf("%q: %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}
