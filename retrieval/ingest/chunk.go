package ingest

import (
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ponder-rlm/ponder/retrieval"
)

// ChunkOptions bound chunk sizes.
type ChunkOptions struct {
	// Size is the most characters (bytes) in a chunk (default 1200).
	Size int
	// Overlap is how many characters a chunk repeats from the one before
	// it in the same section (default 150; less than Size/2).
	Overlap int
}

func (o ChunkOptions) norm() ChunkOptions {
	if o.Size <= 0 {
		o.Size = 1200
	}
	if o.Size < 64 {
		o.Size = 64
	}
	if o.Overlap < 0 {
		o.Overlap = 0
	}
	if o.Overlap == 0 && o.Size == 1200 {
		o.Overlap = 150
	}
	if o.Overlap > o.Size/2 {
		o.Overlap = o.Size / 2
	}
	return o
}

// Chunk splits an extracted document by its structure: every heading
// starts a section, and a section longer than Size is cut at paragraph
// breaks, else sentence ends, else spaces, with Overlap characters
// repeated between neighbouring pieces. Each chunk carries its heading
// trail, byte offsets in ex.Text and, for PDFs, its page.
func Chunk(ex Extracted, o ChunkOptions) []retrieval.Chunk {
	o = o.norm()
	type section struct {
		start, end int
		trail      []string
		headEnd    int // end of the heading line the section starts with
	}
	var secs []section
	var trail []Head
	trailText := func() []string {
		out := make([]string, len(trail))
		for i, h := range trail {
			out[i] = h.Text
		}
		return out
	}
	pos, headEnd := 0, -1
	for _, h := range ex.Heads {
		if h.Start > pos {
			secs = append(secs, section{pos, h.Start, trailText(), headEnd})
		}
		for len(trail) > 0 && trail[len(trail)-1].Level >= h.Level {
			trail = trail[:len(trail)-1]
		}
		trail = append(trail, h)
		pos, headEnd = h.Start, h.End
	}
	secs = append(secs, section{pos, len(ex.Text), trailText(), headEnd})
	// Pages are structure too: no chunk spans two pages.
	if len(ex.Pages) > 0 {
		var split []section
		for _, s := range secs {
			for _, p := range ex.Pages {
				if p > s.start && p < s.end {
					split = append(split, section{s.start, p, s.trail, s.headEnd})
					s.start = p
				}
			}
			split = append(split, s)
		}
		secs = split
	}
	var out []retrieval.Chunk
	for i, s := range secs {
		// A heading with no text under it is not a chunk of its own when
		// sections below it carry it in their trail; with none below it
		// (a document of headings only, an empty last section) its text
		// would be found nowhere, so it is kept.
		if s.headEnd > s.start && s.headEnd <= s.end && strings.TrimSpace(ex.Text[s.headEnd:s.end]) == "" &&
			i+1 < len(secs) && len(secs[i+1].trail) > len(s.trail) {
			continue
		}
		for _, r := range splitRange(ex.Text, s.start, s.end, ex.Breaks, o) {
			text := ex.Text[r[0]:r[1]]
			c := retrieval.Chunk{Ordinal: len(out), Text: text, Headings: s.trail, Start: r[0], End: r[1],
				Meta: map[string]string{"type": ex.Type}}
			if len(ex.Pages) > 0 {
				page := sort.SearchInts(ex.Pages, r[0]+1) + 1
				c.Meta["page"] = strconv.Itoa(page)
			}
			out = append(out, c)
		}
	}
	return out
}

// splitRange cuts text[start:end] into trimmed pieces of at most o.Size
// bytes, returned as [start, end) offsets.
func splitRange(text string, start, end int, breaks []int, o ChunkOptions) [][2]int {
	var out [][2]int
	emit := func(a, b int) {
		for a < b && isSpaceByte(text[a]) {
			a++
		}
		for b > a && isSpaceByte(text[b-1]) {
			b--
		}
		if a < b {
			out = append(out, [2]int{a, b})
		}
	}
	pos := start
	for pos < end {
		for pos < end && isSpaceByte(text[pos]) {
			pos++
		}
		if end-pos <= o.Size {
			emit(pos, end)
			break
		}
		limit := pos + o.Size
		cut := bestCut(text, pos, limit, breaks)
		emit(pos, cut)
		next := cut - o.Overlap
		if next <= pos {
			next = cut
		}
		// Start the overlap at a word.
		for next < cut && !isSpaceByte(text[next-1]) {
			next++
		}
		pos = next
	}
	return out
}

// bestCut picks where to end a piece starting at pos that may not pass
// limit: the last paragraph break after the middle, else the last sentence
// end, else the last space, else limit on a rune boundary.
func bestCut(text string, pos, limit int, breaks []int) int {
	mid := pos + (limit-pos)/2
	i := sort.SearchInts(breaks, limit+1) - 1
	if i >= 0 && breaks[i] > mid && breaks[i] <= limit {
		return breaks[i]
	}
	seg := text[mid:limit]
	best := -1
	for _, sep := range []string{". ", "? ", "! ", ".\n", "\n"} {
		if j := strings.LastIndex(seg, sep); j >= 0 && mid+j+len(sep) > best {
			best = mid + j + len(sep)
		}
	}
	if best > mid {
		return best
	}
	if j := strings.LastIndexFunc(seg, unicode.IsSpace); j >= 0 {
		// After the whole space: U+00A0 and U+3000 are more than a byte.
		_, n := utf8.DecodeRuneInString(seg[j:])
		return mid + j + n
	}
	for limit > pos && !utf8.RuneStart(text[limit]) {
		limit--
	}
	return limit
}

func isSpaceByte(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' }
