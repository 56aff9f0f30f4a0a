package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ponder-rlm/ponder/config"
)

// Every integer flag of every command reads decimal numbers only: pflag
// read them in base 0, so --llm-concurrency 010 ran with 8 and 0x10 with
// 16, while ponder.yaml refuses a leading zero and PONDER_* variables read
// decimal. The walk covers flags added later too.
func TestEveryIntegerFlagReadsDecimal(t *testing.T) {
	t.Parallel()
	everyFlagRefuses(t, intFlagTypes, []refusal{
		{"010", "010 has a leading zero, which could be read as octal (010 is 8) and is refused in every number; write it without the leading zero: 10"},
		{"-007", "write it without the leading zero: -7"},
		{"00", "write it without the leading zero: 0"},
		{"0x10", "0x10 is not a decimal number; write it in decimal digits: 16"},
		{"0o17", "write it in decimal digits: 15"},
		{"1_000", "write it in decimal digits: 1000"},
		{"12abc", "12abc is not a whole number in decimal digits"},
		{"+-1", "+-1 is not a whole number in decimal digits"},
	}, "ponder --llm-concurrency", "ponder search --k", "ponder solve --budget-calls", "ponder eval report --pass-k", "ponder sim-llm --seed")
}

// refusal is a value a number flag refuses and what its error says.
type refusal struct{ in, want string }

// everyFlagRefuses sets each refused value on every flag of the command
// tree whose type is in types, and checks the walk met the flags named in
// mustMeet. Only refused values are set: a value taken would change the
// variable the flag is bound to, shared with other tests.
func everyFlagRefuses(t *testing.T, types map[string]bool, refused []refusal, mustMeet ...string) {
	t.Helper()
	seen := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if _, ok := types[f.Value.Type()]; !ok {
				return
			}
			name := c.CommandPath() + " --" + f.Name
			seen[name] = true
			for _, tc := range refused {
				err := f.Value.Set(tc.in)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s %s: error %v, want one saying %q (value now %s)", name, tc.in, err, tc.want, f.Value.String())
				}
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
	for _, want := range mustMeet {
		if !seen[want] {
			t.Errorf("the walk met no flag %s (met %v)", want, seen)
		}
	}
}

// From the command line: a refused number is a usage error (status 2)
// naming the flag and the decimal number to write; a decimal one is read
// as written.
func TestIntegerFlagsOnTheCommandLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--llm-concurrency", "010", "config"}, `invalid argument "010" for "--llm-concurrency" flag: 010 has a leading zero`},
		{[]string{"--llm-concurrency=0x10", "config"}, `"--llm-concurrency" flag: 0x10 is not a decimal number; write it in decimal digits: 16`},
		{[]string{"search", "-k", "05", "clips"}, `for "-k, --k" flag: 05 has a leading zero`},
		{[]string{"eval", "report", "--pass-k", "1,05", "runs/x"}, `for "--pass-k" flag: 05 has a leading zero`},
		{[]string{"eval", "--dataset", "gsm8k", "--strategies", "cot", "--out", "runs/x", "--budget-calls", "8,010"}, `--budget-calls: 010 has a leading zero`},
	} {
		r := runPonder(t, "", nil, tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	r := runPonder(t, "", nil, "--llm-concurrency", "10", "config")
	if r.code != 0 || !strings.Contains(strings.Join(strings.Fields(r.stdout), " "), "llm.concurrency 10 flag --llm-concurrency") {
		t.Errorf("--llm-concurrency 10: exit %d, stderr %q, stdout:\n%s\nwant llm.concurrency 10 from the flag", r.code, r.stderr, r.stdout)
	}
}

// Every float flag refuses a leading zero before its point, as config
// refuses one in a float setting and integer flags refuse one:
// sim-llm --accuracy 01 read 1.
func TestEveryFloatFlagRefusesLeadingZero(t *testing.T) {
	t.Parallel()
	everyFlagRefuses(t, floatFlagTypes, []refusal{
		{"01", "01 has a leading zero, which could be read as octal (010 is 8) and is refused in every number; write it without the leading zero: 1"},
		{"00.5", "write it without the leading zero: 0.5"},
		{"-007.25", "write it without the leading zero: -7.25"},
		{"+01e-1", "write it without the leading zero: 1e-1"},
		{"00", "write it without the leading zero: 0"},
		// pflag reads these as floats; a range check such as
		// v < 0 || v > 1 lets NaN through.
		{"NaN", "NaN is not a finite number; write one in decimal digits"},
		{"Inf", "Inf is not a finite number"},
		{"-Inf", "-Inf is not a finite number"},
		{"+infinity", "+infinity is not a finite number"},
	}, "ponder sim-llm --accuracy", "ponder sim-llm --error-500")
}

// A float written without a leading zero reads as before, alone and in a
// list; a leading zero is refused in a list too.
func TestFloatFlagsRead(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args  []string
		want  float64
		wantL []float64
		err   string
	}{
		{args: []string{"--x", "0.5"}, want: 0.5},
		{args: []string{"--x", "0"}, want: 0},
		{args: []string{"--x", ".25"}, want: 0.25},
		{args: []string{"--x", "-0.5"}, want: -0.5},
		{args: []string{"--x", "10"}, want: 10},
		{args: []string{"--x", "0e3"}, want: 0},
		{args: []string{"--x", "1.5e2"}, want: 150},
		{args: []string{"--l", "0.5,1,0"}, want: 1, wantL: []float64{0.5, 1, 0}},
		{args: []string{"--l", "0.5", "--l", "2"}, want: 1, wantL: []float64{0.5, 2}},
		{args: []string{"--x", "abc"}, err: `invalid argument "abc" for "--x" flag`},
		{args: []string{"--x", "01"}, err: `invalid argument "01" for "--x" flag: 01 has a leading zero`},
		{args: []string{"--l", "0.5,00.5"}, err: `for "--l" flag: 00.5 has a leading zero`},
		{args: []string{"--l", "1", "--l", "02"}, err: `for "--l" flag: 02 has a leading zero`},
		{args: []string{"--l", "0.5,NaN"}, err: `for "--l" flag: NaN is not a finite number`},
		{args: []string{"--x", "-inf"}, err: `invalid argument "-inf" for "--x" flag: -inf is not a finite number`},
	} {
		var x float64
		var l []float64
		c := &cobra.Command{Use: "t", RunE: func(*cobra.Command, []string) error { return nil }, SilenceUsage: true, SilenceErrors: true}
		c.Flags().Float64Var(&x, "x", 1, "")
		c.Flags().Float64SliceVar(&l, "l", nil, "")
		decimalFlags(c)
		c.SetArgs(tc.args)
		err := c.Execute()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: error %v, want %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || x != tc.want || fmt.Sprint(l) != fmt.Sprint(tc.wantL) {
			t.Errorf("%v: x %v, l %v, error %v; want %v, %v", tc.args, x, l, err, tc.want, tc.wantL)
		}
	}
}

// From the command line: sim-llm --accuracy 01 is a usage error naming
// the flag; 0.5 is read (--help stops after the flags are parsed).
func TestFloatFlagsOnTheCommandLine(t *testing.T) {
	t.Parallel()
	// --help: sim-llm exits once its flags are parsed rather than serving,
	// whether 01 is refused or not.
	r := runPonder(t, "", nil, "sim-llm", "--accuracy", "01", "--help")
	if want := `invalid argument "01" for "--accuracy" flag: 01 has a leading zero`; r.code != 2 || !strings.Contains(r.stderr, want) {
		t.Errorf("--accuracy 01: exit %d, stderr %q; want 2 and %q", r.code, r.stderr, want)
	}
	if r := runPonder(t, "", nil, "sim-llm", "--accuracy", "0.5", "--help"); r.code != 0 {
		t.Errorf("--accuracy 0.5 --help: exit %d, stderr %q; want 0", r.code, r.stderr)
	}
}

// A flag, a PONDER_* variable and a config file refuse the same forms in
// the same words (one rule, config.CheckNumber), only the name in front
// differing: flags refused 00.5 while ponder.yaml read it as 0.5.
func TestFlagsVariablesAndFilesRefuseNumbersAlike(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		in    string
		float bool // a fraction or not a number: float flags and settings only
	}{
		{"010", false}, {"-007", false}, {"00", false},
		{"00.5", true}, {"-01e2", true}, {"NaN", true}, {"-Inf", true},
	} {
		flagErr := checkFloat(tc.in)
		if flagErr == nil {
			t.Errorf("float flag %s: taken", tc.in)
			continue
		}
		want := flagErr.Error()
		if !tc.float {
			if err := checkDecimal(tc.in); err == nil || err.Error() != want {
				t.Errorf("integer flag %s: %v, want %q", tc.in, err, want)
			}
		}
		if _, err := config.Load("", []string{"PONDER_RATE_LIMIT=" + tc.in}); err == nil || err.Error() != "PONDER_RATE_LIMIT: "+want {
			t.Errorf("PONDER_RATE_LIMIT=%s: %v, want %q", tc.in, err, "PONDER_RATE_LIMIT: "+want)
		}
		file := filepath.Join(dir, "ponder.yaml")
		if err := os.WriteFile(file, []byte("llm:\n  temperature: "+tc.in+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := config.Load(file, nil); err == nil || !strings.HasSuffix(err.Error(), ": llm.temperature: "+want) {
			t.Errorf("temperature: %s: %v, want one ending %q", tc.in, err, "llm.temperature: "+want)
		}
	}
}
