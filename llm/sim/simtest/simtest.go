// Package simtest starts the LLM simulator for tests.
//
//	url := simtest.Start(t, sim.Options{Seed: 1})
//	cfg := openai.DefaultConfig("test")
//	cfg.BaseURL = url
//	client := openai.NewClientWithConfig(cfg)
package simtest

import (
	"net/http/httptest"
	"testing"

	"github.com/ponder-rlm/ponder/llm/sim"
)

// Start runs a simulator configured by opts on a local port until the test
// ends and returns its base URL, ending in /v1. Latency and faults are as
// opts say (zero: none).
func Start(t testing.TB, opts sim.Options) string {
	t.Helper()
	_, url := StartServer(t, opts)
	return url
}

// StartServer is Start that also returns the simulator, for its Stats.
func StartServer(t testing.TB, opts sim.Options) (*sim.Server, string) {
	t.Helper()
	srv, err := sim.New(opts)
	if err != nil {
		t.Fatalf("simtest: %v", err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close() // releases requests hanging on an injected timeout
		ts.Close()
	})
	return srv, ts.URL + "/v1"
}
