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

// benchStore20k fills a store with 20,000 chunks of about 700 bytes with
// 16-dimensional vectors (1,000 documents of 20 chunks) and closes it.
func benchStore20k(b *testing.B) (path string, queries []string, vecs [][]float32) {
	b.Helper()
	ctx := context.Background()
	path = filepath.Join(b.TempDir(), "s.db")
	st, err := Open(path, &Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	const dim = 16
	if _, err := st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: "bench", Dim: dim}); err != nil {
		b.Fatal(err)
	}
	c := gen.New(1, 50_000)
	vec := func(i int) []float32 {
		v := make([]float32, dim)
		for j := range v {
			v[j] = float32((i*31+j*17)%97) / 97
		}
		return v
	}
	var batch []retrieval.Document
	for d := 0; d < 1000; d++ {
		doc := retrieval.Document{Source: fmt.Sprintf("doc%05d.txt", d), Hash: fmt.Sprint(d)}
		for i := range 20 {
			doc.Chunks = append(doc.Chunks, retrieval.Chunk{Ordinal: i, Text: c.Text(700), Vector: vec(d*20 + i)})
		}
		batch = append(batch, doc)
		if len(batch) == 100 {
			if err := st.Put(ctx, "bench", batch); err != nil {
				b.Fatal(err)
			}
			batch = nil
		}
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	for i := range 200 {
		queries = append(queries, c.Query(3))
		vecs = append(vecs, vec(i*7919))
	}
	return path, queries, vecs
}

// BenchmarkSearch20k compares one search over 20,000 chunks through a
// store held open (Open) with one through Shared, which opens and closes
// the file (and its lock) around every search; the dense index is kept
// across Shared's opens while no other process writes.
func BenchmarkSearch20k(b *testing.B) {
	path, queries, vecs := benchStore20k(b)
	ctx := context.Background()
	for _, mode := range []retrieval.Mode{retrieval.ModeLexical, retrieval.ModeHybrid} {
		for _, kind := range []string{"Open", "Shared"} {
			b.Run(fmt.Sprintf("%s/%s", mode, kind), func(b *testing.B) {
				var st retrieval.Store
				var err error
				if kind == "Open" {
					st, err = Open(path, &Options{ReadOnly: true})
				} else {
					st, err = OpenShared(path, nil)
				}
				if err != nil {
					b.Fatal(err)
				}
				defer st.(interface{ Close() error }).Close()
				q := func(i int) retrieval.Query {
					return retrieval.Query{Text: queries[i%len(queries)], Vector: vecs[i%len(vecs)], K: 10, Mode: mode}
				}
				// The first dense search builds the HNSW graph.
				if _, err := st.Search(ctx, "bench", q(0)); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := st.Search(ctx, "bench", q(i)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkDenseFirstQuery20k measures what a short-lived process (`ponder
// search`, a solve) pays for one dense query over 20,000 chunks of 384
// dimensions: scored exactly (ExactDense, what the read-only commands
// use) against the first query of a store that builds the HNSW graph for
// it (what they did before; `ponder serve` still does, once). On the
// project's 2-core machine: 16ms against 34s.
func BenchmarkDenseFirstQuery20k(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "s.db")
	const dim, n = 384, 20_000
	st, vec := openRandomVecs(b, path, &Options{NoSync: true}, "bench", dim)
	c := gen.New(1, 50_000)
	var batch []retrieval.Document
	for d := 0; d < n/20; d++ {
		doc := retrieval.Document{Source: fmt.Sprintf("doc%05d.txt", d), Hash: fmt.Sprint(d)}
		for i := range 20 {
			doc.Chunks = append(doc.Chunks, retrieval.Chunk{Ordinal: i, Text: c.Text(200), Vector: vec()})
		}
		batch = append(batch, doc)
		if len(batch) == 50 {
			if err := st.Put(ctx, "bench", batch); err != nil {
				b.Fatal(err)
			}
			batch = nil
		}
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	queries := make([][]float32, 50)
	for i := range queries {
		queries[i] = vec()
	}
	search := func(b *testing.B, st *Store, i int) {
		hits, err := st.Search(ctx, "bench", retrieval.Query{Vector: queries[i%len(queries)], K: 10, Mode: retrieval.ModeDense})
		if err != nil || len(hits) != 10 {
			b.Fatalf("dense search: %d hits, %v", len(hits), err)
		}
	}
	b.Run("exact", func(b *testing.B) {
		st, err := Open(path, &Options{ReadOnly: true, ExactDense: true})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		for i := 0; b.Loop(); i++ {
			search(b, st, i)
		}
	})
	b.Run("first-query-builds-graph", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			st, err := Open(path, &Options{ReadOnly: true})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			search(b, st, i)
			b.StopTimer()
			st.Close()
			b.StartTimer()
		}
	})
}
