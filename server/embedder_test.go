package server

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/retrieval"
	"github.com/ponder-rlm/ponder/retrieval/embed"
	"github.com/ponder-rlm/ponder/retrieval/embedded"
	"github.com/ponder-rlm/ponder/retrieval/ingest"
)

// textIngester serves ingest_documents' texts with retrieval/ingest, as
// `ponder serve` does.
type textIngester struct {
	store retrieval.Store
	emb   retrieval.Embedder
}

func (d textIngester) Ingest(ctx context.Context, req IngestRequest) (IngestResult, error) {
	out := IngestResult{Collection: req.Collection}
	for _, t := range req.Texts {
		sum, err := ingest.New(d.store, &ingest.Options{Collection: req.Collection, Embedder: d.emb, StdinName: t.Name}).
			Run(ctx, []string{"-"}, strings.NewReader(t.Text))
		if err != nil {
			return out, err
		}
		for _, f := range sum.Files {
			out.Documents = append(out.Documents, IngestedDoc{Source: t.Name, Status: string(f.Status), Reason: f.Reason})
		}
	}
	return out, nil
}

// When the embedding endpoint fails, an MCP client of Ponder learns what
// failed and why from ingest_documents and search_documents, but not
// where the endpoint is: it may be internal infrastructure. Failures:
// nothing listening, a 5xx whose body names the endpoint's URL (as
// proxies' do), and no answer within the timeout. The embedder, store,
// ingester and server are the real ones.
func TestEmbedderFailuresHideTheEndpoint(t *testing.T) {
	t.Parallel()
	refused, badGateway, hangs := failingEndpoints(t)

	for _, tc := range []struct {
		name, base, says string
	}{
		{"connection refused", refused, "cannot connect to the embedding endpoint (connection refused)"},
		{"5xx naming the endpoint", badGateway, "the embedding endpoint answered 502 Bad Gateway: no healthy upstream behind the embedding endpoint"},
		{"timeout", hangs, "the embedding endpoint did not answer within 300ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			// A collection with vectors, so that a search embeds its query.
			ctx := t.Context()
			if _, err := st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: "docs", Model: "m", Dim: 2}); err != nil {
				t.Fatal(err)
			}
			d := retrieval.Document{Source: "ports.md", Hash: "h", Chunks: []retrieval.Chunk{{Text: "The console listens on port 7443.", Vector: []float32{1, 0}}}}
			if err := st.Put(ctx, "docs", []retrieval.Document{d}); err != nil {
				t.Fatal(err)
			}
			emb := func(dim int) *embed.OpenAI {
				e, err := embed.NewOpenAI(embed.Options{BaseURL: tc.base, Model: "m", Dim: dim, MaxRetries: -1, Timeout: 300 * time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				return e
			}
			e := newEnv(t, envOptions{opts: func(o *Options) {
				o.Retriever = retrieval.NewRetriever(st, &retrieval.RetrieverOptions{Embedder: emb(2)})
				o.Ingester = textIngester{store: st, emb: emb(0)}
			}})
			check := func(where string, r map[string]any) {
				t.Helper()
				checkSaysNotWhere(t, where, mustJSONString(r), tc.base, tc.says)
			}
			rc := e.rpc(t)
			r := result(t, rc.call("search_documents", map[string]any{"query": "console port", "collection": "docs"}, nil))
			if r["isError"] != true {
				t.Fatalf("search with the embedder failing: %v", r)
			}
			check("search_documents", r)
			// A new collection: the embedder is asked its dimension first.
			r = result(t, rc.call("ingest_documents", map[string]any{"collection": "notes",
				"texts": []any{map[string]any{"name": "a.md", "text": "alpha"}}}, nil))
			if r["isError"] != true {
				t.Fatalf("ingest with the embedder failing: %v", r)
			}
			check("ingest_documents", r)
		})
	}
}
