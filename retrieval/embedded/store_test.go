package embedded

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/ponder-rlm/ponder/retrieval"
	"github.com/ponder-rlm/ponder/retrieval/storetest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) retrieval.Store {
		st, err := Open(filepath.Join(t.TempDir(), "store.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

// The dense index path (HNSW) is used above ExactBelow vectors.
func TestConformanceHNSW(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) retrieval.Store {
		st, err := Open(filepath.Join(t.TempDir(), "store.db"), &Options{ExactBelow: 1})
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

// One Put naming a source twice (stdin named like a file given on the same
// command line) keeps the second and leaves no posting of the first.
func TestPutSameSourceTwice(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, err := Open(filepath.Join(t.TempDir(), "store.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: "d"}); err != nil {
		t.Fatal(err)
	}
	doc := func(src, text string) retrieval.Document {
		return retrieval.Document{Source: src, Hash: retrieval.HashBytes([]byte(text)), Chunks: []retrieval.Chunk{{Text: text}}}
	}
	if err := st.Put(ctx, "d", []retrieval.Document{doc("a", "walrus walrus walrus first"), doc("a", "walrus second"),
		doc("b", "walrus third, a longer chunk about something else entirely")}); err != nil {
		t.Fatal(err)
	}
	hits, err := st.Search(ctx, "d", retrieval.Query{Text: "walrus", K: 2})
	if err != nil || len(hits) != 2 || hits[0].Text != "walrus second" {
		t.Fatalf("search: %+v %v, want the second version of a and b", hits, err)
	}
	if info, _ := st.Collection(ctx, "d"); info.Documents != 2 || info.Chunks != 2 {
		t.Fatalf("counts %+v", info)
	}
}

// The same with vectors, once the HNSW graph is built: the replaced
// chunk's vector is not left in the graph.
func TestPutSameSourceTwiceDense(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, err := Open(filepath.Join(t.TempDir(), "store.db"), &Options{ExactBelow: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: "d", Dim: 2}); err != nil {
		t.Fatal(err)
	}
	doc := func(src, text string, v []float32) retrieval.Document {
		return retrieval.Document{Source: src, Hash: retrieval.HashBytes([]byte(text)), Chunks: []retrieval.Chunk{{Text: text, Vector: v}}}
	}
	q := retrieval.Query{Vector: []float32{1, 0}, K: 2, Mode: retrieval.ModeDense}
	if err := st.Put(ctx, "d", []retrieval.Document{doc("c", "far", []float32{0, 1})}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Search(ctx, "d", q); err != nil { // builds the graph
		t.Fatal(err)
	}
	var docs []retrieval.Document
	for i := range 12 { // more stale versions than the graph search fetches beyond k
		docs = append(docs, doc("a", fmt.Sprint("version ", i), []float32{1, float32(i) / 100}))
	}
	docs = append(docs, doc("a", "second", []float32{0.5, 0.5}))
	if err := st.Put(ctx, "d", docs); err != nil {
		t.Fatal(err)
	}
	hits, err := st.Search(ctx, "d", q)
	if err != nil || len(hits) != 2 || hits[0].Text != "second" {
		t.Fatalf("dense search: %+v %v, want a's second version and c", hits, err)
	}
}

// With ExactDense a short-lived process scores dense and hybrid queries
// exactly however large the collection: it never builds the HNSW graph
// (tens of seconds at 20,000 chunks, for one `ponder search`), and finds
// what the exact search of a small collection finds, in the same order.
func TestExactDense(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "store.db")
	st, vec := openRandomVecs(t, path, nil, "d", 8)
	var docs []retrieval.Document
	for i := range 60 {
		d := retrieval.Document{Source: fmt.Sprintf("/d/%02d.md", i), Hash: "h"}
		for j := range 3 {
			d.Chunks = append(d.Chunks, retrieval.Chunk{Text: fmt.Sprintf("note %d part %d about ports", i, j), Vector: vec()})
		}
		docs = append(docs, d)
	}
	if err := st.Put(ctx, "d", docs); err != nil {
		t.Fatal(err)
	}
	st.Close()

	exact, err := Open(path, &Options{ReadOnly: true}) // 180 chunks: under ExactBelow
	if err != nil {
		t.Fatal(err)
	}
	defer exact.Close()
	// ExactBelow 1 stands for a collection above the graph's threshold.
	short, err := Open(path, &Options{ReadOnly: true, ExactDense: true, ExactBelow: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer short.Close()
	for i := range 10 {
		for _, mode := range []retrieval.Mode{retrieval.ModeDense, retrieval.ModeHybrid} {
			q := retrieval.Query{Text: "ports part 1", Vector: vec(), K: 7, Mode: mode}
			want, err := exact.Search(ctx, "d", q)
			if err != nil {
				t.Fatal(err)
			}
			got, err := short.Search(ctx, "d", q)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) || len(got) != q.K {
				t.Fatalf("query %d (%s): %d hits, want %d", i, mode, len(got), len(want))
			}
			for j := range got {
				if got[j].ID != want[j].ID || got[j].Score != want[j].Score {
					t.Fatalf("query %d (%s), hit %d: %s %.4f, want %s %.4f (the exact ranking)", i, mode, j, got[j].ID, got[j].Score, want[j].ID, want[j].Score)
				}
			}
		}
	}
	if d := short.dense["d"]; d != nil {
		t.Fatal("a store opened with ExactDense built the HNSW graph")
	}
}

// openRandomVecs opens (creating) the store at path with o and makes the
// collection name of dim dimensions; vec returns random vectors of dim
// components in [-1, 1), the same sequence on every run.
func openRandomVecs(tb testing.TB, path string, o *Options, name string, dim int) (st *Store, vec func() []float32) {
	tb.Helper()
	st, err := Open(path, o)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := st.EnsureCollection(tb.Context(), retrieval.CollectionSpec{Name: name, Dim: dim}); err != nil {
		st.Close()
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	return st, func() []float32 {
		v := make([]float32, dim)
		for i := range v {
			v[i] = rng.Float32()*2 - 1
		}
		return v
	}
}
