package sim

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ponder-rlm/ponder/core"
)

// Server is the simulator: an http.Handler serving the OpenAI endpoints
// the rest of Ponder uses. It is safe for concurrent use.
type Server struct {
	opts Options
	kb   *kb
	mux  *http.ServeMux

	closed    chan struct{}
	closeOnce sync.Once

	requests atomic.Int64 // numbers requests for fault injection

	mu       sync.Mutex
	counters map[uint64]int64 // unseeded requests per prompt
	stats    Stats
}

// Stats counts what a Server has answered.
type Stats struct {
	// Requests counts chat completion and embedding requests, faults
	// included.
	Requests int64 `json:"requests"`
	// Kinds counts chat completions by prompt kind (tasks.Kind, or "chat"
	// for prompts no pack built).
	Kinds map[string]int64 `json:"kinds"`
	// Faults counts injected faults: "429", "500", "timeout", "malformed".
	Faults           map[string]int64 `json:"faults"`
	Choices          int64            `json:"choices"`
	PromptTokens     int64            `json:"prompt_tokens"`
	CompletionTokens int64            `json:"completion_tokens"`
}

// maxCounters bounds the per-prompt counters of unseeded requests; past
// it they start again from zero.
const maxCounters = 1 << 20

// New returns a simulator configured by opts (see Options for defaults).
// Benchmark data loads on the first request that needs it.
func New(opts Options) (*Server, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:     o,
		kb:       &kb{dir: o.DataDir, log: o.Logger},
		mux:      http.NewServeMux(),
		closed:   make(chan struct{}),
		counters: map[uint64]int64{},
		stats:    Stats{Kinds: map[string]int64{}, Faults: map[string]int64{}},
	}
	s.mux.HandleFunc("POST /v1/chat/completions", s.chat)
	s.mux.HandleFunc("POST /v1/embeddings", s.embeddings)
	s.mux.HandleFunc("GET /v1/models", s.models)
	s.mux.HandleFunc("GET /v1/models/{model...}", s.model)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "invalid_request_error", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return s, nil
}

// Options returns the options in effect, defaults filled in.
func (s *Server) Options() Options { return s.opts }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Serve answers requests on ln until ctx ends, then shuts down: hanging
// requests (RateTimeout) are released and the others get 5 s to finish.
// It closes ln and returns nil after a shutdown caused by ctx.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		s.Close()
		return fmt.Errorf("sim: serve: %w", err)
	case <-ctx.Done():
	}
	s.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	<-errc
	if err != nil {
		return fmt.Errorf("sim: shutdown: %w", err)
	}
	return nil
}

// Close releases requests hanging on an injected timeout; later ones are
// answered 503. It does not close listeners (Serve and httptest do).
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.stats
	out.Kinds, out.Faults = map[string]int64{}, map[string]int64{}
	for k, v := range s.stats.Kinds {
		out.Kinds[k] = v
	}
	for k, v := range s.stats.Faults {
		out.Faults[k] = v
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	var e apiError
	e.Error.Message, e.Error.Type = msg, typ
	writeJSON(w, status, e)
}

// badParam answers 400 naming the request field at fault, as OpenAI does.
func badParam(w http.ResponseWriter, param, msg string) {
	var e apiError
	e.Error.Message, e.Error.Type, e.Error.Param = msg, "invalid_request_error", &param
	writeJSON(w, http.StatusBadRequest, e)
}

// maxTopLogprobs is OpenAI's bound on top_logprobs; the simulator makes up
// that many alternatives per token, so an unbounded value would let one
// request grow the reply (and the server's memory) without limit.
const maxTopLogprobs = 20

// maxBody bounds a request body; past it the request is answered 413, as
// OpenAI does.
const maxBody = 32 << 20

// decode reads a request's JSON body into v, as strictly as OpenAI: one
// JSON object and nothing after it. Bad JSON is answered 400, naming the
// field and the JSON types; a body over maxBody 413.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	err := dec.Decode(v)
	if err == nil {
		// Trailing data (a second object, a stray brace) is a client bug
		// that a lenient reader would hide.
		var extra json.RawMessage
		if err = dec.Decode(&extra); err == io.EOF {
			return true
		} else if err == nil {
			err = errors.New("trailing data after the JSON object")
		}
	}
	var tooLarge *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "invalid_request_error",
			fmt.Sprintf("request body over %d MiB", maxBody>>20))
	case errors.As(err, &typeErr) && typeErr.Field == "":
		writeError(w, http.StatusBadRequest, "invalid_request_error",
			"invalid JSON body: the body must be a JSON object, got "+jsonValue(typeErr.Value))
	case errors.As(err, &typeErr):
		badParam(w, typeErr.Field, fmt.Sprintf("invalid JSON body: %q must be %s, got %s", typeErr.Field,
			jsonType(typeErr.Type), jsonValue(typeErr.Value)))
	default:
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid JSON body: "+
			strings.TrimPrefix(err.Error(), "json: "))
	}
	return false
}

// jsonType names the JSON type a Go type is read from: clients write
// JSON, not Go.
func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "another JSON type"
}

// jsonValue words encoding/json's description of a value it could not
// read ("string", "number 3.5", "bool").
func jsonValue(v string) string {
	if n, ok := strings.CutPrefix(v, "number "); ok {
		return n
	}
	switch v {
	case "bool":
		return "a boolean"
	case "array", "object":
		return "an " + v
	}
	return "a " + v
}

// inject waits the configured latency and plays this request's fault, if
// it draws one. It reports whether the request was answered.
func (s *Server) inject(w http.ResponseWriter, r *http.Request, stream bool) bool {
	n := s.requests.Add(1)
	rng := rand.New(rand.NewPCG(uint64(s.opts.Seed), uint64(n)^0x9e3779b97f4a7c15))
	u := rng.Float64()
	delay := s.opts.Latency
	if s.opts.Jitter > 0 {
		delay += time.Duration(rng.Int64N(int64(s.opts.Jitter)))
	}
	s.count(func(st *Stats) { st.Requests++ })
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return true
		case <-s.closed:
			writeError(w, http.StatusServiceUnavailable, "server_error", "simulator closed")
			return true
		}
	}
	o := s.opts
	fault := ""
	switch {
	case u < o.Rate429:
		fault = "429"
	case u < o.Rate429+o.Rate500:
		fault = "500"
	case u < o.Rate429+o.Rate500+o.RateTimeout:
		fault = "timeout"
	case u < o.Rate429+o.Rate500+o.RateTimeout+o.RateMalformed:
		fault = "malformed"
	default:
		return false
	}
	s.count(func(st *Stats) { st.Faults[fault]++ })
	s.opts.Logger.Debug().Str("path", r.URL.Path).Str("fault", fault).Msg("sim: injected fault")
	switch fault {
	case "429":
		w.Header().Set("Retry-After", strconv.Itoa(rng.IntN(2)))
		writeError(w, http.StatusTooManyRequests, "rate_limit_exceeded", "simulated rate limit")
	case "500":
		writeError(w, http.StatusInternalServerError, "server_error", "simulated server error")
	case "timeout":
		select {
		case <-r.Context().Done():
		case <-s.closed:
			writeError(w, http.StatusServiceUnavailable, "server_error", "simulator closed")
		}
	default:
		if stream {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: {\"id\": \"chatcmpl-sim\", \"choices\": [{\n\n")
		} else {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id": "chatcmpl-sim", "object": "chat.completion", "choices": [{"index": 0, "message": {`)
		}
	}
	return true
}

func (s *Server) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

func hashMessages(msgs []core.Message) uint64 {
	h := fnv.New64a()
	for _, m := range msgs {
		h.Write([]byte(m.Role))
		h.Write([]byte{0})
		h.Write([]byte(m.Content))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// sampleRNG is the randomness of one sample: a hash of the options' seed,
// the messages, the request's seed (or counter) and the choice index.
func (s *Server) sampleRNG(msgs uint64, seeded bool, seed int64, choice int, stream uint64) *rand.Rand {
	h := fnv.New64a()
	var b [8]byte
	for _, v := range []uint64{uint64(s.opts.Seed), msgs, uint64(seed), uint64(choice), stream} {
		binary.LittleEndian.PutUint64(b[:], v)
		h.Write(b[:])
	}
	if seeded {
		h.Write([]byte{1})
	}
	x := h.Sum64()
	return rand.New(rand.NewPCG(x, x^0xda942042e4dd58b5))
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	if !decode(w, r, &req) {
		return
	}
	if s.inject(w, r, req.Stream) {
		return
	}
	n := 1
	if req.N != nil {
		n = *req.N
	}
	switch {
	case len(req.Messages) == 0:
		badParam(w, "messages", "messages must not be empty")
		return
	case n < 1 || n > 128:
		badParam(w, "n", "n must be in 1..128")
		return
	case req.Temperature != nil && (*req.Temperature < 0 || *req.Temperature > 2):
		badParam(w, "temperature", "temperature must be in [0, 2]")
		return
	case req.TopLogprobs < 0 || req.TopLogprobs > maxTopLogprobs:
		badParam(w, "top_logprobs", fmt.Sprintf("top_logprobs must be in 0..%d", maxTopLogprobs))
		return
	case req.TopLogprobs > 0 && !req.Logprobs:
		badParam(w, "top_logprobs", "top_logprobs needs logprobs: true")
		return
	}
	if param, msg := checkChat(&req); msg != "" {
		badParam(w, param, msg)
		return
	}
	msgs := make([]core.Message, len(req.Messages))
	for i, m := range req.Messages {
		msgs[i] = core.Message{Role: m.Role, Content: string(m.Content)}
	}
	mh := hashMessages(msgs)

	// Which randomness: temperature 0 is greedy (choice 0 of seed 0), a
	// seed fixes the samples, no seed counts requests per prompt.
	greedy := req.Temperature != nil && *req.Temperature == 0
	seeded, seed := true, int64(0)
	switch {
	case greedy:
	case req.Seed != nil:
		seed = *req.Seed
	default:
		seeded = false
		s.mu.Lock()
		if len(s.counters) >= maxCounters {
			clear(s.counters)
		}
		seed = s.counters[mh]
		s.counters[mh]++
		s.mu.Unlock()
	}
	maxTokens := 0
	if req.MaxCompletionTokens != nil {
		maxTokens = *req.MaxCompletionTokens
	}
	if req.MaxTokens != nil {
		maxTokens = *req.MaxTokens
	}

	gen, kind := s.plan(msgs)
	type out struct {
		text, reason string
		toks         []string
		lp           *logprobs
	}
	outs := make([]out, n)
	completion := 0
	for i := range outs {
		idx := i
		if greedy {
			idx = 0
		}
		smp := gen(s.sampleRNG(mh, seeded, seed, idx, 0))
		text, toks, reason := finish(smp.text, req.Stop, maxTokens)
		o := out{text: text, reason: reason, toks: toks}
		if req.Logprobs {
			o.lp = tokenLogprobs(toks, smp.good, req.TopLogprobs, s.sampleRNG(mh, seeded, seed, idx, 1))
		}
		outs[i] = o
		completion += len(toks)
	}
	use := usage{PromptTokens: promptTokens(req.Messages), CompletionTokens: completion}
	use.TotalTokens = use.PromptTokens + use.CompletionTokens
	s.count(func(st *Stats) {
		st.Kinds[kind]++
		st.Choices += int64(n)
		st.PromptTokens += int64(use.PromptTokens)
		st.CompletionTokens += int64(use.CompletionTokens)
	})
	s.opts.Logger.Debug().Str("kind", kind).Int("n", n).Int64("seed", seed).Bool("seeded", seeded).
		Int("prompt_tokens", use.PromptTokens).Int("completion_tokens", use.CompletionTokens).Msg("sim: chat completion")

	model := req.Model
	if model == "" {
		model = s.opts.Models[0]
	}
	id := fmt.Sprintf("chatcmpl-%016x", mh^uint64(seed))
	created := time.Now().Unix()
	if !req.Stream {
		resp := chatResponse{ID: id, Object: "chat.completion", Created: created, Model: model,
			SystemFingerprint: "ponder-sim", Usage: use}
		for i, o := range outs {
			resp.Choices = append(resp.Choices, choice{Index: i, Message: respMessage{Role: "assistant", Content: o.text},
				FinishReason: o.reason, Logprobs: o.lp})
		}
		writeJSON(w, http.StatusOK, resp)
		return
	}

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	send := func(c chunk) bool {
		b, _ := json.Marshal(c)
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return r.Context().Err() == nil
	}
	base := chunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: model, SystemFingerprint: "ponder-sim"}
	for i, o := range outs {
		c := base
		c.Choices = []streamChoice{{Index: i, Delta: delta{Role: "assistant"}}}
		if !send(c) {
			return
		}
		for k, t := range o.toks {
			c := base
			sc := streamChoice{Index: i, Delta: delta{Content: t}}
			if o.lp != nil {
				sc.Logprobs = &logprobs{Content: o.lp.Content[k : k+1]}
			}
			c.Choices = []streamChoice{sc}
			if !send(c) {
				return
			}
		}
		reason := o.reason
		c = base
		c.Choices = []streamChoice{{Index: i, FinishReason: &reason}}
		if !send(c) {
			return
		}
	}
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		c := base
		c.Choices = []streamChoice{}
		c.Usage = &use
		if !send(c) {
			return
		}
	}
	io.WriteString(w, "data: [DONE]\n\n")
	if flusher != nil {
		flusher.Flush()
	}
}

// roles are the message roles OpenAI accepts.
var roles = []string{"system", "developer", "user", "assistant", "tool", "function"}

// checkChat refuses, as OpenAI does, a request OpenAI would refuse and the
// simulator would otherwise have answered (a role-less message, a
// max_tokens below 1), and what the simulator cannot honour: it answers in
// plain text, so it can offer tools only when the model may leave them
// alone (tool_choice "auto" or "none"), and no JSON response format. It
// returns the field at fault and why, or "" when the request is fine.
func checkChat(req *chatRequest) (param, msg string) {
	for i, m := range req.Messages {
		switch {
		case m.Role == "":
			p := fmt.Sprintf("messages[%d].role", i)
			return p, fmt.Sprintf("Missing required parameter: '%s'.", p)
		case !slices.Contains(roles, m.Role):
			return fmt.Sprintf("messages[%d].role", i), fmt.Sprintf("Invalid value: '%s'. Supported values are: '%s'.",
				m.Role, strings.Join(roles, "', '"))
		}
	}
	for _, f := range []struct {
		name string
		v    *int
	}{{"max_tokens", req.MaxTokens}, {"max_completion_tokens", req.MaxCompletionTokens}} {
		if name, v := f.name, f.v; v != nil && *v < 1 {
			return name, fmt.Sprintf("Invalid '%s': integer below minimum value. Expected a value >= 1, but got %d instead.", name, *v)
		}
	}
	for i, t := range req.Tools {
		if t.Type != "function" || t.Function == nil || t.Function.Name == "" {
			return fmt.Sprintf("tools[%d]", i), fmt.Sprintf("tools[%d] must be {\"type\": \"function\", \"function\": {\"name\": ...}}", i)
		}
	}
	if param, msg := checkChoice("tool_choice", req.ToolChoice, len(req.Tools) > 0, "tools"); msg != "" {
		return param, msg
	}
	if param, msg := checkChoice("function_call", req.FunctionCall, len(req.Functions) > 0, "functions"); msg != "" {
		return param, msg
	}
	if rf := req.ResponseFormat; rf != nil {
		switch rf.Type {
		case "text":
		case "json_object", "json_schema":
			return "response_format", fmt.Sprintf("the simulator answers in plain text: it cannot honour response_format %q (leave it out, or use \"text\")", rf.Type)
		default:
			return "response_format.type", fmt.Sprintf("Invalid value: '%s'. Supported values are: 'text', 'json_object' and 'json_schema'.", rf.Type)
		}
	}
	return "", ""
}

// checkChoice checks tool_choice (or the older function_call): "none" and
// "auto" the simulator honours by answering in text; "required" or a named
// function it cannot, as it never calls one.
func checkChoice(param string, raw json.RawMessage, offered bool, list string) (string, string) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", ""
	}
	if !offered {
		return param, fmt.Sprintf("Invalid value for '%s': '%s' is only allowed when '%s' are specified.", param, param, list)
	}
	var choice string
	if json.Unmarshal(raw, &choice) == nil {
		switch choice {
		case "none", "auto":
			return "", ""
		case "required":
		default:
			return param, fmt.Sprintf("Invalid value: '%s'. Supported values are: 'none', 'auto' and 'required'.", choice)
		}
	}
	return param, fmt.Sprintf("the simulator answers in plain text and never calls a tool: it cannot honour %s %s (use \"auto\" or \"none\")", param, raw)
}

func (s *Server) embeddings(w http.ResponseWriter, r *http.Request) {
	var req embeddingRequest
	if !decode(w, r, &req) {
		return
	}
	if s.inject(w, r, false) {
		return
	}
	inputs, err := embeddingInputs(req.Input)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", err.Error())
		return
	}
	dim := s.opts.EmbeddingDim
	if req.Dimensions != 0 {
		dim = req.Dimensions
	}
	if dim < 1 || dim > 65536 {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "dimensions must be in 1..65536")
		return
	}
	if req.EncodingFormat != "" && req.EncodingFormat != "float" && req.EncodingFormat != "base64" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "encoding_format must be float or base64")
		return
	}
	model := req.Model
	if model == "" {
		model = DefaultEmbeddingModel
	}
	resp := embeddingResponse{Object: "list", Model: model}
	for i, in := range inputs {
		v := Embed(in, dim)
		e := embedding{Object: "embedding", Index: i, Embedding: v}
		if req.EncodingFormat == "base64" {
			e.Embedding = base64Floats(v)
		}
		resp.Data = append(resp.Data, e)
		resp.Usage.PromptTokens += CountTokens(in)
	}
	resp.Usage.TotalTokens = resp.Usage.PromptTokens
	s.count(func(st *Stats) { st.PromptTokens += int64(resp.Usage.PromptTokens) })
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) models(w http.ResponseWriter, _ *http.Request) {
	list := modelList{Object: "list"}
	for _, m := range s.opts.Models {
		list.Data = append(list.Data, modelEntry{ID: m, Object: "model", Created: 1735689600, OwnedBy: "ponder-sim"})
	}
	writeJSON(w, http.StatusOK, list)
}

// model answers GET /v1/models/{model} (the SDKs' models.retrieve) for the
// ids /v1/models lists.
func (s *Server) model(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("model")
	for _, m := range s.opts.Models {
		if m == id {
			writeJSON(w, http.StatusOK, modelEntry{ID: m, Object: "model", Created: 1735689600, OwnedBy: "ponder-sim"})
			return
		}
	}
	var e apiError
	code := "model_not_found"
	e.Error.Message, e.Error.Type, e.Error.Code = fmt.Sprintf("the model %q is not listed by /v1/models", id), "invalid_request_error", &code
	writeJSON(w, http.StatusNotFound, e)
}

var _ http.Handler = (*Server)(nil)
