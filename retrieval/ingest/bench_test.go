package ingest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ponder-rlm/ponder/retrieval/embedded"
	"github.com/ponder-rlm/ponder/retrieval/internal/gen"
)

// BenchmarkIngestLexical measures end-to-end ingest throughput, lexical
// only, of a folder of 200 generated Markdown files of 100 KB (20 MB):
// read, hash, chunk, tokenize, BM25 postings, fsynced commits.
func BenchmarkIngestLexical(b *testing.B) {
	dir := b.TempDir()
	c := gen.New(2, 50_000)
	total := 0
	for i := range 200 {
		text := fmt.Sprintf("# Document %d\n\n", i) + c.Text(50_000) + "\n## Part two\n\n" + c.Text(50_000)
		total += len(text)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("d%03d.md", i)), []byte(text), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(total))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st, err := embedded.Open(filepath.Join(b.TempDir(), "s.db"), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		sum, err := New(st, &Options{Collection: "bench"}).Run(context.Background(), []string{dir}, nil)
		if err != nil || sum.Added != 200 {
			b.Fatalf("%v %+v", err, sum)
		}
		b.StopTimer()
		st.Close()
		b.StartTimer()
	}
}
