package core

import (
	"hash/fnv"
	"testing"
)

// Env.Seed is written out by hand for speed; it must stay the FNV-1a hash
// it always was, or every recorded run asks different questions.
func TestEnvSeedIsFNV1a(t *testing.T) {
	reference := func(parts ...int64) int64 {
		h := fnv.New64a()
		var b [8]byte
		for _, v := range parts {
			for i := range b {
				b[i] = byte(v >> (8 * i))
			}
			h.Write(b[:])
		}
		return int64(h.Sum64() >> 1)
	}
	for _, parts := range [][]int64{{0}, {7, -1, 3}, {-1 << 63, 1<<63 - 1}, {1000, 0, 0, 0, 5}} {
		env := &Env{Task: Task{Seed: parts[0]}}
		if got, want := env.Seed(parts[1:]...), reference(parts...); got != want {
			t.Errorf("Seed%v = %d, want %d", parts, got, want)
		}
	}
}
