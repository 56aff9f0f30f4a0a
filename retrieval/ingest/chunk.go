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
//
// A document with more sections than sectionBudget allows (sections that
// average under minSectionBytes: a file of one-line headings) is packed
// instead: neighbouring sections share chunks of up to Size bytes, so its
// chunk count follows its size rather than its line count (see
// chunkDoc).
func Chunk(ex Extracted, o ChunkOptions) []retrieval.Chunk {
	out, _ := chunkDoc(ex, o)
	return out
}

// Sections are packed when a document has more than sectionSlack +
// bytes/minSectionBytes of them. Every chunk costs about a kilobyte to
// store and several to build and index, whatever its text, so a file of
// one-line headings (a few bytes a section) cost about 100 times its
// size in memory and 300 times in the store. Real documents stay well
// clear: of 769 Markdown files on a development machine (READMEs,
// changelogs, API references, up to 1 MiB) none averaged under 140
// bytes a chunk, the large ones 600 to 900.
const (
	sectionSlack    = 256
	minSectionBytes = 128
)

// sectionBudget is how many sections a document of n bytes may make
// chunks of before they are packed.
func sectionBudget(n int, o ChunkOptions) int {
	return sectionSlack + n/min(minSectionBytes, o.Size/4)
}

// chunkDoc is Chunk, also saying whether the document's sections were
// packed (and how many there were).
func chunkDoc(ex Extracted, o ChunkOptions) (out []retrieval.Chunk, packedSections int) {
	o = o.norm()
	// A section's heading trail is its heading and the headings it lies
	// under: parent links, turned into strings only for the chunks made,
	// so that a document of millions of headings does not first hold a
	// trail for each.
	parent := make([]int, len(ex.Heads))
	depth := make([]int, len(ex.Heads))
	type section struct {
		start, end int
		head       int // index in ex.Heads of the innermost heading it lies under; -1: none
		headEnd    int // end of the heading line the section starts with
	}
	var secs []section
	var stack []int
	pos, cur, headEnd := 0, -1, -1
	for i, h := range ex.Heads {
		if h.Start > pos {
			secs = append(secs, section{pos, h.Start, cur, headEnd})
		}
		for len(stack) > 0 && ex.Heads[stack[len(stack)-1]].Level >= h.Level {
			stack = stack[:len(stack)-1]
		}
		parent[i] = -1
		if len(stack) > 0 {
			parent[i] = stack[len(stack)-1]
		}
		stack = append(stack, i)
		depth[i] = len(stack)
		pos, cur, headEnd = h.Start, i, h.End
	}
	secs = append(secs, section{pos, len(ex.Text), cur, headEnd})
	depthOf := func(h int) int {
		if h < 0 {
			return 0
		}
		return depth[h]
	}
	// The pieces of a section (and of its page-split parts) share its
	// trail; only the last one made is kept.
	lastHead, lastTrail := -2, []string(nil)
	trail := func(h int) []string {
		if h == lastHead {
			return lastTrail
		}
		t := make([]string, depthOf(h))
		for j, k := len(t)-1, h; j >= 0; j, k = j-1, parent[k] {
			t[j] = ex.Heads[k].Text
		}
		lastHead, lastTrail = h, t
		return t
	}
	// Pages are structure too: no chunk spans two pages.
	if len(ex.Pages) > 0 {
		var split []section
		for _, s := range secs {
			for _, p := range ex.Pages {
				if p > s.start && p < s.end {
					split = append(split, section{s.start, p, s.head, s.headEnd})
					s.start = p
				}
			}
			split = append(split, s)
		}
		secs = split
	}
	// skip: a heading with no text under it is not a chunk of its own
	// when sections below it carry it in their trail; with none below it
	// (a document of headings only, an empty last section) its text would
	// be found nowhere, so it is kept.
	skip := func(i int) bool {
		s := secs[i]
		return s.headEnd > s.start && s.headEnd <= s.end && strings.TrimSpace(ex.Text[s.headEnd:s.end]) == "" &&
			i+1 < len(secs) && depthOf(secs[i+1].head) > depthOf(s.head)
	}
	add := func(start, end int, trail []string) {
		text := ex.Text[start:end]
		c := retrieval.Chunk{Ordinal: len(out), Text: text, Headings: trail, Start: start, End: end,
			Meta: map[string]string{retrieval.MetaType: ex.Type}}
		if len(ex.Pages) > 0 {
			page := sort.SearchInts(ex.Pages, start+1) + 1
			c.Meta[retrieval.MetaPage] = strconv.Itoa(page)
		}
		out = append(out, c)
	}
	kept := 0
	for i, s := range secs {
		if !skip(i) && strings.TrimSpace(ex.Text[s.start:s.end]) != "" {
			kept++
		}
	}
	if kept <= sectionBudget(len(ex.Text), o) {
		for i, s := range secs {
			if skip(i) {
				continue
			}
			for _, r := range splitRange(ex.Text, s.start, s.end, ex.Breaks, o) {
				add(r[0], r[1], trail(s.head))
			}
		}
		return out, 0
	}
	// Packed: runs of neighbouring sections share a chunk of up to Size
	// bytes, under the headings they all lie under (each one's own
	// heading is in the chunk's text); a section longer than Size is cut
	// as before. Any two neighbouring packed chunks hold more than Size
	// bytes together, so a document makes at most about 2*bytes/Size
	// chunks. Pages are packed together too (a chunk's page is the one it
	// starts on): a PDF of many near-empty pages would otherwise be the
	// same file of tiny sections.
	common := func(a, b int) int {
		for depthOf(a) > depthOf(b) {
			a = parent[a]
		}
		for depthOf(b) > depthOf(a) {
			b = parent[b]
		}
		for a != b {
			a, b = parent[a], parent[b]
		}
		return a
	}
	gStart, gEnd, gHead := -1, -1, -1
	flush := func() {
		if gStart >= 0 {
			for _, r := range splitRange(ex.Text, gStart, gEnd, ex.Breaks, o) {
				add(r[0], r[1], trail(gHead))
			}
		}
		gStart = -1
	}
	for _, s := range secs {
		switch {
		case s.end-s.start > o.Size:
			flush()
			for _, r := range splitRange(ex.Text, s.start, s.end, ex.Breaks, o) {
				add(r[0], r[1], trail(s.head))
			}
		case gStart >= 0 && s.end-gStart <= o.Size:
			gEnd, gHead = s.end, common(gHead, s.head)
		default:
			flush()
			gStart, gEnd, gHead = s.start, s.end, s.head
		}
	}
	flush()
	return out, kept
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
