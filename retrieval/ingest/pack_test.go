package ingest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/retrieval"
)

// headings returns a Markdown document of n one-line sections made by line.
func headings(n int, line func(i int) string) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(line(i))
	}
	return b.String()
}

// A document of tiny sections (one-line headings) is packed into chunks of
// up to Size bytes: its chunk count follows its bytes, not its lines
// (3 million one-line headings made 3 million chunks, 9.5 GB of memory and
// a 3.2 GB store). Every byte of text is still in a chunk, and a packed
// chunk carries the headings all its sections lie under.
func TestTinySectionsArePacked(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		doc   string
		trail []string // every packed chunk's heading trail
	}{
		{"one-line headings", headings(5000, func(i int) string { return fmt.Sprintf("# h%05d\n", i) }), []string{}},
		{"tiny sections under a title", "# Changelog\n\n" + headings(5000, func(i int) string {
			return fmt.Sprintf("## v%d\n- fix %d\n", i, i)
		}), []string{"Changelog"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex := extractMarkdown(tc.doc)
			ex.Type = "md"
			o := ChunkOptions{}.norm()
			chunks, packed := chunkDoc(ex, o)
			if packed < 5000 {
				t.Errorf("packed = %d, want the document's 5000+ sections", packed)
			}
			if max := 2*len(tc.doc)/o.Size + 1; len(chunks) > max {
				t.Fatalf("%d chunks from %d bytes, want at most %d", len(chunks), len(tc.doc), max)
			}
			covered := 0
			for i, c := range chunks {
				if len(c.Text) > o.Size || tc.doc[c.Start:c.End] != c.Text || c.Ordinal != i {
					t.Fatalf("chunk %d: %d bytes (limit %d), offsets %d..%d, ordinal %d", i, len(c.Text), o.Size, c.Start, c.End, c.Ordinal)
				}
				if c.Start < covered {
					t.Fatalf("chunk %d starts at %d, inside the one before (to %d)", i, c.Start, covered)
				}
				if strings.TrimSpace(tc.doc[covered:c.Start]) != "" {
					t.Fatalf("text %q before chunk %d is in no chunk", tc.doc[covered:c.Start], i)
				}
				covered = c.End
				if i > 0 && !slices.Equal(c.Headings, tc.trail) {
					t.Errorf("chunk %d headings %q, want %q", i, c.Headings, tc.trail)
				}
			}
			if strings.TrimSpace(tc.doc[covered:]) != "" {
				t.Errorf("the end of the document %q is in no chunk", tc.doc[covered:])
			}
			if got := Chunk(ex, o); len(got) != len(chunks) {
				t.Errorf("Chunk gives %d chunks, chunkDoc %d", len(got), len(chunks))
			}
		})
	}
}

// A section longer than Size among tiny ones is cut as before (with its own
// trail), and the tiny ones around it are packed.
func TestPackingKeepsLongSections(t *testing.T) {
	t.Parallel()
	long := "# Long\n\n" + strings.Repeat("The long section says something. ", 100) + "\n"
	doc := headings(3000, func(i int) string { return fmt.Sprintf("# a%d\n", i) }) + long +
		headings(3000, func(i int) string { return fmt.Sprintf("# b%d\n", i) })
	ex := extractMarkdown(doc)
	ex.Type = "md"
	chunks, packed := chunkDoc(ex, ChunkOptions{})
	if packed == 0 {
		t.Fatal("not packed")
	}
	var inLong int
	for _, c := range chunks {
		if len(c.Text) > 1200 {
			t.Errorf("chunk %d has %d bytes", c.Ordinal, len(c.Text))
		}
		if strings.Contains(c.Text, "The long section") {
			inLong++
			if !slices.Equal(c.Headings, []string{"Long"}) || strings.Contains(c.Text, "# a") || strings.Contains(c.Text, "# b") {
				t.Errorf("long section's chunk %q has headings %q or holds a packed section", c.Text[:40], c.Headings)
			}
		}
	}
	if inLong < 3 {
		t.Errorf("the long section (%d bytes) is in %d chunks, want it cut into several", len(long), inLong)
	}
}

// Real documents are not packed: a changelog of short entries (about 140
// bytes each, the shortest average seen in hundreds of real Markdown
// files) keeps one chunk per entry.
func TestShortRealSectionsAreNotPacked(t *testing.T) {
	t.Parallel()
	doc := "# Changelog\n\n" + headings(2000, func(i int) string {
		return fmt.Sprintf("## 1.%d.0 / 2024-01-%02d\n\n  * Fix the handling of option %d when it is set twice\n  * Update dependencies to their latest patch releases\n\n", i, i%28+1, i)
	})
	ex := extractMarkdown(doc)
	ex.Type = "md"
	chunks, packed := chunkDoc(ex, ChunkOptions{})
	if packed != 0 || len(chunks) != 2000 {
		t.Fatalf("%d chunks (packed %d) from 2000 entries averaging %d bytes, want one chunk per entry", len(chunks), packed, len(doc)/2000)
	}
	if c := chunks[7]; !slices.Equal(c.Headings, []string{"Changelog", "1.7.0 / 2024-01-08"}) {
		t.Errorf("chunk 7 headings %q", c.Headings)
	}
}

// Ingest says when it packed a document's sections (the file's note), and
// stores the packed chunks.
func TestIngestNotesPackedSections(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "heads.md")
	if err := os.WriteFile(p, []byte(headings(20000, func(i int) string { return fmt.Sprintf("# h%06d\n", i) })), 0o644); err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	sum, err := New(st, &Options{Collection: "c"}).Run(t.Context(), []string{p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := sum.Files[0]
	if f.Status != Added || f.Chunks > 2*200000/1200+1 ||
		!strings.Contains(f.Note, "its 20000 sections average 10 bytes (under 128): neighbouring sections were packed into") {
		t.Fatalf("file %+v: want it added, packed into few chunks, with a note saying so", f)
	}
	info, err := st.Collection(t.Context(), "c")
	if err != nil || info.Chunks != f.Chunks {
		t.Fatalf("collection %+v, %v: want %d chunks", info, err, f.Chunks)
	}
}

// Each chunk counts towards a transaction besides its text: documents with
// many tiny sections (below the packing threshold) are stored in several
// transactions, not all in one because their text is small.
func TestBatchesCountChunks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for d := range 20 {
		doc := headings(200, func(i int) string { return fmt.Sprintf("# s%d\n", i) })
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("d%02d.md", d)), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	batches := 0
	sum, err := New(openStore(t), &Options{Collection: "c", BatchBytes: 64 << 10, OnStored: func([]string) { batches++ }}).
		Run(t.Context(), []string{dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// 200 chunks of a few bytes each: about 100 KiB of records a document.
	if sum.Added != 20 || sum.Chunks != 4000 || batches < 20 {
		t.Fatalf("%d added, %d chunks, in %d transactions: want 20 documents of 200 chunks, one a transaction", sum.Added, sum.Chunks, batches)
	}
}

// A document stored with a chunk per tiny section, before such documents
// were packed, is chunked again on the next ingest although its bytes and
// settings did not change, and says so; it is then unchanged, as is every
// document whose chunks fit its size (the other tests' second runs).
func TestDocumentChunkedBeforePackingIsChunkedAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	text := headings(5000, func(i int) string { return fmt.Sprintf("# h%d\n", i) })
	path := filepath.Join(dir, "lines.md")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	ing := New(st, &Options{Collection: "c"})
	// What ingest stored before packing: one chunk a heading.
	old := retrieval.Document{Source: path, Hash: retrieval.HashBytes([]byte(text)), Params: ing.Params(), Bytes: int64(len(text))}
	for i := range 5000 {
		old.Chunks = append(old.Chunks, retrieval.Chunk{Text: fmt.Sprintf("# h%d", i)})
	}
	if _, err := st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: "c"}); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, "c", []retrieval.Document{old}); err != nil {
		t.Fatal(err)
	}
	sum, err := ing.Run(ctx, []string{path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := sum.Files[0]
	if f.Status != Updated || f.Chunks > 100 || !strings.HasPrefix(f.Note, "chunked again: it was stored before documents of tiny sections were packed, with 5000 chunks") {
		t.Fatalf("old chunks: %+v", f)
	}
	if sum, err := ing.Run(ctx, []string{path}, nil); err != nil || sum.Unchanged != 1 {
		t.Fatalf("packed, it is chunked again on every run: %+v %v", sum, err)
	}
}
