package main

import (
	"strings"
	"testing"
)

// Flags Ponder cannot read exit with status 2, as other usage errors do.
func TestBadFlagsAreUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"solve", "--timeout", "soon", "2+2?"},
		{"solve", "--budget-calls", "many", "2+2?"},
		{"solve", "--no-such-flag", "2+2?"},
		{"--llm-concurrency", "lots", "config"},
		{"trace", "list", "--jsn"},
	} {
		r := runPonder(t, "", nil, args...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "ponder: ") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and the error", args, r.code, r.stderr)
		}
	}
}
