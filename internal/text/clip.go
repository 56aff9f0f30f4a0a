// Package text holds the small string helpers that several of Ponder's
// packages need, so that each does not keep its own copy.
package text

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Clip returns s when it has at most n runes, else its first n runes
// followed by "…": for quoting user input, model output or file contents in
// error messages and summaries. It never splits a UTF-8 sequence.
func Clip(s string, n int) string {
	n = max(n, 0)
	runes := 0
	for i := range s {
		if runes == n {
			return s[:i] + "…"
		}
		runes++
	}
	return s
}

// Tail returns s when it has at most n bytes, else about its last n bytes
// (never splitting a UTF-8 sequence) after a line saying how many bytes
// were left out: for output whose end says what went wrong (a traceback).
func Tail(s string, n int) string {
	n = max(n, 0)
	if len(s) <= n {
		return s
	}
	i := len(s) - n
	for i < len(s) && !utf8.RuneStart(s[i]) {
		i++
	}
	return "[… the first " + strconv.Itoa(i) + " bytes left out]\n" + s[i:]
}

// OneLine is strings.Join(strings.Fields(s), " "): s on one line, its runs
// of white space one space each, trimmed. It hands back s itself, without
// allocating, when s is already so (the usual step of a search, compared
// with its siblings' for every new node).
func OneLine(s string) string {
	space := true // a leading space is not allowed
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if unicode.IsSpace(r) {
				return strings.Join(strings.Fields(s), " ")
			}
			i += size
			space = false
			continue
		}
		isSpace := c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
		if isSpace && (space || c != ' ') {
			return strings.Join(strings.Fields(s), " ")
		}
		space = isSpace
		i++
	}
	if space && len(s) > 0 {
		return strings.Join(strings.Fields(s), " ") // a trailing space
	}
	return s
}

// Count writes n and noun, adding an s unless n is 1: "1 turn", "3 turns".
func Count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
