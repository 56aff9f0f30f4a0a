package evaluator

import (
	"fmt"
	"hash/fnv"
	"testing"

	"github.com/ponder-rlm/ponder/core"
)

// promptSeed is written out by hand for speed; it must stay the FNV-1a
// hash it always was, or every recorded run's ratings change.
func TestPromptSeedIsFNV1a(t *testing.T) {
	reference := func(taskSeed int64, msgs []core.Message) int64 {
		h := fnv.New64a()
		fmt.Fprintf(h, "%d|", taskSeed)
		for _, m := range msgs {
			h.Write([]byte(m.Role))
			h.Write([]byte{0})
			h.Write([]byte(m.Content))
			h.Write([]byte{0})
		}
		return int64(h.Sum64() >> 1)
	}
	for _, tc := range []struct {
		seed int64
		msgs []core.Message
	}{
		{0, nil},
		{-42, []core.Message{{Role: "user", Content: ""}}},
		{1 << 62, core.LayoutPrompt("system", "4 9 10 13", []string{"4 + 9 = 13 (left: 10 13 13)", "ünïcode"}, "Evaluate.")},
	} {
		if got, want := promptSeed(tc.seed, tc.msgs), reference(tc.seed, tc.msgs); got != want {
			t.Errorf("promptSeed(%d, %d messages) = %d, want %d", tc.seed, len(tc.msgs), got, want)
		}
	}
}
