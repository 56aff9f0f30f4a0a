package qdrant

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/retrieval"
	"github.com/ponder-rlm/ponder/retrieval/storetest"
)

// TestConformance runs the shared Store suite against a real Qdrant when
// PONDER_QDRANT_URL is set (e.g. http://127.0.0.1:6334 for
// `docker run -p 6334:6334 qdrant/qdrant`).
func TestConformance(t *testing.T) {
	u := os.Getenv("PONDER_QDRANT_URL")
	if u == "" {
		t.Skip("PONDER_QDRANT_URL is not set: no Qdrant server to test against (see docs/retrieval.md)")
	}
	storetest.Run(t, func(t *testing.T) retrieval.Store {
		st, err := Open(t.Context(), Options{URL: u, APIKey: os.Getenv("PONDER_QDRANT_API_KEY")})
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct{ url, want string }{
		{"localhost:6334", "want http://host:6334"},
		{"http://127.0.0.1:6333", "REST port 6333"},
	} {
		if _, err := Open(ctx, Options{URL: tc.url}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) = %v, want %q", tc.url, err, tc.want)
		}
	}
	// Nothing listens on port 1: a clear "unreachable", not a hang.
	_, err := Open(ctx, Options{URL: "http://127.0.0.1:1", Timeout: 2 * time.Second})
	if !errors.Is(err, retrieval.ErrUnavailable) || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("Open of a closed port = %v, want ErrUnavailable saying unreachable", err)
	}
}
