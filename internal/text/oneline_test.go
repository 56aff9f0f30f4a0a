package text_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/internal/text"
)

// OneLine must say what strings.Join(strings.Fields(s), " ") says, and
// hand back s itself when s is already so.
func TestOneLineIsFieldsJoined(t *testing.T) {
	cases := []string{"", " ", "a", "a b", " a", "a ", "a  b", "a\tb", "a\nb", "3 + 4 = 7 (left: 7 9)",
		"a\u00a0b", "a\u2003 b", "ü b", "a \r\n", "\v", "x\fy"}
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "b", " ", "  ", "\t", "\n", "\u00a0", "é", "7"}
	for i := 0; i < 2000; i++ {
		var b strings.Builder
		for j := r.IntN(8); j > 0; j-- {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		cases = append(cases, b.String())
	}
	for _, s := range cases {
		want := strings.Join(strings.Fields(s), " ")
		got := text.OneLine(s)
		if got != want {
			t.Fatalf("OneLine(%q) = %q, want %q", s, got, want)
		}
		if got == s && len(s) > 0 && strings.Join(strings.Fields(s), " ") == s {
			if allocs := testing.AllocsPerRun(10, func() { _ = text.OneLine(s) }); allocs != 0 {
				t.Fatalf("OneLine(%q) allocates %v times for a string that is already one-spaced", s, allocs)
			}
		}
	}
}
