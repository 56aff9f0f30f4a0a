package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ponder-rlm/ponder/config"
)

// Integer flags read decimal numbers only. pflag parses them in base 0, so
// --llm-concurrency 010 was 8 (octal) and 0x10 was 16, while the same
// number in ponder.yaml is refused with a leading zero and a PONDER_*
// variable reads decimal. decimalFlags wraps every integer flag of the
// command tree in one place, so a flag added later is covered without its
// file remembering to. Decimal (float) flags are wrapped there too: they
// read 01 as 1 and NaN as a number. Both kinds are held to config's rule
// (config.CheckNumber), so a flag refuses what ponder.yaml and PONDER_*
// variables refuse, in the same words.

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
// and every float flag refuse a leading zero before its point, and NaN and
// infinities.
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
	// A leading zero (010, -007, 00): as config refuses 0123 in a file or
	// a PONDER_* variable.
	return config.CheckNumber(s)
}

// checkFloat holds a decimal fraction flag to config's rule: a leading
// zero before its point or exponent (01, 00.5, -01e3) and NaN or an
// infinity are refused, saying what to write; 0, 0.5 and .5 are fine.
// Anything else is left to the flag's own parser, whose error pflag
// already gives.
func checkFloat(s string) error { return config.CheckNumber(s) }

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
