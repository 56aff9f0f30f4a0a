package retrieval_test

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/retrieval"
	"github.com/ponder-rlm/ponder/retrieval/embedded"
)

// A collection name no collection can have ("../x", "a b") is said to be
// malformed by search, the retrieve tool (so search_documents and a
// grounded solve) and MissingCollection: they said "no such collection"
// and advised `ponder ingest --collection ../x PATH`, which fails.
func TestBadCollectionNameIsNotMissing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := retrieval.NewRetriever(st, nil)
	for _, name := range []string{"../x", "a b"} {
		_, err := r.Search(ctx, retrieval.SearchRequest{Query: "port", Collection: name})
		if err == nil || retrieval.IsNotFound(err) || !errors.Is(err, retrieval.ErrBadQuery) ||
			!strings.Contains(err.Error(), "use 1-64 letters") || strings.Contains(err.Error(), "ponder ingest") {
			t.Errorf("Search(%q) = %v, want the name's fault", name, err)
		}
		if r.MissingCollection(ctx, name) {
			t.Errorf("MissingCollection(%q) = true: a solve would be told to ingest into it", name)
		}
		args, _ := json.Marshal(map[string]string{"query": "port", "collection": name})
		res, err := retrieval.NewTool(r).Call(ctx, args)
		if err != nil || !res.IsError || !strings.Contains(res.Text, "use 1-64 letters") || strings.Contains(res.Text, "ponder ingest") {
			t.Errorf("retrieve tool with %q = %+v, %v", name, res, err)
		}
	}
	// A well-formed name that is absent is still missing, with its advice.
	if !r.MissingCollection(ctx, "nope") {
		t.Error("MissingCollection(nope) = false")
	}
	if _, err := r.Search(ctx, retrieval.SearchRequest{Query: "port", Collection: "nope"}); !retrieval.IsNotFound(err) {
		t.Errorf("Search(nope) = %v, want no such collection", err)
	}
}
