package embedded

import (
	"path/filepath"
	"testing"

	"github.com/ponder-rlm/ponder/retrieval"
	"github.com/ponder-rlm/ponder/retrieval/storetest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) retrieval.Store {
		st, err := Open(filepath.Join(t.TempDir(), "store.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

// The dense index path (HNSW) is used above ExactBelow vectors.
func TestConformanceHNSW(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) retrieval.Store {
		st, err := Open(filepath.Join(t.TempDir(), "store.db"), &Options{ExactBelow: 1})
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}
