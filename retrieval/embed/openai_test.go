package embed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/internal/endpoint/endpointtest"
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
	if _, err := NewOpenAI(Options{BaseURL: "localhost:8000", Model: "m"}); err == nil {
		t.Fatal("accepted a URL without scheme")
	}
}

// Errors of the endpoint say what failed and why, naming it "the
// embedding endpoint": they reach MCP clients (ingest_documents,
// search_documents) and traces, and the endpoint may be internal
// infrastructure. Neither the URL nor the host nor the API key shows,
// even where the server's own text or Go's network errors name them.
func TestOpenAIErrorsHideTheEndpoint(t *testing.T) {
	t.Parallel()
	const key = "sk-embed-secret-123"
	// A server whose answers name its own URL and host, as proxies'
	// error pages do.
	var self string
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := strings.TrimPrefix(self, "http://")
		switch r.URL.Query().Get("case") {
		case "502-json":
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprintf(w, `{"error":{"message":"no upstream for %s/v1/embeddings (%s), key %s"}}`, self, host, key)
		case "503-text":
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "<html>\n<body>%s is down</body></html>", host)
		case "404":
			http.Error(w, `{"error":"model m not found at `+self+`"}`, http.StatusNotFound)
		case "429":
			http.Error(w, `{"error":{"message":"slow down"}}`, http.StatusTooManyRequests)
		case "hang":
			// The server notices a client gone only once the body is read.
			_, _ = io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-stop:
			}
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) }) // before srv.Close, which waits for handlers
	self = srv.URL
	reset := endpointtest.ResetServer(t)
	closed := endpointtest.ClosedPort(t)
	for _, tt := range []struct {
		name, base string
		want       []string
		dial       string // connect here, whatever the URL's host (a name resolved to an address)
	}{
		{"connection refused", "http://" + closed + "/v1", []string{"cannot connect to the embedding endpoint (connection refused)", "PONDER_EMBED_URL"}, ""},
		{"5xx naming the URL", srv.URL + "/v1?case=502-json#", []string{"the embedding endpoint answered 502 Bad Gateway: no upstream for the embedding endpoint", "[redacted]", "check the server's logs"}, ""},
		{"5xx page naming the host", srv.URL + "/v1?case=503-text#", []string{"answered 503 Service Unavailable: <html> <body>the embedding endpoint is down"}, ""},
		{"404", srv.URL + "/v1?case=404#", []string{"the embedding endpoint answered 404: model m not found at the embedding endpoint", "/v1"}, ""},
		{"429", srv.URL + "/v1?case=429#", []string{"answered 429 Too Many Requests: slow down: lower the load on it, ingest fewer documents at once, or raise retrieval.embed_max_retries (PONDER_EMBED_MAX_RETRIES)"}, ""},
		{"timeout", srv.URL + "/v1?case=hang#", []string{"the embedding endpoint did not answer within 200ms: raise retrieval.embed_timeout (PONDER_EMBED_TIMEOUT)"}, ""},
		{"reset", "http://" + reset + "/v1", []string{"request to the embedding endpoint failed ("}, ""},
		// Go's error names the address the name resolved to, which no
		// replacement of the URL's host catches.
		{"reset behind a name", "http://embed/v1", []string{"request to the embedding endpoint failed (read tcp: ", "connection reset"}, reset},
		{"no such host", "http://embed-upstream.corp.invalid:8000/v1", []string{"cannot resolve the host of the embedding endpoint", "PONDER_EMBED_URL"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := Options{BaseURL: tt.base, APIKey: key, Model: "m", MaxRetries: -1, Timeout: 200 * time.Millisecond}
			if tt.dial != "" {
				o.Client = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, network, tt.dial)
				}}}
			}
			e, err := NewOpenAI(o)
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.Embed(context.Background(), []string{"x"})
			if !errors.Is(err, ErrEmbedder) {
				t.Fatalf("error %v: want ErrEmbedder", err)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v says the caller's deadline passed", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			endpointtest.CheckHidden(t, err.Error(), tt.base, key)
			if tt.dial != "" {
				endpointtest.CheckHidden(t, err.Error(), tt.dial, key)
			}
		})
	}
}

// Retries say how many tries were made, once.
func TestOpenAIRetriesAreCounted(t *testing.T) {
	t.Parallel()
	closed := endpointtest.ClosedPort(t)
	e, err := NewOpenAI(Options{BaseURL: "http://" + closed + "/v1", Model: "m", MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Embed(context.Background(), []string{"x"})
	if want := "cannot connect to the embedding endpoint (connection refused, 2 attempts): start it"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %v: want %q", err, want)
	}
	if e.Endpoint() != "http://"+closed+"/v1" {
		t.Errorf("Endpoint() = %q", e.Endpoint())
	}
}
