package embedded

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/retrieval"
	"github.com/ponder-rlm/ponder/retrieval/internal/gen"
)

// BenchmarkLexicalQuery100k measures BM25 query latency over 100,000
// generated chunks of about 700 bytes (Zipf vocabulary of 50,000 words),
// 3-word queries, k=10; it reports the median as p50-ms.
func BenchmarkLexicalQuery100k(b *testing.B) {
	ctx := context.Background()
	st, err := Open(filepath.Join(b.TempDir(), "s.db"), &Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if _, err := st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: "bench"}); err != nil {
		b.Fatal(err)
	}
	c := gen.New(1, 50_000)
	const n, perDoc = 100_000, 20
	start := time.Now()
	var batch []retrieval.Document
	for d := 0; d < n/perDoc; d++ {
		doc := retrieval.Document{Source: fmt.Sprintf("doc%05d.txt", d), Hash: fmt.Sprint(d)}
		for i := range perDoc {
			doc.Chunks = append(doc.Chunks, retrieval.Chunk{Ordinal: i, Text: c.Text(700)})
		}
		batch = append(batch, doc)
		if len(batch) == 100 {
			if err := st.Put(ctx, "bench", batch); err != nil {
				b.Fatal(err)
			}
			batch = nil
		}
	}
	b.Logf("loaded %d chunks in %s", n, time.Since(start))
	queries := make([]string, 500)
	for i := range queries {
		queries[i] = c.Query(3)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		hits, err := st.Search(ctx, "bench", retrieval.Query{Text: queries[i%len(queries)], K: 10})
		lat = append(lat, time.Since(t0))
		if err != nil || len(hits) == 0 {
			b.Fatalf("query %q: %v %d hits", queries[i%len(queries)], err, len(hits))
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
