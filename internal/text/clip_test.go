package text_test

import (
	"fmt"
	"testing"
	"unicode/utf8"

	"github.com/ponder-rlm/ponder/internal/text"
)

func TestClip(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"", 3, ""},
		{"abc", 3, "abc"},
		{"abcd", 3, "abc…"},
		{"abc", 0, "…"},
		{"abc", -1, "…"},
		{"héllo", 2, "hé…"},
		{"日本語のテキスト", 3, "日本語…"},
		{"日本語", 3, "日本語"},
	}
	for _, tc := range tests {
		got := text.Clip(tc.s, tc.n)
		if got != tc.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("Clip(%q, %d) = %q is not valid UTF-8", tc.s, tc.n, got)
		}
	}
}

func ExampleClip() {
	fmt.Println(text.Clip("a model reply far too long to quote whole", 20))
	fmt.Println(text.Clip("short", 20))
	// Output:
	// a model reply far to…
	// short
}

func TestCount(t *testing.T) {
	for _, c := range []struct {
		n    int
		want string
	}{{0, "0 turns"}, {1, "1 turn"}, {2, "2 turns"}} {
		if got := text.Count(c.n, "turn"); got != c.want {
			t.Errorf("Count(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}

func TestTail(t *testing.T) {
	for _, c := range []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdef", 6, "abcdef"},
		{"abcdef", 2, "[… the first 4 bytes left out]\nef"},
		// A cut inside a UTF-8 sequence moves past it.
		{"aé", 1, "[… the first 3 bytes left out]\n"},
		{"abc", 0, "[… the first 3 bytes left out]\n"},
	} {
		if got := text.Tail(c.s, c.n); got != c.want {
			t.Errorf("Tail(%q, %d) = %q, want %q", c.s, c.n, got, c.want)
		}
	}
}
