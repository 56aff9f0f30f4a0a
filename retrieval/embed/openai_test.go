package embed

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ponder-rlm/ponder/retrieval"
)

// fakeEmbeddings serves /v1/embeddings: vector i of a request is
// [len(text), 1, 0, ...] of dim; failFirst requests answer 503.
func fakeEmbeddings(t *testing.T, dim int, failFirst int32, calls *atomic.Int32, batches *[]int) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if r.URL.Path != "/v1/embeddings" || r.Header.Get("Authorization") != "Bearer k" {
			http.Error(w, `{"error":{"message":"bad path or key"}}`, http.StatusUnauthorized)
			return
		}
		if n <= failFirst {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		var req struct {
			Model string   `json:"model"`
			Input []string `json:"input"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Model != "m" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		*batches = append(*batches, len(req.Input))
		type item struct {
			Index     int       `json:"index"`
			Embedding []float32 `json:"embedding"`
		}
		var data []item
		for i := len(req.Input) - 1; i >= 0; i-- { // out of order on purpose
			v := make([]float32, dim)
			v[0] = float32(len(req.Input[i]))
			data = append(data, item{i, v})
		}
		json.NewEncoder(w).Encode(map[string]any{"data": data})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestOpenAIBatchesRetriesAndOrder(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	var batches []int
	srv := fakeEmbeddings(t, 4, 1, &calls, &batches)
	e, err := NewOpenAI(Options{BaseURL: srv.URL + "/v1", APIKey: "k", Model: "m", BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"a", "bb", "ccc", "dddd", "eeeee"}
	vecs, err := e.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vecs {
		if int(v[0]) != len(texts[i]) {
			t.Fatalf("vector %d belongs to another text: %v", i, v)
		}
	}
	if e.Dim() != 4 || calls.Load() != 4 || len(batches) != 3 || batches[0] != 2 || batches[2] != 1 {
		t.Fatalf("dim %d, calls %d (one 503 retried), batches %v", e.Dim(), calls.Load(), batches)
	}
}

func TestOpenAIErrors(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	var batches []int
	srv := fakeEmbeddings(t, 4, 0, &calls, &batches)
	ctx := context.Background()
	e, _ := NewOpenAI(Options{BaseURL: srv.URL + "/v1", APIKey: "k", Model: "m", Dim: 8})
	if _, err := e.Embed(ctx, []string{"x"}); !errors.Is(err, retrieval.ErrDimension) {
		t.Fatalf("dimension mismatch: %v", err)
	}
	e, _ = NewOpenAI(Options{BaseURL: srv.URL + "/v1", APIKey: "wrong", Model: "m"})
	if _, err := e.Embed(ctx, []string{"x"}); err == nil || !strings.Contains(err.Error(), "PONDER_EMBED_API_KEY") {
		t.Fatalf("bad key: %v", err)
	}
	e, _ = NewOpenAI(Options{BaseURL: "http://127.0.0.1:1/v1", Model: "m", MaxRetries: -1})
	if _, err := e.Embed(ctx, []string{"x"}); !errors.Is(err, ErrEmbedder) || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("unreachable endpoint: %v", err)
	}
	if _, err := NewOpenAI(Options{BaseURL: "localhost:8000", Model: "m"}); err == nil {
		t.Fatal("accepted a URL without scheme")
	}
}
