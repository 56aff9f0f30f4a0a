package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/config"
	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/internal/endpoint/endpointtest"
	"github.com/ponder-rlm/ponder/internal/testutil"
	"github.com/ponder-rlm/ponder/llm"
)

// When the LLM endpoint fails, a client of Ponder (OpenAI API, streamed or
// not, and MCP, including the trace it can read back) learns what failed
// and why, but not where the endpoint is: it may be internal
// infrastructure. Failures: nothing listening, a 5xx whose body names the
// endpoint's URL (as proxies' do), and no answer within the timeout.
//
// The operator's advice (start the server, fix PONDER_LLM_BASE_URL) is
// for the operator: clients over HTTP (OpenAI API, MCP) are told to
// contact them, and the server's log has it; a stdio client, which
// started the server with its own environment, is given it.
func TestUpstreamFailuresHideTheEndpoint(t *testing.T) {
	t.Parallel()
	refused, badGateway, hangs := failingEndpoints(t)

	for _, tc := range []struct {
		name, base, says, advice string
	}{
		{"connection refused", refused, "cannot connect to the LLM endpoint (connection refused", "start the server or fix PONDER_LLM_BASE_URL or --llm-url"},
		{"5xx naming the endpoint", badGateway, "the LLM endpoint answered 502", "check the server's logs"},
		{"timeout", hangs, "the LLM endpoint did not answer within 300ms", "raise PONDER_LLM_TIMEOUT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := llm.New(config.LLM{BaseURL: tc.base, Model: "m", Timeout: 300 * time.Millisecond, N: "auto"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var log testutil.LockedBuffer
			e := newEnv(t, envOptions{policy: c, opts: func(o *Options) { o.Logger = zerolog.New(&log) }})
			check := func(where, text string) {
				t.Helper()
				checkSaysNotWhere(t, where, text, tc.base, tc.says)
			}
			toClient := func(where, text string) {
				t.Helper()
				check(where, text)
				if strings.Contains(text, tc.advice) || !strings.Contains(text, "this Ponder server cannot reach its LLM endpoint; contact the server's operator") {
					t.Errorf("%s gives the operator's advice, or does not send the client to the operator: %s", where, text)
				}
			}
			req := `{"model":"cot","messages":[{"role":"user","content":"What is 2+2?"}]}`
			toClient("the chat completion error", postJSON(t, e.ts.URL+"/v1/chat/completions", req, http.StatusBadGateway))
			toClient("the streamed chat completion", postJSON(t, e.ts.URL+"/v1/chat/completions",
				strings.Replace(req, `{"model"`, `{"stream":true,"model"`, 1), http.StatusOK))
			toClient("the chat completion with n=2", postJSON(t, e.ts.URL+"/v1/chat/completions",
				strings.Replace(req, `{"model"`, `{"n":2,"model"`, 1), http.StatusBadGateway))

			rc := e.rpc(t)
			msgs := rc.call("solve", map[string]any{"problem": "What is 2+2?"}, nil)
			r := result(t, msgs)
			if r["isError"] != true {
				t.Fatalf("solve with the endpoint failing: %v", r)
			}
			toClient("the solve tool result over HTTP", mustJSONString(msgs))
			sc, _ := r["structuredContent"].(map[string]any)
			id, _ := sc["trace_id"].(string)
			// The trace is the search's record, for the operator too: its
			// error is whole.
			trace := mustJSONString(result(t, rc.call("get_trace", map[string]any{"trace_id": id, "detail": "full"}, nil)))
			check("the trace", trace)

			logged := log.String()
			if n := strings.Count(logged, tc.advice); n != 5 || !strings.Contains(logged, `"message":"search failed"`) {
				t.Errorf("the server's log has the operator's advice %d times, want one per failed search over HTTP (5: the chat completion, the streamed one, n=2's two, MCP's solve): %s", n, logged)
			}

			stdio := startStdio(t, e)
			stdio.send(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": map[string]any{
				"name": "solve", "arguments": map[string]any{"problem": "What is 2+2?"}}})
			out := stdio.until(1)
			text := mustJSONString(out[len(out)-1])
			check("the solve tool result over stdio", text)
			if !strings.Contains(text, tc.advice) {
				t.Errorf("the solve tool result over stdio lacks the operator's advice %q: %s", tc.advice, text)
			}
		})
	}
}

// checkSaysNotWhere fails the test when text, what a client read (where),
// shows where the upstream at base is, or does not say says.
func checkSaysNotWhere(t *testing.T, where, text, base, says string) {
	t.Helper()
	if !strings.Contains(text, says) {
		t.Errorf("%s does not say %q: %s", where, says, text)
	}
	endpointtest.CheckHidden(t, text, base)
}

// failingEndpoints starts the three ways an upstream fails and returns
// their base URLs (with /v1): nothing listening, a 502 whose body names
// the endpoint's URL (as proxies' do), and one that never answers (until
// its client gives up or the test ends).
func failingEndpoints(t *testing.T) (refused, badGateway, hangs string) {
	t.Helper()
	refused = "http://" + endpointtest.ClosedPort(t) + "/v1"

	var bad *httptest.Server
	bad = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprintf(w, `{"error":{"message":"no healthy upstream behind %s%s"}}`, bad.URL, r.URL.Path)
	}))
	t.Cleanup(bad.Close)

	stop := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server notices a client gone only once the body is read.
		_, _ = r.Body.Read(make([]byte, 1<<16))
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(stop) })
	return refused, bad.URL + "/v1", hang.URL + "/v1"
}

// Every failure the LLM client reports reaches an HTTP client without the
// operator's advice (it names settings only the operator can change) and,
// when the fault is the server's (credentials, an unreadable answer), with
// the operator to contact; a rate limit and a request refused as invalid
// keep their status and detail, which the client can act on.
func TestUpstreamAdviceIsTheOperators(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, reply  string
		status, want int
		says, advice string
	}{
		{"401", `{"error":{"message":"Incorrect API key provided"}}`, 401, 502,
			"this Ponder server's LLM endpoint refused its credentials; contact the server's operator", "check PONDER_LLM_API_KEY"},
		{"429", `{"error":{"message":"slow down"}}`, 429, 429, "the LLM endpoint answered 429 after 1 attempt", "lower PONDER_LLM_CONCURRENCY"},
		{"400", `{"error":{"message":"maximum context length exceeded"}}`, 400, 400, "maximum context length exceeded", "check the model"},
		{"no choices", `{"id":"x","object":"chat.completion","choices":[]}`, 200, 502,
			"this Ponder server's LLM endpoint sent an answer it cannot read; contact the server's operator", "check the server's logs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.reply)
			}))
			t.Cleanup(up.Close)
			c, err := llm.New(config.LLM{BaseURL: up.URL + "/v1", Model: "m", Timeout: 5 * time.Second, N: "auto", MaxRetries: 0}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var log testutil.LockedBuffer
			e := newEnv(t, envOptions{policy: c, opts: func(o *Options) { o.Logger = zerolog.New(&log) }})
			body := postJSON(t, e.ts.URL+"/v1/chat/completions", `{"model":"cot","messages":[{"role":"user","content":"What is 2+2?"}]}`, tc.want)
			if !strings.Contains(body, tc.says) || strings.Contains(body, tc.advice) || strings.Contains(body, "PONDER_") {
				t.Errorf("want %q and not the advice %q: %s", tc.says, tc.advice, body)
			}
			if !strings.Contains(log.String(), tc.advice) {
				t.Errorf("the server's log lacks the advice %q: %s", tc.advice, log.String())
			}
		})
	}
}
