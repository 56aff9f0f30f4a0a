// Package text holds the small string helpers that several of Ponder's
// packages need, so that each does not keep its own copy.
package text

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
