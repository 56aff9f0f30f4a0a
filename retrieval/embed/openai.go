// Package embed holds embedders for retrieval: a client of any
// OpenAI-compatible /v1/embeddings endpoint (vLLM, Ollama, TEI, OpenAI).
// With no embedder configured, retrieval is lexical only (BM25, see
// retrieval/lexical) and needs no model.
//
// Errors wrap ErrEmbedder and say what failed and why, naming the endpoint
// "the embedding endpoint", never by its URL or address, nor the API key:
// they reach the clients of `ponder serve` and traces, and the endpoint
// may be internal. Endpoint gives the URL (password redacted) for a log
// or a command line.
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
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/internal/endpoint"
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
	// MaxRetries on rate limits, server errors, network failures and
	// timeouts: 0 means the default (4, as retrieval.embed_max_retries),
	// a negative number none. Backoff doubles from 500ms, or follows
	// Retry-After.
	MaxRetries int
	// Timeout per request, one batch (default 60s, as
	// retrieval.embed_timeout).
	Timeout time.Duration
	Client  *http.Client
	Logger  zerolog.Logger
}

// OpenAI is an embedder over /v1/embeddings. It is safe for concurrent use.
type OpenAI struct {
	o   Options
	url string
	// ep keeps the endpoint's URL, address and API key out of messages,
	// which name it endpointName; its URL() is for the log and Endpoint.
	ep  *endpoint.Endpoint
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
	e := &OpenAI{o: o, url: strings.TrimRight(o.BaseURL, "/") + "/embeddings",
		ep: endpoint.New(endpointName, o.BaseURL, o.APIKey)}
	e.dim.Store(int64(o.Dim))
	return e, nil
}

// Endpoint is the base URL without its password. Error messages never
// show it (they reach server clients); a command line may add it to its
// own message, and a server log it.
func (e *OpenAI) Endpoint() string { return e.ep.URL() }

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
	for attempt := 1; ; attempt++ {
		vecs, retry, wait, err := e.post(ctx, body, len(in))
		if err == nil {
			return vecs, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ee *embedError
		if errors.As(err, &ee) {
			ee.attempts = attempt
		}
		ev := e.o.Logger.Debug().Str("endpoint", e.ep.URL()).Str("model", e.o.Model).Int("attempt", attempt).Err(err)
		if !retry || attempt > e.o.MaxRetries {
			ev.Msg("embeddings request failed")
			return nil, err
		}
		ev.Msg("retrying embeddings")
		if wait > 0 {
			backoff = wait
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		backoff *= 2
	}
}

// post makes one request. Its errors are *embedError: they name the
// endpoint endpointName, never its URL or address, and hold no API key.
func (e *OpenAI) post(ctx context.Context, body []byte, n int) (vecs [][]float32, retry bool, wait time.Duration, err error) {
	rctx, cancel := context.WithTimeout(ctx, e.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return nil, false, 0, &embedError{what: "cannot make a request to " + endpointName + ": " + e.ep.Clean(endpoint.NetText(err)),
			hint: "fix " + settingHint, cause: err}
	}
	req.Header.Set("Content-Type", "application/json")
	if e.o.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+e.o.APIKey)
	}
	// timedOut: this request's own deadline passed, not the caller's.
	timedOut := func() bool { return ctx.Err() == nil && errors.Is(rctx.Err(), context.DeadlineExceeded) }
	resp, err := e.o.Client.Do(req)
	if err != nil {
		retry, err := e.netError(err, timedOut())
		return nil, retry, 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		if timedOut() {
			return nil, true, 0, e.timeout()
		}
		return nil, true, 0, &embedError{what: fmt.Sprintf("%s answered %d but the answer was cut off", endpointName, resp.StatusCode), why: e.ep.Clean(endpoint.NetText(err)),
			hint: "check the server's logs and the network", cause: err}
	}
	detail := ""
	if resp.StatusCode != http.StatusOK {
		if m := strings.TrimSpace(e.ep.Clean(endpoint.BodyMessage(raw))); m != "" {
			detail = ": " + m
		}
	}
	status := e.ep.Clean(resp.Status)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return nil, true, retryAfter(resp), &embedError{what: fmt.Sprintf("%s answered %s", endpointName, status), detail: detail,
			hint: "lower the load on it, ingest fewer documents at once, or raise " + retriesSetting}
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
		return nil, true, retryAfter(resp), &embedError{what: fmt.Sprintf("%s answered %s", endpointName, status), detail: detail,
			hint: "check the server's logs"}
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, false, 0, &embedError{what: fmt.Sprintf("%s rejected the API key (%s%s)", endpointName, status, detail),
			hint: "set retrieval.embed_api_key (PONDER_EMBED_API_KEY)"}
	case resp.StatusCode == http.StatusNotFound:
		return nil, false, 0, &embedError{what: endpointName + " answered 404", detail: detail,
			hint: fmt.Sprintf("check that %s ends in the api prefix (such as /v1) and that it serves the model %q", settingHint, e.o.Model)}
	case resp.StatusCode != http.StatusOK:
		return nil, false, 0, &embedError{what: fmt.Sprintf("%s answered %s", endpointName, status), detail: detail,
			hint: fmt.Sprintf("check the model %q (retrieval.embed_model) and the server's logs", e.o.Model)}
	}
	var r embedResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, false, 0, &embedError{what: fmt.Sprintf("%s sent an answer that is not valid json (%s)", endpointName, e.ep.Clean(err.Error())),
			hint: "check that " + settingHint + " points at an openai-compatible api", cause: err}
	}
	if r.Error != nil && len(r.Data) == 0 {
		return nil, false, 0, &embedError{what: fmt.Sprintf("%s answered with an error: %s", endpointName, e.ep.Clean(r.Error.Message)),
			hint: "check the server's logs"}
	}
	if len(r.Data) != n {
		return nil, false, 0, &embedError{what: fmt.Sprintf("%s was asked for %d embeddings and sent %d", endpointName, n, len(r.Data)),
			hint: "check that " + settingHint + " points at an openai-compatible api"}
	}
	sort.Slice(r.Data, func(i, j int) bool { return r.Data[i].Index < r.Data[j].Index })
	out := make([][]float32, n)
	for i, d := range r.Data {
		if len(d.Embedding) == 0 {
			return nil, false, 0, &embedError{what: fmt.Sprintf("%s sent an empty embedding (number %d)", endpointName, i),
				hint: fmt.Sprintf("check the model %q (retrieval.embed_model)", e.o.Model)}
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

// netError classifies a request that got no answer: whether another try
// may help, and the error saying why, without the addresses Go's network
// errors name.
func (e *OpenAI) netError(err error, timedOut bool) (retry bool, _ error) {
	if timedOut {
		return true, e.timeout()
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return !dnsErr.IsNotFound, &embedError{what: "cannot resolve the host of " + endpointName, why: e.ep.Clean(endpoint.NetText(err)),
			hint: "fix " + settingHint, cause: err}
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true, &embedError{what: "cannot connect to " + endpointName, why: "connection refused",
			hint: "start it or fix " + settingHint, cause: err}
	}
	return true, &embedError{what: "request to " + endpointName + " failed", why: e.ep.Clean(endpoint.NetText(err)),
		hint: "check the server, the network and " + settingHint, cause: err}
}

// timeout is the error of a request that got no (whole) answer within
// Timeout. The cause is not context.DeadlineExceeded: the caller's own
// deadline did not pass, and errors.Is must not say it did.
func (e *OpenAI) timeout() error {
	return &embedError{what: fmt.Sprintf("%s did not answer within %s", endpointName, e.o.Timeout),
		hint: "raise " + timeoutSetting + " or check the server's load (a large batch on a slow model takes long)"}
}

// retryAfter is the wait a 429 or 503 asks for (seconds), or 0.
func retryAfter(resp *http.Response) time.Duration {
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 0
}
