package embedded

import (
	"fmt"
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
