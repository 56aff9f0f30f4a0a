package main

import (
	"net"
	"strings"
	"testing"
)

// Values sim.Options would clamp or misread are usage errors naming the
// flag (--accuracy 1.5 ran as 1, --accuracy NaN as a model never right,
// and --error-429 1.5 was reported as "Rate429").
func TestSimLLMFlagValues(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--accuracy", "1.5"}, {"--accuracy", "-0.1"}, {"--accuracy", "NaN"}, {"--spread", "-1"},
		{"--error-429", "1.5"}, {"--error-timeout", "0.6", "--error-malformed", "0.6"}, {"--embedding-dim", "0"},
	} {
		// An address no listener takes: a value let through fails with status 1.
		r := runPonder(t, "", nil, append([]string{"sim-llm", "--addr", "256.0.0.1:0"}, args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, "--"+strings.TrimPrefix(args[len(args)-2], "--")) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and an error naming the flag", args, r.code, r.stderr)
		}
	}
}

// TestSimLLMWarnsOnAnExposedAddress: the simulator has no authentication,
// so an address other hosts can reach is warned about; loopback ones are
// not.
func TestSimLLMWarnsOnAnExposedAddress(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ip   string
		warn bool
	}{
		{"127.0.0.1", false}, {"127.0.0.5", false}, {"::1", false},
		{"0.0.0.0", true}, {"::", true}, {"192.0.2.7", true}, {"2001:db8::1", true},
	} {
		got := exposedWarning(&net.TCPAddr{IP: net.ParseIP(tc.ip), Port: 8090})
		if (got != "") != tc.warn || (tc.warn && !strings.Contains(got, "no authentication")) {
			t.Errorf("%s: warning %q, want one: %v", tc.ip, got, tc.warn)
		}
	}
}
