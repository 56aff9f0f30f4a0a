package llm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	openai "github.com/sashabaranov/go-openai"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/endpoint"
)

// Options configures a Client. The zero value (or nil) gives defaults.
type Options struct {
	// Logger receives debug events (model, n, tokens, latency, attempt).
	// The zero value logs nothing.
	Logger zerolog.Logger
	// HTTPClient sends the requests; nil means a fresh http.Client whose
	// transport keeps config.LLM.Concurrency connections open between
	// requests. Its Transport is wrapped, never modified (nil means that
	// pooled one); without a CheckRedirect of its own it follows only
	// redirects that keep the method and the origin (checkRedirect).
	// Leave its Timeout at zero: the client bounds each attempt with
	// config.LLM.Timeout.
	HTTPClient *http.Client
	// Sleep waits d between attempts, returning early with ctx.Err() when
	// ctx is done; nil means a real timer. Tests pass a fake.
	Sleep func(ctx context.Context, d time.Duration) error
	// MaxResponseBytes bounds the body of one response; a longer one is
	// an ErrLLMBadResponse. Zero means 64 MiB.
	MaxResponseBytes int64
}

// Client is a core.Policy over an OpenAI-compatible endpoint. It is safe for
// concurrent use.
type Client struct {
	cfg config.LLM
	api *openai.Client
	// ep keeps the endpoint's URL, address and API key out of messages,
	// which name it endpointName; its URL() is for the log.
	ep    *endpoint.Endpoint
	log   zerolog.Logger
	sleep func(ctx context.Context, d time.Duration) error
	// maxBody bounds the body of one response.
	maxBody int64

	// noN holds the models for which the endpoint rejected or ignored
	// n > 1 (mode "auto").
	noN modelSet
	// usageEstimated is set once an answer came without token counts and
	// got estimates (fillUsage), so that the log says so once.
	usageEstimated atomic.Bool
	// cutWarned holds the models whose samples cut off while reasoning
	// were left out and logged at warn level (finish).
	cutWarned modelSet
}

var _ core.Policy = (*Client)(nil)

// New returns a client for the endpoint cfg describes. cfg.BaseURL is
// required and includes the API prefix (http://127.0.0.1:8000/v1).
func New(cfg config.LLM, opts *Options) (*Client, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if cfg.BaseURL == "" {
		return nil, errors.New("llm base url is empty: set PONDER_LLM_BASE_URL or --llm-url (e.g. http://127.0.0.1:8000/v1)")
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("llm base url is not an http(s) url: set PONDER_LLM_BASE_URL or --llm-url to one such as http://127.0.0.1:8000/v1")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		// The paths (/chat/completions) are appended to the base url, so a
		// query or fragment would swallow them; it may also hold a key,
		// which every error message names the url would then show.
		return nil, errors.New("llm base url has a query or fragment (?... or #...): set PONDER_LLM_BASE_URL or --llm-url to the api prefix alone, such as http://127.0.0.1:8000/v1, and the key in PONDER_LLM_API_KEY")
	}
	switch cfg.N {
	case "":
		cfg.N = "auto"
	case "auto", "yes", "no":
	default:
		return nil, fmt.Errorf("llm n mode %q is unknown: set PONDER_LLM_N to auto, yes or no", cfg.N)
	}
	if cfg.MaxRetries < 0 {
		return nil, fmt.Errorf("llm max retries is %d: set PONDER_LLM_MAX_RETRIES to 0 or more", cfg.MaxRetries)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("llm timeout is %s: set PONDER_LLM_TIMEOUT to a positive duration", cfg.Timeout)
	}

	hc := &http.Client{}
	if o.HTTPClient != nil {
		copied := *o.HTTPClient
		hc = &copied
	}
	if hc.CheckRedirect == nil {
		hc.CheckRedirect = checkRedirect
	}
	base := hc.Transport
	if base == nil {
		base = pooledTransport(cfg.Concurrency)
	}
	maxBody := o.MaxResponseBytes
	if maxBody <= 0 {
		maxBody = defaultMaxResponseBytes
	}
	hc.Transport = &transport{base: base, max: maxBody}

	oc := openai.DefaultConfig(cfg.APIKey)
	oc.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	oc.HTTPClient = hc

	sleep := o.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	return &Client{
		cfg:     cfg,
		api:     openai.NewClientWithConfig(oc),
		ep:      endpoint.New(endpointName, cfg.BaseURL, cfg.APIKey),
		log:     o.Logger,
		sleep:   sleep,
		maxBody: maxBody,
	}, nil
}

// Complete asks the endpoint for req.N samples (at least one). When the
// endpoint does not honour n, or the model is an OpenAI reasoning model
// (o1, o3, o4, gpt-5, gpt-6: no n, temperature or logprobs), the missing
// samples come from sequential requests with n=1 (and seed+i when req.Seed
// is set). If a sequential
// request fails after some samples arrived, Complete returns those samples
// and no error; callers see fewer choices than they asked for. Samples cut
// off at max_tokens while the model was still reasoning (no content, only
// reasoning_content or reasoning) are left out too, which the log says
// at warn level once per model; when no sample is left, Complete fails
// saying to raise the limit (see cutWhileReasoning).
func (c *Client) Complete(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
	n := max(req.N, 1)
	base := c.chatRequest(req)
	wantLogprobs := req.Logprobs
	var out core.Completion
	// sent counts the samples the endpoint sent, cut ones included
	// (whose requests are not to be made again); cut counts those.
	sent, cut := 0, 0

	mode := c.cfg.N
	if reasoningModel(base.Model) {
		mode = "no" // go-openai refuses n > 1 for these models
	}
	rejected := false // the n request failed in a way n may explain
	if n > 1 && (mode == "yes" || (mode == "auto" && !c.noN.has(base.Model))) {
		r := base
		r.N = n
		resp, estimated, err := c.chat(ctx, r, n)
		switch {
		case err == nil:
			out.TokensEstimated = estimated
			s, k := add(&out, resp, n, wantLogprobs)
			sent, cut = sent+s, cut+k
			if mode == "yes" {
				return c.finish(out, cut, base, req)
			}
			if len(resp.Choices) < n && c.noN.add(r.Model) {
				c.log.Debug().Str("model", r.Model).Int("n", n).Int("choices", len(resp.Choices)).
					Msg("llm endpoint ignored n for this model; sending it sequential requests from now on")
			}
		case mode == "auto" && rejectsRequest(err):
			rejected = true
		default:
			return core.Completion{}, err
		}
	}

	for i := sent; i < n; i++ {
		r := base
		if base.Seed != nil {
			s := *base.Seed + i
			r.Seed = &s
		}
		resp, estimated, err := c.chat(ctx, r, 1)
		if err != nil {
			if ctx.Err() != nil || len(out.Choices) == 0 {
				return core.Completion{}, err
			}
			c.log.Debug().Err(err).Int("n", n).Int("choices", len(out.Choices)).
				Msg("llm sequential sample failed; returning the samples so far")
			return c.finish(out, cut, base, req)
		}
		if rejected {
			rejected = false
			if c.noN.add(r.Model) {
				c.log.Debug().Str("model", r.Model).Int("n", n).
					Msg("llm endpoint rejected n for this model; sending it sequential requests from now on")
			}
		}
		_, k := add(&out, resp, 1, wantLogprobs)
		cut += k
		out.TokensEstimated = out.TokensEstimated || estimated
	}
	return c.finish(out, cut, base, req)
}

// finish returns out, or, when every sample was cut off while the model
// was reasoning (cut of them, none left), an error saying which limit to
// raise. An empty choice would become an empty step or a judge's
// unreadable score with nothing to say why; the operator can fix the
// limit, the search cannot.
func (c *Client) finish(out core.Completion, cut int, r openai.ChatCompletionRequest, req core.CompletionRequest) (core.Completion, error) {
	if cut == 0 {
		return out, nil
	}
	limit := max(r.MaxTokens, r.MaxCompletionTokens)
	detail, advice := cutAdvice(limit, req)
	if len(out.Choices) > 0 {
		// The search goes on with fewer samples than it asked for: the
		// result's warnings say so (Completion.Note), and the operator
		// hears of it once per model, at warn level, and at debug level
		// each time.
		out.Note = fmt.Sprintf("%d of %d samples ran out of tokens while the model was still reasoning and were left out (finish_reason length, reasoning and no content%s): %s",
			cut, len(out.Choices)+cut, detail, advice)
		ev := c.log.Debug()
		msg := "llm samples cut off at max_tokens while the model was reasoning (no content) left out"
		if c.cutWarned.add(r.Model) {
			ev = c.log.Warn()
			msg = "llm samples cut off at max_tokens while the model was still reasoning (no content) were left out, so the search got fewer samples than it asked for (logged once per model; the debug log has each): " + advice
		}
		ev.Str("model", r.Model).Int("cut", cut).Int("choices", len(out.Choices)).Int("max_tokens", limit).
			Str("purpose", req.Purpose).Msg(msg)
		return out, nil
	}
	c.log.Debug().Str("model", r.Model).Int("cut", cut).Int("max_tokens", limit).
		Msg("llm samples cut off at max_tokens while the model was reasoning (no content): none left")
	const what = "%s's answer ran out of tokens while the model was still reasoning (finish_reason length, reasoning and no content%s): %s"
	return core.Completion{}, &billedError{error: newError(core.ErrLLMBadResponse, nil, what, endpointName, detail, advice),
		prompt: out.PromptTokens, completion: out.CompletionTokens}
}

// cutAdvice says which max_tokens cut the samples off (limit, sent for
// req) and what to change.
func cutAdvice(limit int, req core.CompletionRequest) (detail, advice string) {
	switch {
	case req.MaxTokens > 0:
		// Ponder's own limit for this call (a judge's 256 tokens):
		// PONDER_LLM_MAX_TOKENS does not apply to it.
		call := "this call"
		if req.Purpose != "" {
			call = "the " + req.Purpose + " call"
		}
		detail = fmt.Sprintf(", max_tokens %d set by %s", limit, call)
		advice = "lower the model's reasoning effort at the endpoint, or use a model that reasons less"
	case limit > 0:
		detail = fmt.Sprintf(", max_tokens %d", limit)
		advice = "raise PONDER_LLM_MAX_TOKENS or lower the model's reasoning effort at the endpoint"
	default:
		detail = ", the endpoint's default max_tokens"
		advice = "set PONDER_LLM_MAX_TOKENS above the endpoint's default or lower the model's reasoning effort at the endpoint"
	}
	return detail, advice
}

// billedError is a failed call the model spent tokens on: the run's token
// budget counts them (core.Policy).
type billedError struct {
	error
	prompt, completion int64
}

func (e *billedError) Unwrap() error { return e.error }

// BilledTokens implements what core.Env.Complete looks for.
func (e *billedError) BilledTokens() (prompt, completion int64) { return e.prompt, e.completion }

// Models lists the ids of the models the endpoint serves (GET /models).
func (c *Client) Models(ctx context.Context) ([]string, error) {
	var list openai.ModelsList
	err := c.do(ctx, "models", "", nil, func(ctx context.Context) error {
		var err error
		list, err = c.api.ListModels(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(list.Models))
	for _, m := range list.Models {
		ids = append(ids, m.ID)
	}
	return ids, nil
}

// chat sends one chat completion request with retries and checks that the
// answer has choices. estimated says its token counts are estimates (the
// answer had none).
func (c *Client) chat(ctx context.Context, r openai.ChatCompletionRequest, n int) (resp openai.ChatCompletionResponse, estimated bool, err error) {
	var patch map[string]any
	if r.Temperature == 0 && !reasoningModel(r.Model) {
		// go-openai omits a zero temperature, which servers read as their
		// default (often 1); greedy decoding must say 0 explicitly.
		// Reasoning models take no temperature but their own.
		patch = map[string]any{"temperature": 0}
	}
	start := time.Now()
	err = c.do(ctx, "chat", r.Model, patch, func(ctx context.Context) error {
		a := attemptOf(ctx)
		a.keep = true
		var err error
		resp, err = c.api.CreateChatCompletion(ctx, r)
		if err == nil && len(resp.Choices) == 0 {
			err = errNoChoices
		}
		if err == nil {
			addReasoning(&resp, a.raw)
		}
		a.raw = nil
		return err
	})
	if err != nil {
		return resp, false, err
	}
	estimated = c.fillUsage(&resp, r)
	c.log.Debug().Str("model", r.Model).Int("n", n).Int("choices", len(resp.Choices)).
		Int("prompt_tokens", resp.Usage.PromptTokens).Int("completion_tokens", resp.Usage.CompletionTokens).
		Bool("usage_estimated", estimated).Dur("latency", time.Since(start)).Msg("llm completion")
	return resp, estimated, nil
}

// add appends up to limit choices of resp to out, but those cut off while
// the model was reasoning, and sums the usage (of all: they were
// generated). It returns how many choices it took and how many of those
// were cut off.
func add(out *core.Completion, resp openai.ChatCompletionResponse, limit int, logprobs bool) (took, cut int) {
	for i, ch := range resp.Choices {
		if i == limit {
			break
		}
		took++
		if cutWhileReasoning(ch) {
			cut++
			continue
		}
		out.Choices = append(out.Choices, choiceFrom(ch, logprobs))
	}
	// chat estimated missing or negative counts; a negative one would give
	// the search tokens back.
	out.PromptTokens += int64(max(resp.Usage.PromptTokens, 0))
	out.CompletionTokens += int64(max(resp.Usage.CompletionTokens, 0))
	if out.Model == "" {
		out.Model = resp.Model
	}
	return took, cut
}

// maxModels bounds a modelSet. Model names come from a server's clients
// (`serve`'s <strategy>:<model> names are not checked against the
// endpoint's list), so the set must not grow without end; a model past the
// bound is asked for n each time, which costs a request a call at worst.
const maxModels = 1024

// modelSet is a bounded set of model names, safe for concurrent use. The
// n detection is per model: one endpoint (a proxy, a vLLM or LiteLLM
// serving several models) may honour n for one model and not another,
// and one model that ignores n must not send every other model's samples
// as separate requests for the life of the process.
type modelSet struct {
	mu sync.Mutex
	m  map[string]struct{}
}

func (s *modelSet) has(model string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[model]
	return ok
}

// add adds model and reports whether it was not there yet (and the set
// had room).
func (s *modelSet) add(model string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[model]; ok || len(s.m) >= maxModels {
		return false
	}
	if s.m == nil {
		s.m = make(map[string]struct{})
	}
	s.m[model] = struct{}{}
	return true
}

// pooledTransport is http.DefaultTransport keeping up to concurrency idle
// connections to the endpoint (8 when it is not set) rather than its 2:
// with the default, every wave of more than 2 concurrent requests closed
// the connections past 2 after use and dialled them again (and paid a TLS
// handshake each) for the next wave.
func pooledTransport(concurrency int) http.RoundTripper {
	def, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return http.DefaultTransport
	}
	t := def.Clone()
	if concurrency <= 0 {
		concurrency = 8
	}
	t.MaxIdleConnsPerHost = max(concurrency, http.DefaultMaxIdleConnsPerHost)
	t.MaxIdleConns = max(t.MaxIdleConns, t.MaxIdleConnsPerHost)
	return t
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
