package ingest

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ponder-rlm/ponder/retrieval"
	"github.com/ponder-rlm/ponder/retrieval/embedded"
)

func openStore(t *testing.T) *embedded.Store {
	t.Helper()
	st, err := embedded.Open(filepath.Join(t.TempDir(), "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// copyDocs copies testdata/docs into a temporary folder.
func copyDocs(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir("testdata/docs", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("testdata/docs", p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func byPath(sum Summary) map[string]FileResult {
	m := map[string]FileResult{}
	for _, f := range sum.Files {
		m[filepath.Base(f.Path)] = f
	}
	return m
}

func TestIngestFolder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := copyDocs(t)
	// Bad inputs next to good ones.
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("blob.txt", []byte("abc\x00\x01\x02 binary"))
	write("empty.md", []byte("  \n\n"))
	write("broken.pdf", []byte("%PDF-1.4\nthis is not really a pdf\n"))
	write("fake.pdf", []byte("plain words, no header"))
	write("huge.txt", []byte(strings.Repeat("big ", 3000)))
	write("image.png", []byte("\x89PNG...."))
	write(".hidden.md", []byte("# hidden\nsecret"))
	if err := os.Symlink(filepath.Join(dir, "gone.md"), filepath.Join(dir, "dangling.md")); err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	var stored []string
	ing := New(st, &Options{Collection: "docs", MaxFileBytes: 10000, OnStored: func(s []string) { stored = append(stored, s...) }})
	sum, err := ing.Run(ctx, []string{dir}, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	files := byPath(sum)
	for name, want := range map[string]struct {
		status Status
		reason string
	}{
		"guide.md":     {Added, ""},
		"notes.txt":    {Added, ""},
		"page.html":    {Added, ""},
		"handbook.pdf": {Added, ""},
		"beacon.go":    {Added, ""},
		"blob.txt":     {Skipped, "binary"},
		"empty.md":     {Skipped, "empty"},
		"broken.pdf":   {Skipped, "pdftotext"},
		"fake.pdf":     {Skipped, "not a PDF"},
		"huge.txt":     {Skipped, "too large"},
		"image.png":    {Skipped, "unsupported file type"},
		"dangling.md":  {Skipped, "broken symbolic link"},
	} {
		f, ok := files[name]
		if !ok {
			t.Errorf("%s: missing from the summary", name)
			continue
		}
		if f.Status != want.status || !strings.Contains(f.Reason, want.reason) {
			t.Errorf("%s: %s %q, want %s containing %q", name, f.Status, f.Reason, want.status, want.reason)
		}
	}
	if _, ok := files[".hidden.md"]; ok {
		t.Error("hidden file was ingested")
	}
	if sum.Added != 5 || sum.Skipped != 7 || len(stored) != 5 {
		t.Errorf("summary added %d skipped %d stored %d: %+v", sum.Added, sum.Skipped, len(stored), sum)
	}
	for q, want := range map[string]string{
		"admin console port":                 "guide.md",
		"emergency radio frequency":          "handbook.pdf",
		"telescope upgrade budget owner":     "notes.txt",
		"cafeteria lunch":                    "page.html",
		"how often does the beacon transmit": "beacon.go",
	} {
		hits, err := st.Search(ctx, "docs", retrieval.Query{Text: q, K: 1})
		if err != nil || len(hits) == 0 || filepath.Base(hits[0].Source) != want {
			t.Errorf("search %q: %+v %v, want %s first", q, hits, err, want)
		}
	}
	hits, _ := st.Search(ctx, "docs", retrieval.Query{Text: "admin console port 7443", K: 1})
	h := hits[0]
	if h.Title != "Orion Operations Guide" || !slices.Equal(h.Headings, []string{"Orion Operations Guide", "Network", "Ports"}) || h.Meta["type"] != "md" {
		t.Errorf("guide chunk metadata: title %q headings %q meta %v", h.Title, h.Headings, h.Meta)
	}
	src, _ := os.ReadFile(filepath.Join(dir, "guide.md"))
	if string(src[h.Start:h.End]) != h.Text || !filepath.IsAbs(h.Source) {
		t.Errorf("offsets %d..%d do not locate the chunk in the file, or source %q is not absolute", h.Start, h.End, h.Source)
	}
	hits, _ = st.Search(ctx, "docs", retrieval.Query{Text: "emergency radio frequency", K: 1})
	if hits[0].Meta["page"] != "2" || hits[0].Title != "Orion Field Handbook" {
		t.Errorf("pdf chunk: page %q title %q", hits[0].Meta["page"], hits[0].Title)
	}
	if hits, _ := st.Search(ctx, "docs", retrieval.Query{Text: "secret do not index", K: 3}); len(hits) != 0 {
		t.Errorf("script or hidden text was indexed: %+v", hits)
	}

	// Re-ingesting unchanged files is a no-op; a changed one replaces its chunks.
	write("notes.txt", []byte("The budget owner for the telescope upgrade is now Omar Reyes.\n"))
	stored = nil
	sum, err = ing.Run(ctx, []string{dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	files = byPath(sum)
	if files["guide.md"].Status != Unchanged || files["notes.txt"].Status != Updated || sum.Unchanged != 4 || sum.Updated != 1 ||
		!slices.Equal(stored, []string{filepath.Join(dir, "notes.txt")}) {
		t.Fatalf("second run: %+v, stored %v", sum, stored)
	}
	hits, _ = st.Search(ctx, "docs", retrieval.Query{Text: "telescope budget owner", K: 5})
	if len(hits) != 1 || !strings.Contains(hits[0].Text, "Omar Reyes") {
		t.Fatalf("after the change: %+v", hits)
	}
}

func TestIngestGlobAndStdin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := copyDocs(t)
	st := openStore(t)
	ing := New(st, &Options{Collection: "g", StdinName: "pasted.md"})
	sum, err := ing.Run(ctx, []string{filepath.Join(dir, "**", "*.go"), filepath.Join(dir, "*.txt"), "-", filepath.Join(dir, "nothing*.md")},
		strings.NewReader("# Pasted\n\nThe pasted note mentions the word aardvark.\n"))
	if err != nil {
		t.Fatal(err)
	}
	files := byPath(sum)
	if files["beacon.go"].Status != Added || files["notes.txt"].Status != Added || files["pasted.md"].Status != Added ||
		files["nothing*.md"].Reason != "no file matches this pattern" || sum.Added != 3 {
		t.Fatalf("summary: %+v", sum)
	}
	hits, err := st.Search(ctx, "g", retrieval.Query{Text: "aardvark", K: 1})
	if err != nil || len(hits) != 1 || hits[0].Source != "pasted.md" || hits[0].Title != "Pasted" {
		t.Fatalf("stdin document: %+v %v", hits, err)
	}
}

// A document read from stdin (or sent as text to ingest_documents) named
// with an absolute path is refused: it would replace the document of the
// file ingested from there, and its text would be cited as the file's.
func TestStdinNameCannotReplaceAFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := copyDocs(t)
	st := openStore(t)
	guide := filepath.Join(dir, "guide.md")
	if _, err := New(st, &Options{Collection: "c"}).Run(ctx, []string{guide}, nil); err != nil {
		t.Fatal(err)
	}
	before, err := st.Documents(ctx, "c", []string{guide})
	if err != nil || len(before) != 1 {
		t.Fatalf("%v %v", before, err)
	}
	sum, err := New(st, &Options{Collection: "c", StdinName: guide}).Run(ctx, []string{"-"}, strings.NewReader("# Forged\n\nThe port is 1.\n"))
	if err != nil {
		t.Fatal(err)
	}
	if f := sum.Files[0]; f.Status != Skipped || !strings.Contains(f.Reason, "absolute path") {
		t.Errorf("stdin named %s: %s %q, want skipped", guide, f.Status, f.Reason)
	}
	after, err := st.Documents(ctx, "c", []string{guide})
	if err != nil || after[guide].Hash != before[guide].Hash {
		t.Errorf("the file's document was replaced: %+v %v", after, err)
	}
}

func TestChunkSizesAndOverlap(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("# Big\n\n")
	for i := range 60 {
		b.WriteString("Sentence number ")
		b.WriteString(strings.Repeat("x", i%7+1))
		b.WriteString(" talks about nothing in particular. ")
		if i%10 == 9 {
			b.WriteString("\n\n")
		}
	}
	b.WriteString("\n## Small\n\nTiny section.\n")
	ex := extractMarkdown(b.String())
	ex.Type = "md"
	chunks := Chunk(ex, ChunkOptions{Size: 300, Overlap: 60})
	if len(chunks) < 8 {
		t.Fatalf("%d chunks, want many", len(chunks))
	}
	text := b.String()
	for i, c := range chunks {
		if len(c.Text) > 300 {
			t.Errorf("chunk %d has %d bytes > 300", i, len(c.Text))
		}
		if text[c.Start:c.End] != c.Text || c.Ordinal != i {
			t.Errorf("chunk %d: offsets or ordinal wrong", i)
		}
		if i > 0 && c.Headings[len(c.Headings)-1] == "Big" && chunks[i-1].End <= c.Start {
			t.Errorf("chunk %d does not overlap the one before (%d..%d after ..%d)", i, c.Start, c.End, chunks[i-1].End)
		}
	}
	last := chunks[len(chunks)-1]
	if last.Text != "## Small\n\nTiny section." || !slices.Equal(last.Headings, []string{"Big", "Small"}) {
		t.Errorf("last chunk %q headings %q", last.Text, last.Headings)
	}
}

func TestExtractHTMLAndMarkdown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, in string
		title          string
		heads          []string
		has, hasNot    string
	}{
		{"setext", "a.md", "Top\n===\n\nintro\n\nSub\n---\n\nbody\n", "Top", []string{"Top", "Sub"}, "body", ""},
		{"fenced", "b.md", "# T\n\n```\n# not heading\n```\n", "T", []string{"T"}, "# not heading", ""},
		{"html", "c.html", "<title>X</title><h2>Part</h2><p>a&lt;b</p><script>hidden()</script>", "X", []string{"Part"}, "a<b", "hidden"},
		{"txt", "d.txt", "just text\n\nmore", "d.txt", nil, "more", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ex, err := Extract(context.Background(), tc.file, []byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			var heads []string
			for _, h := range ex.Heads {
				heads = append(heads, h.Text)
			}
			if ex.Title != tc.title || !slices.Equal(heads, tc.heads) || !strings.Contains(ex.Text, tc.has) ||
				(tc.hasNot != "" && strings.Contains(ex.Text, tc.hasNot)) {
				t.Fatalf("got title %q heads %q text %q", ex.Title, heads, ex.Text)
			}
		})
	}
}

// A named pipe is skipped, not opened (opening one blocks until a writer
// comes, and cancelling the context cannot stop it), and a folder named
// through a symbolic link is walked.
func TestIngestPipeAndLinkedFolder(t *testing.T) {
	t.Parallel()
	dir := copyDocs(t)
	pipe := filepath.Join(t.TempDir(), "pipe.md")
	if err := syscall.Mkfifo(pipe, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	link := filepath.Join(t.TempDir(), "linked")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(pipe, filepath.Join(dir, "pipelink.md")); err != nil {
		t.Fatal(err)
	}
	// A pipe in the folder walked is reported too (the walk passed over it).
	if err := syscall.Mkfifo(filepath.Join(dir, "inside.md"), 0o644); err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	done := make(chan struct{})
	var sum Summary
	var err error
	go func() {
		defer close(done)
		sum, err = New(st, &Options{Collection: "p"}).Run(context.Background(), []string{pipe, link}, nil)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		// Unblock the open so the test ends.
		if f, ferr := os.OpenFile(pipe, os.O_WRONLY, 0); ferr == nil {
			f.Close()
		}
		t.Fatal("ingest blocked on a named pipe")
	}
	if err != nil {
		t.Fatal(err)
	}
	files := byPath(sum)
	for _, name := range []string{"pipe.md", "pipelink.md", "inside.md"} {
		if f := files[name]; f.Status != Skipped || !strings.Contains(f.Reason, "named pipe") {
			t.Errorf("%s: %s %q, want skipped as a named pipe", name, f.Status, f.Reason)
		}
	}
	if sum.Added != 5 || files["guide.md"].Path != filepath.Join(link, "guide.md") {
		t.Errorf("linked folder: %+v", sum)
	}
}

// A PDF pdftotext cannot read is skipped with pdftotext's own reason, not
// just its exit status.
func TestPDFSkipReasons(t *testing.T) {
	t.Parallel()
	enc, err := os.ReadFile("testdata/encrypted.pdf") // handbook.pdf, qpdf --encrypt user owner 256
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, data, want string }{
		{"truncated", "%PDF-1.4\n", "xref"},
		{"encrypted", string(enc), "encrypted with a password"},
	} {
		_, err := Extract(context.Background(), tc.name+".pdf", []byte(tc.data))
		if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a malformed-file error saying %q", tc.name, err, tc.want)
		}
	}
}

// A blank page (a scan, a separator page) still counts: the text after it
// is cited with its own page number, not one page early.
func TestPDFPagesCountBlankPages(t *testing.T) {
	t.Parallel()
	// Pages: "Manual title", "Alpha text on page two", blank, "Zebra
	// crossing fact on page four".
	data, err := os.ReadFile("testdata/blank-page.pdf")
	if err != nil {
		t.Fatal(err)
	}
	ex, err := Extract(context.Background(), "blank-page.pdf", data)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"Manual": "1", "Alpha": "2", "Zebra": "4"}
	chunks := Chunk(ex, ChunkOptions{})
	for _, c := range chunks {
		word, _, _ := strings.Cut(c.Text, " ")
		if w, ok := want[word]; ok {
			if c.Meta["page"] != w {
				t.Errorf("%q: page %s, want %s", c.Text, c.Meta["page"], w)
			}
			delete(want, word)
		}
	}
	if len(want) > 0 {
		t.Errorf("no chunk for %v in %d chunks", want, len(chunks))
	}
}

// A PDF's text is bounded like a file's size: 200 pages that repeat one
// content stream make 1.8 MB of text from 41 KB of PDF (the same trick
// turned 9 MiB into 561 MB, 600,000 chunks and 8 GB of memory).
func TestPDFTextOverLimitIsSkipped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data, err := os.ReadFile("testdata/repeated-pages.pdf")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "r.pdf")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	sum, err := New(st, &Options{Collection: "c", MaxFileBytes: 1 << 20}).Run(context.Background(), []string{path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := byPath(sum)["r.pdf"]
	if f.Status != Skipped || !strings.Contains(f.Reason, "its text is more than 1048576 bytes") || !strings.Contains(f.Reason, "max_file_bytes") {
		t.Errorf("r.pdf: %s %q, want skipped: its text is too large", f.Status, f.Reason)
	}
	sum, err = New(st, &Options{Collection: "c", MaxFileBytes: 2 << 20}).Run(context.Background(), []string{path}, nil)
	if err != nil || sum.Added != 1 {
		t.Errorf("under the limit: %+v, %v", sum, err)
	}
}

// A PDF that changed since it was stored, whose text is now over the
// limit, loses the version stored before, as a file over the limit does
// (TestTooLargeRemovesTheVersionStoredBefore).
func TestPDFTextOverLimitRemovesTheVersionStoredBefore(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/repeated-pages.pdf")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "r.pdf")
	st := openStore(t)
	ctx := context.Background()
	run := func(content []byte, limit int64) Summary {
		t.Helper()
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		sum, err := New(st, &Options{Collection: "c", MaxFileBytes: limit}).Run(ctx, []string{path}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	if sum := run(append(slices.Clip(data), '\n'), 2<<20); sum.Added != 1 {
		t.Fatalf("under the limit: %+v", sum)
	}
	sum := run(data, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	f := byPath(sum)["r.pdf"]
	if f.Status != Skipped || !strings.Contains(f.Reason, "its text is more than 1048576 bytes") ||
		!strings.HasSuffix(f.Reason, "; the version ingested before was removed from the collection") {
		t.Errorf("r.pdf: %s %q, want skipped as too large, saying the old version was removed", f.Status, f.Reason)
	}
	if docs, err := st.Documents(ctx, "c", []string{path}); err != nil || len(docs) != 0 {
		t.Errorf("the old version is still stored: %+v, %v", docs, err)
	}
}

// Text whose only spaces are multi-byte (no-break spaces from HTML and
// PDFs, ideographic spaces) is never cut inside a character.
func TestChunkCutsWholeRunes(t *testing.T) {
	t.Parallel()
	text := strings.Repeat("word\u00a0", 400) + strings.Repeat("字\u3000", 400)
	ex := Extracted{Text: text, Type: "txt"}
	chunks := Chunk(ex, ChunkOptions{Size: 200, Overlap: 30})
	if len(chunks) < 10 {
		t.Fatalf("%d chunks", len(chunks))
	}
	for i, c := range chunks {
		if !utf8.ValidString(c.Text) || text[c.Start:c.End] != c.Text {
			t.Errorf("chunk %d (%d..%d) is cut inside a character: %q...%q", i, c.Start, c.End, c.Text[:4], c.Text[len(c.Text)-4:])
		}
	}
}

// A file that changed and now gives nothing to store (emptied, now binary)
// loses its old chunks: they are no longer its content. A
// file that cannot be read here (no pdftotext) keeps them.
func TestChangedFileWithNothingToStoreIsRemoved(t *testing.T) { // not parallel: sets PDFToText
	ctx := context.Background()
	dir := t.TempDir()
	st := openStore(t)
	ing := New(st, &Options{Collection: "c"})
	pdf, err := os.ReadFile("testdata/docs/handbook.pdf")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"emptied.md": []byte("   \n"), "binary.txt": []byte("now\x00binary"),
		"kept.pdf": append(append([]byte{}, pdf...), "\n% changed\n"...)}
	for name := range files {
		old := []byte("The walrus code of " + name + " is secret.\n")
		if name == "kept.pdf" {
			old = pdf
		}
		if err := os.WriteFile(filepath.Join(dir, name), old, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if sum, err := ing.Run(ctx, []string{dir}, nil); err != nil || sum.Added != 3 {
		t.Fatalf("first run: %+v %v", sum, err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	defer func(p string) { PDFToText = p }(PDFToText)
	PDFToText = "pdftotext-not-installed"
	sum, err := ing.Run(ctx, []string{dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	PDFToText = "pdftotext"
	got := byPath(sum)
	have, err := st.Documents(ctx, "c", []string{filepath.Join(dir, "kept.pdf"), filepath.Join(dir, "emptied.md"),
		filepath.Join(dir, "binary.txt")})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"emptied.md", "binary.txt"} {
		if f := got[name]; f.Status != Skipped || !strings.Contains(f.Reason, "removed") {
			t.Errorf("%s: %s %q, want skipped and its old version removed", name, f.Status, f.Reason)
		}
		if _, ok := have[filepath.Join(dir, name)]; ok {
			t.Errorf("%s: the old version is still stored", name)
		}
	}
	if f := got["kept.pdf"]; f.Status != Skipped || strings.Contains(f.Reason, "removed") {
		t.Errorf("kept.pdf: %s %q, want skipped for want of pdftotext, old version kept", f.Status, f.Reason)
	}
	if _, ok := have[filepath.Join(dir, "kept.pdf")]; !ok {
		t.Error("kept.pdf: the old version was removed although the new one could not be read here")
	}
	if hits, _ := st.Search(ctx, "c", retrieval.Query{Text: "walrus code", K: 5}); len(hits) != 0 {
		t.Errorf("stale chunks still found: %+v", hits)
	}
}

// A heading with nothing under it is dropped only when sections below it
// carry it in their trail; otherwise its words would be found nowhere.
func TestHeadingOnlySections(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"# Walrus feeding schedule\n", []string{"# Walrus feeding schedule"}},
		{"# Top\n\n## Feeding\n\nTwice a day.\n\n## Deprecated: see the new handbook\n",
			[]string{"## Feeding\n\nTwice a day.", "## Deprecated: see the new handbook"}},
		{"# One\n# Two\n\ntext\n", []string{"# One", "# Two\n\ntext"}},
	} {
		ex, err := Extract(context.Background(), "h.md", []byte(tc.in))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range Chunk(ex, ChunkOptions{}) {
			got = append(got, c.Text)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q: chunks %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Cancelling the run while stdin is being read (a pipe whose writer never
// closes it: `sleep 30 | ponder ingest -`) ends it: the read heeded
// nothing, and Run waited for the input to end.
func TestStdinReadStopsWithContext(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	pr, pw := io.Pipe()
	defer pw.Close() // ends the read left behind
	if _, err := New(st, &Options{Collection: "c"}).Run(context.Background(), []string{"-"}, strings.NewReader("# Note\n\nA first text.\n")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		sum Summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		sum, err := New(st, &Options{Collection: "c"}).Run(ctx, []string{"-"}, pr)
		done <- result{sum, err}
	}()
	if _, err := pw.Write([]byte("the start of a text that never ends")); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case r := <-done:
		if !errors.Is(r.err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", r.err)
		}
		for _, f := range r.sum.Files {
			if f.Status != Failed || !strings.Contains(f.Reason, "stopped while reading") {
				t.Errorf("%s: %s %q, want failed: stopped while reading", f.Path, f.Status, f.Reason)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still reads stdin 10s after its context was cancelled")
	}
	// What was stored before is untouched.
	docs, err := st.ListDocuments(context.Background(), "c")
	if err != nil || len(docs) != 1 {
		t.Errorf("after the stopped run: %d documents, %v; want the 1 stored before", len(docs), err)
	}
}
