package text_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ponder-rlm/ponder/internal/text"
)

func TestTerminal(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "The answer is 42.", "The answer is 42."},
		{"newlines and tabs kept", "a\tb\nc\n", "a\tb\nc\n"},
		{"other scripts kept", "héllo 日本語 مرحبا 🙂", "héllo 日本語 مرحبا 🙂"},
		{"empty", "", ""},

		{"window title (OSC, BEL)", "before\x1b]0;pwned\x07after", "beforeafter"},
		{"window title (OSC, ST)", "a\x1b]2;pwned\x1b\\b", "ab"},
		{"hyperlink (OSC 8)", "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\", "click"},
		{"clipboard write (OSC 52)", "x\x1b]52;c;cm0gLXJmIH4=\x07y", "xy"},
		{"unterminated OSC keeps its text", "a\x1b]0;title", "a0;title"},
		{"OSC cut by a line break", "a\x1b]0;t\nnext line\x07", "a0;t\nnext line"},
		{"OSC cut by another escape", "a\x1b]0;t\x1b[2Jb", "a0;tb"},
		{"DCS", "a\x1bPq#0;2;0;0;0\x1b\\b", "ab"},
		{"APC", "a\x1b_hidden\x1b\\b", "ab"},

		{"clear screen", "\x1b[2J\x1b[Hfake prompt$ ", "fake prompt$ "},
		{"colours", "\x1b[1;31mred\x1b[0m", "red"},
		{"private mode", "\x1b[?1049hx\x1b[?25l", "x"},
		{"cursor up overwrites", "ok\x1b[1A\x1b[2Kforged", "okforged"},
		{"CSI cut short", "a\x1b[12", "a"},
		{"charset (nF)", "a\x1b(0lqk\x1b(B", "alqk"},
		{"reset (Fs)", "a\x1bcb", "ab"},
		{"save cursor (Fp)", "a\x1b7b\x1b8", "ab"},
		{"lone ESC at the end", "a\x1b", "a"},
		{"ESC before a control", "a\x1b\x07b", "ab"},

		{"C1 CSI", "a\u009b2Jb", "ab"},
		{"C1 OSC", "a\u009d0;pwned\u009cb", "ab"},
		{"C1 OSC ended by BEL", "a\u009d0;pwned\x07b", "ab"},
		{"other C1", "a\u0085b\u0084c", "abc"},

		{"bell", "ding\x07", "ding"},
		{"backspaces", "rm -rf ~\b\b\b\b\b\b\b\bls", "rm -rf ~ls"},
		{"NUL, VT, FF, DEL", "a\x00b\vc\fd\x7fe", "abcde"},
		{"CRLF", "one\r\ntwo\r\n", "one\ntwo\n"},
		{"lone CR", "10%\r20%\r100%", "10%\n20%\n100%"},
		{"CR hiding a line", "safe\rEVIL", "safe\nEVIL"},

		{"bidi override", "access\u202e//\u202dlevel", "access//level"},
		{"bidi isolates", "\u2066a\u2067b\u2068c\u2069", "abc"},
		{"bidi marks kept", "a\u200fb\u200ec", "a\u200fb\u200ec"},

		{"invalid UTF-8", "a\x9b2Jb\xffc", "a\ufffd2Jb\ufffdc"},
		{"cut UTF-8", "é\xc3", "é\ufffd"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := text.Terminal(tc.in)
			if got != tc.want {
				t.Errorf("Terminal(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if !utf8.ValidString(got) {
				t.Errorf("Terminal(%q) = %q is not UTF-8", tc.in, got)
			}
			if again := text.Terminal(got); again != got {
				t.Errorf("Terminal is not idempotent: %q, then %q", got, again)
			}
		})
	}
}

// Whatever comes in, nothing that a terminal acts on comes out.
func FuzzTerminal(f *testing.F) {
	for _, s := range []string{"\x1b]0;x\x07", "\x1b[2J", "a\u009b1mb", "\u202e", "\r\n", "\xc2", "\x1b\x1b[", "\x1bP\x1b\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := text.Terminal(s)
		if !utf8.ValidString(got) {
			t.Fatalf("Terminal(%q) = %q is not UTF-8", s, got)
		}
		for _, r := range got {
			if (r < 0x20 && r != '\n' && r != '\t') || (r >= 0x7f && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
				t.Fatalf("Terminal(%q) = %q keeps %U", s, got, r)
			}
		}
		if again := text.Terminal(got); again != got {
			t.Fatalf("Terminal(%q) = %q, then %q", s, got, again)
		}
	})
}

// Text with nothing to change is handed back as it is.
func TestTerminalKeepsCleanTextWithoutAllocating(t *testing.T) {
	s := strings.Repeat("The sum is 3 + 4 = 7; \\boxed{7}\n\tnext — ü 日本\n", 20)
	if allocs := testing.AllocsPerRun(20, func() { _ = text.Terminal(s) }); allocs != 0 {
		t.Fatalf("Terminal allocates %v times for clean text", allocs)
	}
}

func BenchmarkTerminal(b *testing.B) {
	clean := strings.Repeat("The sum is 3 + 4 = 7; \\boxed{7}\n", 100)
	dirty := strings.Repeat("\x1b[1;31mred\x1b[0m and \r\n", 100)
	b.Run("clean", func(b *testing.B) {
		b.SetBytes(int64(len(clean)))
		for b.Loop() {
			_ = text.Terminal(clean)
		}
	})
	b.Run("escapes", func(b *testing.B) {
		b.SetBytes(int64(len(dirty)))
		for b.Loop() {
			_ = text.Terminal(dirty)
		}
	})
}
