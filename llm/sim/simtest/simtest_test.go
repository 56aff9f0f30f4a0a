package simtest_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/llm/sim/simtest"
)

func TestStart(t *testing.T) {
	done := make(chan struct{})
	t.Run("server", func(t *testing.T) {
		srv, url := simtest.StartServer(t, sim.Options{Seed: 1, RateTimeout: 1})
		if !strings.HasSuffix(url, "/v1") {
			t.Fatalf("url %q does not end in /v1", url)
		}
		resp, err := http.Get(url + "/models")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("models: %d", resp.StatusCode)
		}
		// A request hanging on an injected timeout must not keep the
		// cleanup waiting: it closes the simulator first.
		go func() {
			defer close(done)
			resp, err := http.Post(url+"/chat/completions", "application/json", strings.NewReader(`{"messages":[{"role":"user","content":"hi"}]}`))
			if err == nil {
				resp.Body.Close()
			}
		}()
		for srv.Stats().Faults["timeout"] == 0 {
			time.Sleep(time.Millisecond)
		}
	})
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the hanging request was not released by the cleanup")
	}
}
