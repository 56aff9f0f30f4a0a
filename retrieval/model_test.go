package retrieval_test

import (
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/retrieval"
	"github.com/ponder-rlm/ponder/retrieval/embed"
	"github.com/ponder-rlm/ponder/retrieval/embedded"
	"github.com/ponder-rlm/ponder/retrieval/ingest"
)

// A collection's vectors all come from one embedding model. Re-ingesting
// some of its files with another model of the same dimension used to
// store those files' vectors from the new model beside the rest from the
// old (collections list still naming the old), and dense search scored
// queries against both; a query embedded by another model than the
// collection's matched noise. Both are refused, naming the collection's
// model and what to do; lexical search still works. The embedder is the
// real one, against the simulator's /v1/embeddings.
func TestAnotherEmbeddingModelIsRefused(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv, err := sim.New(sim.Options{DataDir: sim.NoData})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	emb := func(model string) retrieval.Embedder {
		e, err := embed.NewOpenAI(embed.Options{BaseURL: hs.URL + "/v1", Model: model, MaxRetries: -1})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a.md", "# Ports\n\nThe admin console listens on port 7443.\n")
	b := write("b.md", "# Radio\n\nThe emergency frequency is 121.5 MHz.\n")
	st, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := ingest.New(st, &ingest.Options{Collection: "docs", Embedder: emb("sim-embed")}).Run(ctx, []string{a, b}, nil); err != nil {
		t.Fatal(err)
	}
	before, err := st.Documents(ctx, "docs", []string{b})
	if err != nil {
		t.Fatal(err)
	}

	// Ingest: b changed, another model of the same dimension (384).
	write("b.md", "# Radio\n\nThe emergency frequency is 243 MHz.\n")
	sum, err := ingest.New(st, &ingest.Options{Collection: "docs", Embedder: emb("other-embed")}).Run(ctx, []string{b}, nil)
	if !errors.Is(err, retrieval.ErrModel) {
		t.Fatalf("re-ingest with another model: %v (summary %+v), want ErrModel", err, sum)
	}
	for _, w := range []string{`collection "docs" holds vectors from sim-embed, and vectors from other-embed cannot be compared with them`,
		"PONDER_EMBED_MODEL=sim-embed", "--collection NAME", "`ponder collections delete docs`"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("ingest error %q does not say %q", err, w)
		}
	}
	after, err := st.Documents(ctx, "docs", []string{b})
	if err != nil || after[b].Hash != before[b].Hash || after[b].Params != before[b].Params {
		t.Errorf("b.md after the refused ingest: %+v (%v), want it as before: %+v", after[b], err, before[b])
	}
	if info, err := st.Collection(ctx, "docs"); err != nil || info.Model != "sim-embed" || info.Documents != 2 {
		t.Errorf("collection %+v, %v: want sim-embed's 2 documents", info, err)
	}

	// Search: a query embedded by another model is refused in every mode
	// that compares vectors; lexical search works, and so does the
	// collection's own model.
	other := retrieval.NewRetriever(st, &retrieval.RetrieverOptions{Embedder: emb("other-embed")})
	for _, mode := range []retrieval.Mode{retrieval.ModeAuto, retrieval.ModeDense, retrieval.ModeHybrid} {
		_, err := other.Search(ctx, retrieval.SearchRequest{Query: "admin console port", Mode: mode})
		if !errors.Is(err, retrieval.ErrModel) || !strings.Contains(err.Error(), "search with that model (PONDER_EMBED_MODEL=sim-embed, retrieval.embed_model), or lexically (search --mode lexical, or no embedder configured)") {
			t.Errorf("%q search with another model: %v, want ErrModel naming sim-embed and --mode lexical", mode, err)
		}
	}
	if hits, err := other.Search(ctx, retrieval.SearchRequest{Query: "admin console port", Mode: retrieval.ModeLexical}); err != nil || len(hits) == 0 || hits[0].Source != a {
		t.Errorf("lexical search with another model configured: %v, %v", hits, err)
	}
	same := retrieval.NewRetriever(st, &retrieval.RetrieverOptions{Embedder: emb("sim-embed")})
	if hits, err := same.Search(ctx, retrieval.SearchRequest{Query: "admin console port", Mode: retrieval.ModeDense}); err != nil || len(hits) == 0 || hits[0].Source != a {
		t.Errorf("dense search with the collection's model: %v, %v", hits, err)
	}
	// The retrieve tool (a solve, an MCP client) says so as its result.
	res, err := retrieval.NewTool(other).Call(ctx, []byte(`{"query": "admin console port"}`))
	if err != nil || !res.IsError || !strings.Contains(res.Text, "holds vectors from sim-embed") {
		t.Errorf("retrieve with another model: %+v, %v", res, err)
	}
}
