package llm_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ponder-rlm/ponder/core"
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
