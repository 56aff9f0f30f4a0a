package retrieval_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/retrieval"
	"github.com/ponder-rlm/ponder/retrieval/embedded"
)

// A filter key no chunk of the collection carries is refused, naming the
// keys that work: --filter nokey=1 (and the retrieve tool's filter)
// matched nothing with no word of why. Keys of the fixed set, and Meta
// keys a program stored on some chunks, still filter (an empty result is
// then just empty).
func TestUnknownFilterKeyIsRefused(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "store.db")
	st, err := embedded.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: "docs"}); err != nil {
		t.Fatal(err)
	}
	chunk := func(i int, text string, meta map[string]string) retrieval.Chunk {
		return retrieval.Chunk{Ordinal: i, Text: text, Source: "/d/ports.md", Title: "Ports", End: len(text), Meta: meta}
	}
	doc := retrieval.Document{Source: "/d/ports.md", Hash: "h1", Title: "Ports", Bytes: 90, Meta: map[string]string{"type": "md"},
		Chunks: []retrieval.Chunk{
			chunk(0, "The admin console listens on port 7443.", map[string]string{"type": "md", "name": "ports.md"}),
			chunk(1, "Metrics are exported on port 9100.", map[string]string{"type": "md", "name": "ports.md", "team": "ops"}),
		}}
	if err := st.Put(ctx, "docs", []retrieval.Document{doc}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	const known = "filter on source, name, title, type, page, encoding, doc_hash, team"
	tests := []struct {
		name   string
		filter map[string]string
		hits   int
		err    string // "" for none
	}{
		{"unknown key", map[string]string{"nokey": "1"}, 0, `filter key "nokey" is not recorded on any chunk of collection "docs": ` + known},
		{"two unknown keys and a known one", map[string]string{"zeta": "1", "alpha": "2", "type": "md"}, 0, `filter keys "alpha", "zeta" are not recorded`},
		{"shown with a chunk, not filtered on", map[string]string{"ordinal": "0"}, 0, `filter key "ordinal" is not recorded`},
		{"a key a program stored", map[string]string{"team": "ops"}, 1, ""},
		{"a key a program stored, no match", map[string]string{"team": "dev"}, 0, ""},
		{"a fixed key no chunk has", map[string]string{"page": "3"}, 0, ""},
		{"a fixed key", map[string]string{"type": "md"}, 2, ""},
		{"source", map[string]string{"source": "/d/other.md"}, 0, ""},
	}
	// The CLI's search opens the file itself, read-only; the server and
	// solve go through a Lazy over a Shared handle.
	stores := map[string]func(t *testing.T) retrieval.Store{
		"read-only": func(t *testing.T) retrieval.Store {
			s, err := embedded.Open(path, &embedded.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"lazy shared": func(t *testing.T) retrieval.Store {
			return retrieval.NewLazy(func(context.Context) (retrieval.Store, error) { return embedded.OpenShared(path, nil) })
		},
	}
	for sname, open := range stores {
		t.Run(sname, func(t *testing.T) {
			st := open(t)
			defer st.Close()
			r := retrieval.NewRetriever(st, nil)
			for _, tc := range tests {
				hits, err := r.Search(ctx, retrieval.SearchRequest{Query: "port", Collection: "docs", Filter: tc.filter})
				switch {
				case tc.err == "" && (err != nil || len(hits) != tc.hits):
					t.Errorf("%s: %d hits, %v; want %d hits", tc.name, len(hits), err, tc.hits)
				case tc.err != "" && (err == nil || !errors.Is(err, retrieval.ErrBadQuery) || !strings.Contains(err.Error(), tc.err)):
					t.Errorf("%s: %d hits, %v; want an error with %q", tc.name, len(hits), err, tc.err)
				}
				args, _ := json.Marshal(map[string]any{"query": "port", "filter": tc.filter})
				res, err := retrieval.NewTool(r).Call(ctx, args)
				if err != nil || res.IsError != (tc.err != "") || (tc.err != "" && !strings.Contains(res.Text, tc.err)) {
					t.Errorf("%s: retrieve tool = %+v, %v", tc.name, res, err)
				}
			}
		})
	}
}
