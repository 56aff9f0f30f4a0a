package text

import (
	"strings"
	"unicode/utf8"
)

// Terminal returns s made inert for a terminal: what Ponder prints there
// comes from models, tools, documents and traces, and a program that
// prints "\x1b]0;title\x07" or "\x1b[2J" must not retitle or clear the
// user's terminal, nor a "\r" or a backspace overwrite what was printed
// before it, nor a bidi override reorder it (Trojan Source).
//
//   - Escape sequences (CSI such as colours and cursor moves, OSC such as
//     titles and hyperlinks, DCS/SOS/PM/APC strings, two- and three-byte
//     escapes) are removed whole, and so are their C1 forms (U+009B is
//     CSI, U+009D OSC, ...). An unterminated string sequence loses only
//     its introducer: the rest is shown, now harmless.
//   - "\r\n" becomes "\n", and a lone "\r" a line break, so a progress
//     line's states each keep a line instead of hiding one another.
//   - Other C0 controls (all but "\n" and "\t"), DEL and C1 controls are
//     removed, and so are the bidi embeddings, overrides and isolates
//     (U+202A–U+202E, U+2066–U+2069).
//   - Bytes that are not UTF-8 become U+FFFD: a lone 0x9B is CSI to a
//     terminal not in UTF-8 mode.
//
// Everything else, tabs, newlines and all other text, is kept; s itself
// is handed back, without allocating, when there is nothing to change.
// JSON output needs none of this (its encoder escapes controls), and
// files keep what was written.
func Terminal(s string) string {
	i := unsafeAt(s)
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for i < len(s) {
		c := s[i]
		switch {
		case c == '\r':
			b.WriteByte('\n')
			i++
			if i < len(s) && s[i] == '\n' {
				i++
			}
		case c == 0x1b:
			i = skipEscape(s, i+1)
		case c < 0x20 && c != '\n' && c != '\t', c == 0x7f:
			i++
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && size == 1:
				b.WriteRune(utf8.RuneError)
				i++
			case r >= 0x80 && r <= 0x9f:
				i = skipC1(s, r, i+size)
			case isBidiControl(r):
				i += size
			default:
				b.WriteString(s[i : i+size])
				i += size
			}
		}
	}
	return b.String()
}

// unsafeAt is the index of the first byte of s that Terminal changes, or
// len(s).
func unsafeAt(s string) int {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f {
				return i
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || (r >= 0x80 && r <= 0x9f) || isBidiControl(r) {
			return i
		}
		i += size
	}
	return len(s)
}

func isBidiControl(r rune) bool {
	return (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}

// skipEscape returns the index after the escape sequence whose ESC came
// just before i (ECMA-48: ESC then one of its Fe, Fp, Fs or nF forms).
func skipEscape(s string, i int) int {
	if i >= len(s) {
		return i
	}
	switch c := s[i]; {
	case c == '[':
		return skipCSI(s, i+1)
	case c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_':
		return skipString(s, i+1, i+1)
	case c >= 0x20 && c <= 0x2f:
		// nF: intermediate bytes, then a final byte (ESC ( B picks a
		// character set).
		j := i
		for j < len(s) && s[j] >= 0x20 && s[j] <= 0x2f {
			j++
		}
		if j < len(s) && s[j] >= 0x30 && s[j] <= 0x7e {
			return j + 1
		}
		return j
	case c >= 0x30 && c <= 0x7e:
		return i + 1 // ESC c (reset), ESC 7, ESC M, ...
	}
	return i // a lone ESC: the byte after it is shown
}

// skipC1 is skipEscape for a C1 control r that ended just before i.
func skipC1(s string, r rune, i int) int {
	switch r {
	case 0x9b: // CSI
		return skipCSI(s, i)
	case 0x9d, 0x90, 0x98, 0x9e, 0x9f: // OSC, DCS, SOS, PM, APC
		return skipString(s, i, i)
	}
	return i
}

// skipCSI returns the index after a control sequence whose parameters
// start at i: parameter bytes 0x30–0x3F, intermediate bytes 0x20–0x2F, a
// final byte 0x40–0x7E. A sequence cut short ends where it stops being
// one.
func skipCSI(s string, i int) int {
	for i < len(s) && s[i] >= 0x30 && s[i] <= 0x3f {
		i++
	}
	for i < len(s) && s[i] >= 0x20 && s[i] <= 0x2f {
		i++
	}
	if i < len(s) && s[i] >= 0x40 && s[i] <= 0x7e {
		i++
	}
	return i
}

// skipString returns the index after a control string (OSC, DCS, ...)
// whose body starts at i: it ends at BEL, ESC \ or U+009C (ST). One with
// no end returns unterminated: only its introducer goes.
func skipString(s string, i, unterminated int) int {
	for j := i; j < len(s); j++ {
		switch s[j] {
		case 0x07:
			return j + 1
		case '\n', 0x18, 0x1a:
			// A line break (no title or link has one), CAN or SUB: the
			// string was never ended, and what follows is text to show.
			return unterminated
		case 0x1b:
			if j+1 < len(s) && s[j+1] == '\\' {
				return j + 2
			}
			// Another escape starts: the string was never ended.
			return unterminated
		case 0xc2:
			if j+1 < len(s) && s[j+1] == 0x9c {
				return j + 2
			}
		}
	}
	return unterminated
}
