package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Integer flags read decimal numbers only. pflag parses them in base 0, so
// --llm-concurrency 010 was 8 (octal) and 0x10 was 16, while the same
// number in ponder.yaml is refused with a leading zero and a PONDER_*
// variable reads decimal. decimalFlags wraps every integer flag of the
// command tree in one place, so a flag added later is covered without its
// file remembering to. Decimal (float) flags are wrapped there too: they
// read 01 as 1, but config refuses a leading zero in a float setting (YAML
// 1.1 reads 010 as 8), so --accuracy 01 is refused as accuracy: 01 would be.

// intFlagTypes are the pflag value types holding whole numbers: true for
// one number, false for a comma-separated list.
var intFlagTypes = map[string]bool{
	"int": true, "int8": true, "int16": true, "int32": true, "int64": true,
	"uint": true, "uint8": true, "uint16": true, "uint32": true, "uint64": true,
	"intSlice": false, "int32Slice": false, "int64Slice": false, "uintSlice": false,
}

// floatFlagTypes are the pflag value types holding decimal fractions, as
// intFlagTypes.
var floatFlagTypes = map[string]bool{
	"float32": true, "float64": true,
	"float32Slice": false, "float64Slice": false,
}

// decimalFlags makes every integer flag of c and its subcommands (their
// own and their persistent ones) read decimal and refuse a leading zero,
// and every float flag refuse a leading zero before its point.
// It runs before any parsing: cobra shares a parent's persistent *Flag
// with its children, so wrapping it once covers them.
func decimalFlags(c *cobra.Command) {
	wrap := func(f *pflag.Flag) {
		switch f.Value.(type) {
		case decimalValue, decimalSlice:
			return // already wrapped (a flag set seen twice)
		}
		check := checkDecimal
		scalar, ok := intFlagTypes[f.Value.Type()]
		if !ok {
			check = checkFloat
			scalar, ok = floatFlagTypes[f.Value.Type()]
		}
		switch {
		case !ok:
		case scalar:
			f.Value = decimalValue{f.Value, check}
		default:
			if sv, ok := f.Value.(pflag.SliceValue); ok {
				f.Value = decimalSlice{f.Value, sv, check}
			}
		}
	}
	c.Flags().VisitAll(wrap)
	c.PersistentFlags().VisitAll(wrap)
	for _, sub := range c.Commands() {
		decimalFlags(sub)
	}
}

// checkDecimal accepts a whole number written in decimal digits, with an
// optional sign, and no leading zero. pflag names the flag in front of its
// error: invalid argument "010" for "--llm-concurrency" flag: ...
func checkDecimal(s string) error {
	digits := strings.TrimLeft(s, "+-")
	if len(s)-len(digits) > 1 || digits == "" || strings.Trim(digits, "0123456789") != "" {
		if v, err := strconv.ParseInt(s, 0, 64); err == nil {
			// Go syntax for another base (0x10, 0o17, 0b101, 1_000):
			// say which decimal number it meant.
			return fmt.Errorf("%s is not a decimal number; write it in decimal digits: %d", s, v)
		}
		return fmt.Errorf("%s is not a whole number in decimal digits", s)
	}
	if len(digits) > 1 && digits[0] == '0' {
		// As config refuses 0123 in a file or a PONDER_* variable: the
		// writer may have meant octal (010 is 8) or decimal (10).
		want := strings.TrimLeft(digits, "0")
		if want == "" {
			want = "0"
		} else if strings.HasPrefix(s, "-") {
			want = "-" + want
		}
		return fmt.Errorf("%s has a leading zero, which could be read as octal (010 is 8); write it without the leading zero: %s", s, want)
	}
	return nil
}

// checkFloat refuses a decimal fraction written with a leading zero
// before its point or exponent (01, 00.5, -01e3), saying what to write;
// 0, 0.5 and .5 are fine. Anything else is left to the flag's own parser,
// whose error pflag already gives, so only a number it reads is refused
// here and the number suggested reads too.
func checkFloat(s string) error {
	if _, err := strconv.ParseFloat(s, 64); err != nil {
		return nil
	}
	unsigned := strings.TrimLeft(s, "+-")
	whole := unsigned[:len(unsigned)-len(strings.TrimLeft(unsigned, "0123456789"))]
	if len(whole) < 2 || whole[0] != '0' {
		return nil
	}
	trimmed := strings.TrimLeft(whole, "0")
	if trimmed == "" {
		trimmed = "0"
	}
	want := trimmed + unsigned[len(whole):]
	if strings.HasPrefix(s, "-") {
		want = "-" + want
	}
	return fmt.Errorf("%s has a leading zero, refused as in a whole number and in ponder.yaml (where 010 reads as octal 8); "+
		"write it without the leading zero: %s", s, want)
}

// decimalValue is a number flag's value, checked by check (checkDecimal
// or checkFloat) before the flag's own parser reads it (an integer in base
// 0, which a checked number reads the same as in base 10). Type and String
// stay the flag's, so help and cobra's Get* functions see the flag as
// before.
type decimalValue struct {
	pflag.Value
	check func(string) error
}

func (d decimalValue) Set(s string) error {
	if err := d.check(s); err != nil {
		return err
	}
	return d.Value.Set(s)
}

// decimalSlice is a number list flag's value (--pass-k 1,5,10): each
// number is checked.
type decimalSlice struct {
	pflag.Value
	slice pflag.SliceValue
	check func(string) error
}

func (d decimalSlice) checkAll(ss []string) error {
	for _, s := range ss {
		if err := d.check(s); err != nil {
			return err
		}
	}
	return nil
}

func (d decimalSlice) Set(s string) error {
	if err := d.checkAll(strings.Split(s, ",")); err != nil {
		return err
	}
	return d.Value.Set(s)
}

func (d decimalSlice) Append(s string) error {
	if err := d.check(s); err != nil {
		return err
	}
	return d.slice.Append(s)
}

func (d decimalSlice) Replace(ss []string) error {
	if err := d.checkAll(ss); err != nil {
		return err
	}
	return d.slice.Replace(ss)
}

// GetSlice makes the value a slice to cobra too (its completion offers
// such a flag again).
func (d decimalSlice) GetSlice() []string { return d.slice.GetSlice() }
