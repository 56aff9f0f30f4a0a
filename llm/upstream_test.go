package llm_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/testutil"
	"github.com/ponder-rlm/ponder/llm"
)

// TestConnectionsReused sends waves of as many concurrent requests as
// config.LLM.Concurrency allows: the client keeps that many connections
// open between waves instead of dialling (and, over TLS, handshaking) most
// of them again for each wave.
func TestConnectionsReused(t *testing.T) {
	t.Parallel()
	const conc, waves = 6, 3
	var dialled atomic.Int64
	var mu sync.Mutex
	arrived := 0
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Answer only once the whole wave is in flight, so that each
		// wave needs conc connections at once.
		mu.Lock()
		arrived++
		wave := release
		if arrived%conc == 0 {
			close(release)
			release = make(chan struct{})
		}
		mu.Unlock()
		<-wave
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":"x","model":"m","choices":[{"message":{"content":"ok"},"finish_reason":"stop"}]}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dialled.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	cfg := testConfig(srv.URL + "/v1")
	cfg.Concurrency = conc
	c := newClient(t, cfg, nil)
	for range waves {
		var wg sync.WaitGroup
		for range conc {
			wg.Go(func() {
				if _, err := c.Complete(context.Background(), core.CompletionRequest{Messages: user("hi")}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	// A connection goes back to the pool just after its answer was read,
	// so a wave may start before the last one's are back: allow two late
	// ones (2 idle connections kept, as before, make 14).
	if n := dialled.Load(); n > conc+2 {
		t.Errorf("%d waves of %d concurrent requests opened %d connections, want %d", waves, conc, n, conc)
	}
}

// TestRedirects checks that a redirect keeping the method and the server
// (307, 308) is followed, and that one Go would resend as a GET (301, 302,
// 303: the endpoint then answers 405, which read as a rejected request) or
// to another host (without the API key) is an error saying to change the
// base URL, sent once.
func TestRedirects(t *testing.T) {
	t.Parallel()
	other := startFake(t, &fakeLLM{})
	for _, tc := range []struct {
		status  int
		to      string // "" means the same server's /v1
		wantErr bool
	}{
		{http.StatusMovedPermanently, "", true},
		{http.StatusFound, "", true},
		{http.StatusSeeOther, "", true},
		{http.StatusTemporaryRedirect, "", false},
		{http.StatusPermanentRedirect, "", false},
		{http.StatusTemporaryRedirect, other.URL(), true},
	} {
		t.Run(fmt.Sprint(tc.status, tc.to != ""), func(t *testing.T) {
			f := &fakeLLM{}
			var redirected atomic.Int64
			mux := http.NewServeMux()
			mux.HandleFunc("POST /v1/chat/completions", f.chat)
			mux.HandleFunc("/old/v1/", func(w http.ResponseWriter, r *http.Request) {
				redirected.Add(1)
				to := tc.to
				if to == "" {
					to = "/v1"
				}
				http.Redirect(w, r, to+strings.TrimPrefix(r.URL.Path, "/old/v1"), tc.status)
			})
			srv := httptest.NewServer(mux)
			t.Cleanup(srv.Close)
			s := &sleeper{}
			c := newClient(t, testConfig(srv.URL+"/old/v1"), &llm.Options{Sleep: s.Sleep})
			got, err := c.Complete(context.Background(), core.CompletionRequest{Messages: user("hi")})
			if !tc.wantErr {
				if err != nil || len(got.Choices) != 1 || len(f.requests()) != 1 {
					t.Fatalf("got %+v, %v after %d requests; want one choice from the redirected request", got, err, len(f.requests()))
				}
				return
			}
			checkErr(t, err, core.ErrLLMUnavailable)
			if want := fmt.Sprintf("answered %d, a redirect", tc.status); !strings.Contains(err.Error(), want) ||
				!strings.Contains(err.Error(), "PONDER_LLM_BASE_URL") {
				t.Errorf("error %q: want it to say %q and the setting to fix", err, want)
			}
			checkNoAddress(t, err, srv.URL)
			if n := redirected.Load(); n != 1 || len(s.waits()) != 0 {
				t.Errorf("%d requests, %d waits; want one request, not retried", n, len(s.waits()))
			}
			if n := len(f.requests()) + len(other.requests()); n != 0 {
				t.Errorf("the redirect was followed (%d requests)", n)
			}
		})
	}
}

// TestNotAnAnswer checks that a page or a stream where one JSON answer was
// expected is named for what it is (a proxy's page, its title; a stream
// forced by a proxy), not by the first byte that is not JSON, and that an
// error status's HTML page is quoted by its title, not its markup.
func TestNotAnAnswer(t *testing.T) {
	t.Parallel()
	page := "<!DOCTYPE html>\n<html><head><title>Sign in &middot; Corp SSO</title></head><body><form>...</form></body></html>"
	stream := "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"The\"}}]}\n\n"
	for _, tc := range []struct {
		name    string
		rep     reply
		wantErr error
		want    string
		not     string
	}{
		{"login page", reply{body: page, mediaType: "text/html"}, core.ErrLLMBadResponse,
			`sent an HTML page, "Sign in · Corp SSO", not json`, "invalid character"},
		{"page without a type", reply{body: "<html><body>It works!</body></html>", mediaType: "text/plain"}, core.ErrLLMBadResponse,
			"sent an HTML page, not json", "invalid character"},
		{"stream", reply{body: stream, mediaType: "text/event-stream"}, core.ErrLLMBadResponse,
			"sent an event stream", "invalid character"},
		{"stream without [DONE] or type", reply{body: stream, mediaType: "text/plain"}, core.ErrLLMBadResponse,
			"sent an event stream", "invalid character"},
		{"gateway page", reply{status: 502, body: "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>",
			mediaType: "text/html"}, core.ErrLLMUnavailable, `answered 502 after 1 attempt (an HTML page, "502 Bad Gateway")`, "<center>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := startFake(t, (&fakeLLM{}).push(tc.rep))
			cfg := testConfig(f.URL())
			cfg.MaxRetries = 0
			_, err := newClient(t, cfg, nil).Complete(context.Background(), core.CompletionRequest{Messages: user("hi")})
			checkErr(t, err, tc.wantErr)
			if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, tc.not) {
				t.Errorf("error %q: want it to say %q, not %q", msg, tc.want, tc.not)
			}
		})
	}
}

// TestContentParts checks that an answer whose content is a list of parts
// (Mistral's reasoning models: a thinking part, then the text) gives the
// text parts' text, not an empty choice.
func TestContentParts(t *testing.T) {
	t.Parallel()
	f := startFake(t, (&fakeLLM{}).push(reply{body: `{"id":"x","model":"magistral","choices":[{"index":0,"message":{"role":"assistant","content":[` +
		`{"type":"thinking","thinking":[{"type":"text","text":"2+4 is 6"}]},{"type":"text","text":"The answer"},{"type":"text","text":" is 6."}]},` +
		`"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":9}}`}))
	got, err := newClient(t, testConfig(f.URL()), nil).Complete(context.Background(), core.CompletionRequest{Messages: user("hi")})
	if err != nil || len(got.Choices) != 1 || got.Choices[0].Text != "The answer is 6." {
		t.Fatalf("got %+v, %v; want one choice saying %q", got, err, "The answer is 6.")
	}
}

// TestUsageMissing checks that an answer without token counts (a proxy
// that drops usage, or sends zeros or negative counts) is charged an
// estimate by the documented rule (docs/configuration.md): token budgets
// would else never stop a search. Counts the endpoint sent are kept, and
// the debug log says once that estimates are in use.
func TestUsageMissing(t *testing.T) {
	t.Parallel()
	// Prompt: 3 (reply) + 4+4 ("You are terse.", 14 bytes) + 4+3
	// ("what is 2+2?", 12 bytes) = 18.
	msgs := []core.Message{{Role: "system", Content: "You are terse."}, {Role: "user", Content: "what is 2+2?"}}
	answer := func(usage string, contents ...string) string {
		var chs []string
		for i, c := range contents {
			chs = append(chs, fmt.Sprintf(`{"index":%d,"message":{"role":"assistant","content":%q},"finish_reason":"stop"}`, i, c))
		}
		return `{"id":"x","model":"m","choices":[` + strings.Join(chs, ",") + `]` + usage + `}`
	}
	for _, tc := range []struct {
		name                 string
		body                 string
		n                    int
		wantPrompt, wantComp int64
		wantLog              bool
	}{
		// "The answer is 4." is 16 bytes: 4 tokens.
		{"no usage", answer("", "The answer is 4."), 1, 18, 4, true},
		{"usage null", answer(`,"usage":null`, "The answer is 4."), 1, 18, 4, true},
		{"zero counts", answer(`,"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}`, "The answer is 4."), 1, 18, 4, true},
		// Negative counts would give a token budget back.
		{"negative counts", answer(`,"usage":{"prompt_tokens":-1000000,"completion_tokens":-5}`, "The answer is 4."), 1, 18, 4, true},
		{"only the prompt counted", answer(`,"usage":{"prompt_tokens":30}`, "The answer is 4."), 1, 30, 4, true},
		// One token per character that is not ASCII: 4, and "café" 1+1.
		{"not ascii", answer("", "答案是四", "café"), 2, 18, 6, true},
		// n in one answer: the prompt once, every choice's text.
		{"n choices", answer("", "The answer is 4.", "4"), 2, 18, 5, true},
		{"counts kept", answer(`,"usage":{"prompt_tokens":7,"completion_tokens":2}`, "The answer is 4."), 1, 7, 2, false},
		// Reasoning is generated text too: "4" 1 token, "2+2 is 4, so"
		// 12 bytes 3, under either name; one that is not text is not
		// reasoning.
		{"reasoning_content", `{"id":"x","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"4","reasoning_content":"2+2 is 4, so"},"finish_reason":"stop"}]}`, 1, 18, 4, true},
		{"reasoning", `{"id":"x","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"4","reasoning":"2+2 is 4, so"},"finish_reason":"stop"}]}`, 1, 18, 4, true},
		{"reasoning not text", `{"id":"x","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"4","reasoning":{"text":"2+2 is 4, so"}},"finish_reason":"stop"}]}`, 1, 18, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := startFake(t, (&fakeLLM{}).push(reply{body: tc.body}, reply{body: tc.body}))
			var buf testutil.LockedBuffer
			c := newClient(t, testConfig(f.URL()), &llm.Options{Logger: zerolog.New(&buf).Level(zerolog.DebugLevel)})
			for range 2 {
				got, err := c.Complete(context.Background(), core.CompletionRequest{Messages: msgs, N: tc.n})
				if err != nil || len(got.Choices) != tc.n || got.PromptTokens != tc.wantPrompt || got.CompletionTokens != tc.wantComp {
					t.Fatalf("got %+v, %v; want %d choices, %d prompt and %d completion tokens", got, err, tc.n, tc.wantPrompt, tc.wantComp)
				}
				// The trace marks estimates (core's llm_call event).
				if got.TokensEstimated != tc.wantLog {
					t.Errorf("tokens estimated %v, want %v", got.TokensEstimated, tc.wantLog)
				}
			}
			if n := strings.Count(buf.String(), "without token counts"); n != map[bool]int{true: 1}[tc.wantLog] {
				t.Errorf("the log says %d times that counts are estimated, want it once when they are:\n%s", n, buf.String())
			}
		})
	}
}

// TestNDetectionPerModel checks that `llm.n auto` learns per model that
// the endpoint ignores or rejects n: behind one endpoint (a proxy, `serve`
// with <strategy>:<model> names) a model that ignores n must not send
// every other model's samples as separate requests from then on.
func TestNDetectionPerModel(t *testing.T) {
	t.Parallel()
	f := startFake(t, &fakeLLM{ignoreNModel: "ignores", rejectNModel: "rejects"})
	c := newClient(t, testConfig(f.URL()), &llm.Options{Sleep: (&sleeper{}).Sleep})
	type sentN struct {
		Model string
		N     int
	}
	var want []sentN
	for _, call := range []struct {
		model string
		n     int
		sent  []int // n of each request; 0 means none sent
	}{
		{"ignores", 3, []int{3, 0, 0}},
		{"rejects", 2, []int{2, 0, 0}},
		{"honours", 3, []int{3}},
		{"ignores", 2, []int{0, 0}},
		{"rejects", 2, []int{0, 0}},
		{"honours", 2, []int{2}},
	} {
		got, err := c.Complete(context.Background(), core.CompletionRequest{Model: call.model, Messages: user("hi"), N: call.n})
		if err != nil || len(got.Choices) != call.n {
			t.Fatalf("model %s: got %+v, %v; want %d choices", call.model, got, err, call.n)
		}
		for _, n := range call.sent {
			want = append(want, sentN{call.model, n})
		}
	}
	var got []sentN
	for _, r := range f.requests() {
		got = append(got, sentN{r.req.Model, r.req.N})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

// TestRetryAfterCapped checks that a Retry-After longer than the 5
// minutes Ponder waits is reported as asked (an hour), saying that Ponder
// waits less, not as the 5 minutes it was cut to; that the wait taken is
// the 5 minutes; and that the error carries the hour for a server's
// clients.
func TestRetryAfterCapped(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		status   int
		deadline time.Duration // 0: none
		wantErr  error
		want     string
		waits    int
	}{
		{"429 until retries run out", 429, 0, core.ErrLLMRateLimited,
			"answered 429 after 2 attempts (busy) and asked to wait 1h0m0s (Ponder waits 5m0s at most): lower PONDER_LLM_CONCURRENCY", 1},
		{"429 past the deadline", 429, time.Minute, core.ErrLLMRateLimited,
			"answered 429 after 1 attempt (busy) and asked to wait 1h0m0s (Ponder waits 5m0s at most), past the deadline", 0},
		{"503 for maintenance", 503, 0, core.ErrLLMUnavailable,
			"answered 503 after 2 attempts (busy) and asked to wait 1h0m0s (Ponder waits 5m0s at most): check the server's logs", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep := reply{status: tc.status, retryAfter: "3600", body: `{"error":{"message":"busy"}}`}
			f := startFake(t, (&fakeLLM{}).push(rep, rep))
			cfg := testConfig(f.URL())
			cfg.MaxRetries = 1
			s := &sleeper{}
			ctx := context.Background()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.deadline)
				defer cancel()
			}
			_, err := newClient(t, cfg, &llm.Options{Sleep: s.Sleep}).Complete(ctx, core.CompletionRequest{Messages: user("hi")})
			checkErr(t, err, tc.wantErr)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q: want it to say %q", err, tc.want)
			}
			want := make([]time.Duration, tc.waits)
			for i := range want {
				want[i] = 5 * time.Minute
			}
			if diff := cmp.Diff(want, s.waits(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("waits (-want +got):\n%s", diff)
			}
			var ra interface{ RetryAfter() time.Duration }
			if tc.status == 429 && (!errors.As(err, &ra) || ra.RetryAfter() != time.Hour) {
				t.Errorf("error %v: want it to carry the hour asked for", err)
			}
		})
	}
}

// TestRedirectLoop checks that redirects that lead back to an address
// already asked, or on past 10 of them, fail at once saying so: Go's own
// limit read as a network error and was retried, each try running the
// whole chain again.
func TestRedirectLoop(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		base     string                   // the base URL's path
		next     func(path string) string // where path redirects to
		want     string
		requests int64
	}{
		{"to itself", "/a/v1", func(p string) string { return p }, "answered 307, a redirect back to an address it had already redirected from (a redirect loop)", 1},
		{"between two", "/a/v1", func(p string) string {
			if strings.HasPrefix(p, "/a/") {
				return "/b/" + p[3:]
			}
			return "/a/" + p[3:]
		}, "answered 307, a redirect back to an address it had already redirected from (a redirect loop)", 2},
		{"without end", "/r0/v1", func(p string) string {
			var i int
			fmt.Sscanf(p, "/r%d/", &i)
			return fmt.Sprintf("/r%d/%s", i+1, p[strings.Index(p[1:], "/")+2:])
		}, "redirected the request more than 10 times", 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var requests atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				http.Redirect(w, r, tc.next(r.URL.Path), http.StatusTemporaryRedirect)
			}))
			t.Cleanup(srv.Close)
			s := &sleeper{}
			_, err := newClient(t, testConfig(srv.URL+tc.base), &llm.Options{Sleep: s.Sleep}).Complete(context.Background(),
				core.CompletionRequest{Messages: user("hi")})
			checkErr(t, err, core.ErrLLMUnavailable)
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "PONDER_LLM_BASE_URL") {
				t.Errorf("error %q: want it to say %q and the setting to check", err, tc.want)
			}
			checkNoAddress(t, err, srv.URL)
			if n := requests.Load(); n != tc.requests || len(s.waits()) != 0 {
				t.Errorf("%d requests, %d waits; want %d requests, not retried", n, len(s.waits()), tc.requests)
			}
		})
	}
}

// TestCutWhileReasoning checks answers whose content is null and whose
// reasoning (reasoning_content for DeepSeek and older vLLM, reasoning for
// newer vLLM and Ollama) holds the model's thinking: cut off at
// max_tokens (finish_reason length) such a sample is left out, saying so
// at warn level once per model, and when none is left the call fails
// saying which limit to raise, rather than giving an empty step; one that
// ended otherwise gives its reasoning as the text.
func TestCutWhileReasoning(t *testing.T) {
	t.Parallel()
	thinking := "Okay, 6*7. Maybe 42... wait, let me check: 6*7 = 6*5 + 6*2 ="
	for _, field := range []string{"reasoning_content", "reasoning"} {
		msg := func(content, reasoning, finish string) string {
			c := "null"
			if content != "" {
				c = fmt.Sprintf("%q", content)
			}
			return fmt.Sprintf(`{"message":{"role":"assistant","content":%s,%q:%q},"finish_reason":%q}`, c, field, reasoning, finish)
		}
		answer := func(choices ...string) string {
			return `{"id":"x","model":"r1","choices":[` + strings.Join(choices, ",") +
				`],"usage":{"prompt_tokens":9,"completion_tokens":512}}`
		}
		cut := msg("", thinking, "length")
		for _, tc := range []struct {
			name      string
			mode      string // config.LLM.N
			cfgMax    int    // PONDER_LLM_MAX_TOKENS
			req       core.CompletionRequest
			replies   []string
			want      []string // choice texts
			wantErr   error
			wantIn    []string // in the error
			wantNotIn string
			wantWarn  string // in the one warning, "" for none
			requests  int
		}{
			{name: "cut off, max tokens from the config", cfgMax: 512, req: core.CompletionRequest{}, replies: []string{answer(cut)},
				wantErr: core.ErrLLMBadResponse, wantIn: []string{"ran out of tokens while the model was still reasoning", "max_tokens 512", "raise PONDER_LLM_MAX_TOKENS"}, requests: 1},
			{name: "cut off, the endpoint's default", req: core.CompletionRequest{}, replies: []string{answer(cut)},
				wantErr: core.ErrLLMBadResponse, wantIn: []string{"the endpoint's default max_tokens", "set PONDER_LLM_MAX_TOKENS"}, requests: 1},
			{name: "cut off, the call's own limit", cfgMax: 4096, req: core.CompletionRequest{MaxTokens: 256, Purpose: "judge"}, replies: []string{answer(cut)},
				wantErr: core.ErrLLMBadResponse, wantIn: []string{"max_tokens 256 set by the judge call", "lower the model's reasoning effort"},
				wantNotIn: "PONDER_LLM_MAX_TOKENS", requests: 1},
			{name: "every sample of n cut off", mode: "yes", req: core.CompletionRequest{N: 2}, replies: []string{answer(cut, cut)},
				wantErr: core.ErrLLMBadResponse, wantIn: []string{"ran out of tokens"}, requests: 1},
			{name: "one sample of n cut off", mode: "yes", cfgMax: 512, req: core.CompletionRequest{N: 2}, replies: []string{answer(cut, msg("42", thinking, "stop"))},
				want: []string{"42"}, wantWarn: "raise PONDER_LLM_MAX_TOKENS", requests: 1},
			// The cut sample is not asked for again.
			{name: "one sequential sample cut off", mode: "no", req: core.CompletionRequest{N: 2},
				replies: []string{answer(cut), answer(msg("42", "", "stop"))}, want: []string{"42"}, wantWarn: "fewer samples than it asked for", requests: 2},
			{name: "ended with reasoning only", req: core.CompletionRequest{}, replies: []string{answer(msg("", "6*7 = 42. The answer is 42.", "stop"))},
				want: []string{"6*7 = 42. The answer is 42."}, requests: 1},
			{name: "answer cut off after reasoning", req: core.CompletionRequest{}, replies: []string{answer(msg("The answer is", thinking, "length"))},
				want: []string{"The answer is"}, requests: 1},
		} {
			t.Run(field+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				f := &fakeLLM{}
				for _, b := range tc.replies {
					f.push(reply{body: b})
				}
				startFake(t, f)
				cfg := testConfig(f.URL())
				cfg.MaxTokens = tc.cfgMax
				if tc.mode != "" {
					cfg.N = tc.mode
				}
				s := &sleeper{}
				var log testutil.LockedBuffer
				c := newClient(t, cfg, &llm.Options{Sleep: s.Sleep, Logger: zerolog.New(&log).Level(zerolog.InfoLevel)})
				req := tc.req
				req.Messages = user("6*7?")
				got, err := c.Complete(context.Background(), req)
				checkErr(t, err, tc.wantErr)
				for _, w := range tc.wantIn {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q: want it to say %q", err, w)
					}
				}
				if tc.wantNotIn != "" && strings.Contains(err.Error(), tc.wantNotIn) {
					t.Errorf("error %q: want it not to say %q", err, tc.wantNotIn)
				}
				// The tokens the model spent on a failed call are charged all
				// the same (core.Env.Complete looks for BilledTokens).
				var billed interface{ BilledTokens() (int64, int64) }
				if err != nil {
					if !errors.As(err, &billed) {
						t.Errorf("error %q does not say what the model spent", err)
					} else if p, c := billed.BilledTokens(); p != 9*int64(tc.requests) || c != 512*int64(tc.requests) {
						t.Errorf("billed %d+%d tokens, want the usage of %d replies", p, c, tc.requests)
					}
				}
				if diff := cmp.Diff(tc.want, texts(got)); diff != "" {
					t.Errorf("choices (-want +got):\n%s", diff)
				}
				// A call that lost samples says so to the search
				// (Result.Warnings), one that lost none says nothing.
				if (got.Note != "") != (tc.wantWarn != "") || (got.Note != "" && !strings.Contains(got.Note, "1 of 2 samples ran out of tokens")) {
					t.Errorf("note %q; want one saying 1 of 2 samples were left out only when a sample was", got.Note)
				}
				if n := len(f.requests()); n != tc.requests || len(s.waits()) != 0 {
					t.Errorf("%d requests, %d waits; want %d, not retried", n, len(s.waits()), tc.requests)
				}
				// Samples left out are said once per model, not per call.
				if tc.wantWarn != "" {
					// A second call with a cut sample, in either mode.
					f.push(reply{body: answer(cut, msg("42", "", "stop"))}, reply{body: answer(msg("42", "", "stop"))})
					if _, err := c.Complete(context.Background(), core.CompletionRequest{Messages: user("6*7?"), N: 2}); err != nil {
						t.Fatal(err)
					}
				}
				warns := strings.Count(log.String(), `"level":"warn"`)
				switch {
				case tc.wantWarn == "" && warns != 0:
					t.Errorf("want no warning, got:\n%s", log.String())
				case tc.wantWarn != "" && (warns != 1 || !strings.Contains(log.String(), tc.wantWarn) || !strings.Contains(log.String(), `"model":"test-model"`)):
					t.Errorf("want one warning naming the model and saying %q, got:\n%s", tc.wantWarn, log.String())
				}
			})
		}
	}
}
