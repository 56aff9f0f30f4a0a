package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Every integer flag of every command reads decimal numbers only: pflag
// read them in base 0, so --llm-concurrency 010 ran with 8 and 0x10 with
// 16, while ponder.yaml refuses a leading zero and PONDER_* variables read
// decimal. The walk covers flags added later too.
func TestEveryIntegerFlagReadsDecimal(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if _, ok := intFlagTypes[f.Value.Type()]; !ok {
				return
			}
			name := c.CommandPath() + " --" + f.Name
			seen[name] = true
			// Only refused values are set: a value taken would change the
			// variable the flag is bound to, shared with other tests.
			for _, tc := range []struct{ in, want string }{
				{"010", "010 has a leading zero, which could be read as octal (010 is 8); write it without the leading zero: 10"},
				{"-007", "write it without the leading zero: -7"},
				{"00", "write it without the leading zero: 0"},
				{"0x10", "0x10 is not a decimal number; write it in decimal digits: 16"},
				{"0o17", "write it in decimal digits: 15"},
				{"1_000", "write it in decimal digits: 1000"},
				{"12abc", "12abc is not a whole number in decimal digits"},
				{"+-1", "+-1 is not a whole number in decimal digits"},
			} {
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
	for _, want := range []string{"ponder --llm-concurrency", "ponder search --k", "ponder solve --budget-calls", "ponder eval report --pass-k", "ponder sim-llm --seed"} {
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
