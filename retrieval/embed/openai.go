// Package embed holds embedders for retrieval: a client of any
// OpenAI-compatible /v1/embeddings endpoint (vLLM, Ollama, TEI, OpenAI).
// With no embedder configured, retrieval is lexical only (BM25, see
// retrieval/lexical) and needs no model.
//
//	e, err := embed.NewOpenAI(embed.Options{BaseURL: "http://127.0.0.1:8000/v1", Model: "bge-small-en"})
//	vecs, err := e.Embed(ctx, []string{"first text", "second text"})
package embed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/retrieval"
)

// Options configure an OpenAI-compatible embedder.
type Options struct {
	// BaseURL is the API root, e.g. http://127.0.0.1:8000/v1.
	BaseURL string
	APIKey  string
	Model   string
	// Dim is the expected vector size; 0 learns it from the first answer.
	// Every vector of another size is an error (retrieval.ErrDimension).
	Dim int
	// BatchSize is the most texts per request (default 64).
	BatchSize int
	// MaxRetries on rate limits, server errors and network failures
	// (default 4); backoff doubles from 500ms, or follows Retry-After.
	MaxRetries int
	// Timeout per request (default 60s).
	Timeout time.Duration
	Client  *http.Client
	Logger  zerolog.Logger
}

// OpenAI is an embedder over /v1/embeddings. It is safe for concurrent use.
type OpenAI struct {
	o   Options
	url string
	dim atomic.Int64
}

var _ retrieval.Embedder = (*OpenAI)(nil)

// ErrEmbedder marks failures of the embedding endpoint.
var ErrEmbedder = errors.New("embedding endpoint failed")

// NewOpenAI checks o and returns an embedder.
func NewOpenAI(o Options) (*OpenAI, error) {
	u, err := url.Parse(o.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("embedding URL (retrieval.embed_url, PONDER_EMBED_URL): want an http(s) URL such as http://127.0.0.1:8000/v1, got %q", o.BaseURL)
	}
	if o.Model == "" {
		return nil, errors.New("embedding model (retrieval.embed_model, PONDER_EMBED_MODEL) is empty")
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 64
	}
	if o.MaxRetries < 0 {
		o.MaxRetries = 0
	} else if o.MaxRetries == 0 {
		o.MaxRetries = 4
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	e := &OpenAI{o: o, url: strings.TrimRight(o.BaseURL, "/") + "/embeddings"}
	e.dim.Store(int64(o.Dim))
	return e, nil
}

// Model implements retrieval.Embedder.
func (e *OpenAI) Model() string { return e.o.Model }

// Dim implements retrieval.Embedder: the configured or learned size.
func (e *OpenAI) Dim() int { return int(e.dim.Load()) }

// Embed implements retrieval.Embedder, in batches of BatchSize.
func (e *OpenAI) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, 0, len(texts))
	for i := 0; i < len(texts); i += e.o.BatchSize {
		batch := texts[i:min(len(texts), i+e.o.BatchSize)]
		vecs, err := e.embedBatch(ctx, batch)
		if err != nil {
			return nil, err
		}
		out = append(out, vecs...)
	}
	return out, nil
}

type embedResponse struct {
	Data []struct {
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	} `json:"data"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

func (e *OpenAI) embedBatch(ctx context.Context, texts []string) ([][]float32, error) {
	// Empty strings are rejected by some servers.
	in := make([]string, len(texts))
	for i, t := range texts {
		if strings.TrimSpace(t) == "" {
			t = " "
		}
		in[i] = t
	}
	body, _ := json.Marshal(map[string]any{"model": e.o.Model, "input": in, "encoding_format": "float"})
	backoff := 500 * time.Millisecond
	var lastErr error
	for attempt := 0; attempt <= e.o.MaxRetries; attempt++ {
		if attempt > 0 {
			e.o.Logger.Debug().Int("attempt", attempt).Err(lastErr).Msg("retrying embeddings")
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
			backoff *= 2
		}
		vecs, retry, wait, err := e.post(ctx, body, len(in))
		if err == nil {
			return vecs, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		lastErr = err
		if !retry {
			return nil, err
		}
		if wait > 0 {
			backoff = wait
		}
	}
	return nil, fmt.Errorf("%w after %d retries: %v", ErrEmbedder, e.o.MaxRetries, lastErr)
}

func (e *OpenAI) post(ctx context.Context, body []byte, n int) (vecs [][]float32, retry bool, wait time.Duration, err error) {
	rctx, cancel := context.WithTimeout(ctx, e.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return nil, false, 0, fmt.Errorf("%w: %v", ErrEmbedder, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if e.o.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+e.o.APIKey)
	}
	resp, err := e.o.Client.Do(req)
	if err != nil {
		return nil, true, 0, fmt.Errorf("%w: %s unreachable: %v", ErrEmbedder, e.url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, true, 0, fmt.Errorf("%w: reading the answer: %v", ErrEmbedder, err)
	}
	var r embedResponse
	jerr := json.Unmarshal(raw, &r)
	msg := ""
	if r.Error != nil {
		msg = ": " + r.Error.Message
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			wait = time.Duration(s) * time.Second
		}
		return nil, true, wait, fmt.Errorf("%w: %s answered %s%s", ErrEmbedder, e.url, resp.Status, msg)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, false, 0, fmt.Errorf("%w: %s rejected the API key (%s): set retrieval.embed_api_key (PONDER_EMBED_API_KEY)", ErrEmbedder, e.url, resp.Status)
	case resp.StatusCode == http.StatusNotFound:
		return nil, false, 0, fmt.Errorf("%w: %s answered 404%s: check retrieval.embed_url (it should end in /v1) and the model %q", ErrEmbedder, e.url, msg, e.o.Model)
	case resp.StatusCode != http.StatusOK:
		return nil, false, 0, fmt.Errorf("%w: %s answered %s%s", ErrEmbedder, e.url, resp.Status, msg)
	case jerr != nil:
		return nil, false, 0, fmt.Errorf("%w: malformed answer from %s: %v", ErrEmbedder, e.url, jerr)
	}
	if len(r.Data) != n {
		return nil, false, 0, fmt.Errorf("%w: asked for %d embeddings, got %d", ErrEmbedder, n, len(r.Data))
	}
	sort.Slice(r.Data, func(i, j int) bool { return r.Data[i].Index < r.Data[j].Index })
	out := make([][]float32, n)
	for i, d := range r.Data {
		if len(d.Embedding) == 0 {
			return nil, false, 0, fmt.Errorf("%w: embedding %d is empty", ErrEmbedder, i)
		}
		want := int(e.dim.Load())
		if want == 0 {
			e.dim.CompareAndSwap(0, int64(len(d.Embedding)))
			want = int(e.dim.Load())
		}
		if len(d.Embedding) != want {
			return nil, false, 0, fmt.Errorf("%w: model %s returned %d-dimensional vectors, expected %d (retrieval.embed_dim, PONDER_EMBED_DIM)",
				retrieval.ErrDimension, e.o.Model, len(d.Embedding), want)
		}
		out[i] = d.Embedding
	}
	return out, false, 0, nil
}
