package ingest

import (
	"bytes"
	"compress/zlib"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// slowPDF is a PDF of a few hundred KiB whose pages all draw one long
// content stream of line segments: no text, so nothing for the text cap
// to stop, and pdftotext spends seconds on every page.
func slowPDF(pages int) []byte {
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
	ops := bytes.Repeat([]byte("0 0 m 1 1 l S\n"), 1<<16)
	for range 64 {
		zw.Write(ops)
	}
	zw.Close()
	objs := []string{"<< /Type /Catalog /Pages 2 0 R >>"}
	var kids []string
	for i := range pages {
		kids = append(kids, fmt.Sprintf("%d 0 R", 3+i))
	}
	objs = append(objs, fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), pages))
	for range pages {
		objs = append(objs, fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R >>", 3+pages))
	}
	objs = append(objs, fmt.Sprintf("<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream", z.Len(), z.Bytes()))
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	var offs []int
	for i, o := range objs {
		offs = append(offs, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	x := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, x)
	return b.Bytes()
}

// A PDF that keeps pdftotext busy (here about 30s of CPU for 16 pages; the
// same file at thousands of pages, hours) is given up after PDFTimeout and
// skipped saying why; the rest of the folder is ingested. The run waited
// for it, on every run.
func TestSlowPDFIsGivenUp(t *testing.T) { // not parallel: sets PDFTimeout
	defer func(d time.Duration) { PDFTimeout = d }(PDFTimeout)
	PDFTimeout = 300 * time.Millisecond
	dir := t.TempDir()
	write(t, dir, "ok.md", "# OK\n\nThe walrus code is 7.\n")
	if err := os.WriteFile(filepath.Join(dir, "slow.pdf"), slowPDF(16), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sum, err := New(openStore(t), &Options{Collection: "c"}).Run(context.Background(), []string{dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the run took %v: it waited for pdftotext", d)
	}
	got := byPath(sum)
	if f := got["slow.pdf"]; f.Status != Skipped || !strings.Contains(f.Reason, "did not finish reading it within 300ms") {
		t.Errorf("slow.pdf: %s %q, want skipped as too slow to read", f.Status, f.Reason)
	}
	if f := got["ok.md"]; f.Status != Added {
		t.Errorf("ok.md: %s %q", f.Status, f.Reason)
	}
}
