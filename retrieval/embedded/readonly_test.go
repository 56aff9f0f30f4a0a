package embedded

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/retrieval"
)

// fill makes a store at path holding one document, and closes it.
func fill(t *testing.T, path string) {
	t.Helper()
	st, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	if _, err := st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: "docs"}); err != nil {
		t.Fatal(err)
	}
	d := retrieval.Document{Source: "/d/ports.md", Hash: "h1", Chunks: []retrieval.Chunk{{Text: "The admin console listens on port 7443."}}}
	if err := st.Put(ctx, "docs", []retrieval.Document{d}); err != nil {
		t.Fatal(err)
	}
}

// checkReadOnly: st searches and lists, and refuses every write with
// ErrReadOnly saying why.
func checkReadOnly(t *testing.T, st *Store, why string) {
	t.Helper()
	ctx := t.Context()
	hits, err := st.Search(ctx, "docs", retrieval.Query{Text: "admin console port", K: 3})
	if err != nil || len(hits) != 1 || hits[0].Source != "/d/ports.md" {
		t.Fatalf("search of a read-only store: %v, %v", hits, err)
	}
	if cs, err := st.Collections(ctx); err != nil || len(cs) != 1 || cs[0].Documents != 1 {
		t.Fatalf("Collections: %+v, %v", cs, err)
	}
	if !strings.Contains(st.ReadOnly(), why) {
		t.Fatalf("ReadOnly() = %q, want %q", st.ReadOnly(), why)
	}
	d := retrieval.Document{Source: "/d/new.md", Hash: "h2", Chunks: []retrieval.Chunk{{Text: "new"}}}
	writes := map[string]error{
		"Put":              st.Put(ctx, "docs", []retrieval.Document{d}),
		"DeleteCollection": st.DeleteCollection(ctx, "docs"),
	}
	_, writes["EnsureCollection"] = st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: "other"})
	_, writes["DeleteDocument"] = st.DeleteDocument(ctx, "docs", "/d/ports.md")
	for op, err := range writes {
		if !errors.Is(err, retrieval.ErrReadOnly) || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), st.Path()) {
			t.Errorf("%s on a read-only store: %v, want ErrReadOnly saying %q and naming the file", op, err, why)
		}
	}
	if hits, _ := st.Search(ctx, "docs", retrieval.Query{Text: "admin", K: 3}); len(hits) != 1 {
		t.Fatalf("the refused writes changed the store: %v", hits)
	}
}

// A store this user may not write is opened read-only: searching works,
// writes say why they cannot. (The refusal is simulated at open(2), since
// tests may run as root, who may write any file; the CLI test runs the
// real case as another user.)
func TestOpenFallsBackToReadOnly(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "store.db")
	fill(t, path)
	for _, tc := range []struct {
		name string
		err  error
		why  string
	}{
		{"permission denied", syscall.EACCES, "this user cannot write it: permission denied"},
		{"read-only file system", syscall.EROFS, "this user cannot write it: read-only file system"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noWrite := func(name string, flag int, perm os.FileMode) (*os.File, error) {
				if flag&(os.O_WRONLY|os.O_RDWR) != 0 {
					return nil, &fs.PathError{Op: "open", Path: name, Err: tc.err}
				}
				return os.OpenFile(name, flag, perm)
			}
			st, err := Open(path, &Options{openFile: noWrite})
			if err != nil {
				t.Fatalf("Open of a store this user cannot write: %v", err)
			}
			defer st.Close()
			checkReadOnly(t, st, tc.why)
		})
	}
	// A store that does not exist yet and cannot be made is an error,
	// not an empty read-only store.
	denied := func(name string, flag int, perm os.FileMode) (*os.File, error) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EACCES}
	}
	if _, err := Open(filepath.Join(t.TempDir(), "new.db"), &Options{openFile: denied}); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("Open of a store that cannot be made: %v", err)
	}
}

// ReadOnly opens take a shared lock: two at once both search, and a
// writer waits for them (and they for a writer), since reading while
// another process writes is not safe.
func TestReadOnlySharesTheLock(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "store.db")
	fill(t, path)
	a, err := Open(path, &Options{ReadOnly: true, LockTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(path, &Options{ReadOnly: true, LockTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("a second read-only open beside the first: %v", err)
	}
	checkReadOnly(t, a, "opened for reading only")
	checkReadOnly(t, b, "opened for reading only")
	if _, err := Open(path, &Options{LockTimeout: 200 * time.Millisecond}); !errors.Is(err, retrieval.ErrLocked) {
		t.Fatalf("a writer while readers hold the store: %v, want ErrLocked", err)
	}
	a.Close()
	b.Close()
	w, err := Open(path, &Options{LockTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := Open(path, &Options{ReadOnly: true, LockTimeout: 200 * time.Millisecond}); !errors.Is(err, retrieval.ErrLocked) {
		t.Fatalf("a reader while a writer holds the store: %v, want ErrLocked", err)
	}
}
