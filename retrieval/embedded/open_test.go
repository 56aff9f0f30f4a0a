package embedded

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/retrieval"
)

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	t.Run("locked", func(t *testing.T) {
		path := filepath.Join(dir, "locked.db")
		st, err := Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		_, err = Open(path, &Options{LockTimeout: 50e6})
		if !errors.Is(err, retrieval.ErrLocked) || !strings.Contains(err.Error(), path) {
			t.Fatalf("second Open = %v, want ErrLocked naming %s", err, path)
		}
	})
	t.Run("corrupt", func(t *testing.T) {
		path := filepath.Join(dir, "corrupt.db")
		if err := os.WriteFile(path, []byte(strings.Repeat("not a bolt file ", 4096)), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(path, nil)
		if err == nil || !strings.Contains(err.Error(), "damaged") || !strings.Contains(err.Error(), path) {
			t.Fatalf("Open of garbage = %v, want a 'damaged' error naming the file", err)
		}
	})
}

func TestReopenKeepsEverything(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	st, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: "docs", Dim: 2}); err != nil {
		t.Fatal(err)
	}
	d := retrieval.Document{Source: "a.txt", Hash: "h", Chunks: []retrieval.Chunk{{Text: "durable words here", Vector: []float32{1, 0}}}}
	if err := st.Put(ctx, "docs", []retrieval.Document{d}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hits, err := st.Search(ctx, "docs", retrieval.Query{Text: "durable", Vector: []float32{1, 0.1}, K: 1})
	if err != nil || len(hits) != 1 || hits[0].Source != "a.txt" {
		t.Fatalf("after reopen: %+v %v", hits, err)
	}
}
