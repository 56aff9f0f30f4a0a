package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/internal/endpoint/endpointtest"
	"github.com/ponder-rlm/ponder/llm"
)

// When the LLM endpoint fails, a client of Ponder (OpenAI API, streamed or
// not, and MCP, including the trace it can read back) learns what failed
// and why, but not where the endpoint is: it may be internal
// infrastructure. Failures: nothing listening, a 5xx whose body names the
// endpoint's URL (as proxies' do), and no answer within the timeout.
func TestUpstreamFailuresHideTheEndpoint(t *testing.T) {
	t.Parallel()
	refused, badGateway, hangs := failingEndpoints(t)

	for _, tc := range []struct {
		name, base, says string
	}{
		{"connection refused", refused, "cannot connect to the LLM endpoint (connection refused"},
		{"5xx naming the endpoint", badGateway, "the LLM endpoint answered 502"},
		{"timeout", hangs, "the LLM endpoint did not answer within 300ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := llm.New(config.LLM{BaseURL: tc.base, Model: "m", Timeout: 300 * time.Millisecond, N: "auto"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, envOptions{policy: c})
			u, _ := url.Parse(tc.base)
			check := func(where, text string) {
				t.Helper()
				for _, addr := range []string{u.Host, ":" + u.Port()} {
					if strings.Contains(text, addr) {
						t.Errorf("%s shows the endpoint's address %s: %s", where, addr, text)
					}
				}
				if !strings.Contains(text, tc.says) {
					t.Errorf("%s does not say %q: %s", where, tc.says, text)
				}
			}
			req := `{"model":"cot","messages":[{"role":"user","content":"What is 2+2?"}]}`
			check("the chat completion error", postJSON(t, e.ts.URL+"/v1/chat/completions", req, http.StatusBadGateway))
			check("the streamed chat completion", postJSON(t, e.ts.URL+"/v1/chat/completions",
				strings.Replace(req, `{"model"`, `{"stream":true,"model"`, 1), http.StatusOK))

			rc := e.rpc(t)
			msgs := rc.call("solve", map[string]any{"problem": "What is 2+2?"}, nil)
			r := result(t, msgs)
			if r["isError"] != true {
				t.Fatalf("solve with the endpoint failing: %v", r)
			}
			check("the solve tool result", mustJSONString(msgs))
			sc, _ := r["structuredContent"].(map[string]any)
			id, _ := sc["trace_id"].(string)
			trace := mustJSONString(result(t, rc.call("get_trace", map[string]any{"trace_id": id, "detail": "full"}, nil)))
			check("the trace", trace)
		})
	}
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
