package llm_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/endpoint/endpointtest"
	"github.com/ponder-rlm/ponder/llm"
)

// A failed request's error says the status the endpoint answered (0 when
// none came), through a method, so that a server can tell a model the
// endpoint does not serve (404) without go-openai's error types.
func TestErrorSaysTheEndpointsStatus(t *testing.T) {
	t.Parallel()
	refused := "http://" + endpointtest.ClosedPort(t) + "/v1"
	for _, tc := range []struct {
		name string
		url  func(t *testing.T) string
		want int
	}{
		{"404", func(t *testing.T) string {
			return startFake(t, (&fakeLLM{}).push(reply{status: 404, body: `{"detail":"The model x does not exist."}`})).URL()
		}, 404},
		{"400", func(t *testing.T) string {
			return startFake(t, (&fakeLLM{}).push(reply{status: 400, body: `{"error":{"message":"too long"}}`})).URL()
		}, 400},
		{"503", func(t *testing.T) string {
			return startFake(t, (&fakeLLM{}).push(reply{status: 503, body: `{"error":{"message":"down"}}`})).URL()
		}, 503},
		{"connection refused", func(*testing.T) string { return refused }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(tc.url(t))
			cfg.MaxRetries = 0
			_, err := newClient(t, cfg, &llm.Options{Sleep: (&sleeper{}).Sleep}).Complete(context.Background(),
				core.CompletionRequest{Messages: user("hi")})
			// As a server finds it: wrapped by whoever called the client.
			err = errors.Join(errors.New("expand node 3"), err)
			var st interface{ HTTPStatus() int }
			if !errors.As(err, &st) || st.HTTPStatus() != tc.want {
				t.Fatalf("%v: status %v, want %d", err, st, tc.want)
			}
		})
	}
}
