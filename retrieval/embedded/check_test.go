package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/ponder-rlm/ponder/retrieval"
)

// damageStore makes a real store of a few hundred pages and returns its
// file's bytes and the size bbolt says its data takes (pgid × page size)
// and its page size.
func damageStore(t *testing.T) (data []byte, used, pageSize int64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "store.db")
	st, err := Open(path, &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: "docs"}); err != nil {
		t.Fatal(err)
	}
	var docs []retrieval.Document
	for i := range 300 {
		text := fmt.Sprintf("document %d about the admin port %s", i, strings.Repeat(fmt.Sprintf("word%d ", i), 200))
		docs = append(docs, retrieval.Document{Source: fmt.Sprintf("d%03d.txt", i), Hash: "h", Chunks: []retrieval.Chunk{{Text: text}}})
	}
	if err := st.Put(ctx, "docs", docs); err != nil {
		t.Fatal(err)
	}
	if err := st.db.View(func(tx *bolt.Tx) error {
		used = tx.Size() // bbolt's own pgid × page size
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	pageSize = int64(st.db.Info().PageSize)
	st.Close()
	if data, err = os.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	return data, used, pageSize
}

// A store file cut short (a backup that stopped on a full disk) made bbolt
// read past the end of its mapping: SIGSEGV or SIGBUS, which no recover
// catches, killing `ponder search` and a server's search_documents. It,
// and a file whose header is garbage, is refused with an error that says
// what is wrong and what to do, whether opened to write, to read, or
// shared, and the file is left as it was.
func TestDamagedFileIsRefused(t *testing.T) {
	t.Parallel()
	data, used, pageSize := damageStore(t)
	if half := int64(len(data)) / 2; used <= half {
		t.Fatalf("the store's data (%d bytes of %d) fits in half the file: cutting it in half cuts nothing", used, len(data))
	}
	garbage := bytes.Clone(data)
	for i := range 2 * pageSize {
		garbage[i] = byte(i*7 + 3)
	}
	for _, tc := range []struct {
		name string
		file []byte
		says string
	}{
		{"cut in half", data[:len(data)/2], fmt.Sprintf("is cut short: it is %d bytes, but the data it holds runs to byte %d", len(data)/2, used)},
		{"cut one page short", data[:used-pageSize], "is cut short"},
		{"cut within the first page", data[:3000], "is cut short: it is 3000 bytes"},
		{"cut within the header", data[:40], "does not begin with a document store's header"},
		{"header is garbage", garbage, "does not begin with a document store's header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "store.db")
			if err := os.WriteFile(path, tc.file, 0o600); err != nil {
				t.Fatal(err)
			}
			for _, open := range []struct {
				how string
				fn  func() error
			}{
				{"Open", func() error { st, err := Open(path, nil); closeIf(st, err); return err }},
				{"Open read-only", func() error { st, err := Open(path, &Options{ReadOnly: true}); closeIf(st, err); return err }},
				{"OpenShared", func() error {
					st, err := OpenShared(path, nil)
					if err == nil {
						defer st.Close()
						_, err = st.Search(context.Background(), "docs", retrieval.Query{Text: "admin port", K: 3})
					}
					return err
				}},
			} {
				err := open.fn()
				if !errors.Is(err, retrieval.ErrDamaged) {
					t.Fatalf("%s = %v, want ErrDamaged", open.how, err)
				}
				for _, want := range []string{path, tc.says, "restore it from a backup", "ingest the documents again"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("%s: %q does not say %q", open.how, err, want)
					}
				}
			}
			if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, tc.file) {
				t.Errorf("the damaged file was changed (%d bytes, was %d; %v)", len(got), len(tc.file), err)
			}
		})
	}
}

func closeIf(st *Store, err error) {
	if err == nil {
		st.Close()
	}
}

// A file cut after its last page in use lost nothing (bbolt grows files
// ahead of their data): it opens, and every document is found.
func TestFileCutAfterItsDataOpens(t *testing.T) {
	t.Parallel()
	data, used, _ := damageStore(t)
	if used >= int64(len(data)) {
		t.Fatalf("the store's data fills its file (%d bytes): nothing to cut", used)
	}
	path := filepath.Join(t.TempDir(), "store.db")
	if err := os.WriteFile(path, data[:used], 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := Open(path, &Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("Open of a file cut after its data: %v", err)
	}
	defer st.Close()
	docs, err := st.ListDocuments(context.Background(), "docs")
	if err != nil || len(docs) != 300 {
		t.Fatalf("ListDocuments = %d documents, %v; want 300", len(docs), err)
	}
}

// Pages within the file that are damaged (here zeroed, as a copy that
// wrote holes might leave them) make bbolt panic when a transaction reads
// them: a search says the store is damaged rather than ending the process,
// and a writer refuses the file without writing to it.
func TestDamagedPagesAreAnError(t *testing.T) {
	t.Parallel()
	data, used, pageSize := damageStore(t)
	zeroed := bytes.Clone(data)
	clear(zeroed[2*pageSize : used])
	path := filepath.Join(t.TempDir(), "store.db")
	if err := os.WriteFile(path, zeroed, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := Open(path, &Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only Open reads only the header, which is whole: %v", err)
	}
	_, err = st.Search(context.Background(), "docs", retrieval.Query{Text: "admin port", K: 3})
	if !errors.Is(err, retrieval.ErrDamaged) || !strings.Contains(err.Error(), "cannot be read") {
		t.Errorf("Search of zeroed pages = %v, want ErrDamaged saying the file cannot be read", err)
	}
	// The handle survives the panic: the next transaction runs too.
	if _, err := st.Collections(context.Background()); !errors.Is(err, retrieval.ErrDamaged) {
		t.Errorf("Collections after = %v, want ErrDamaged", err)
	}
	st.Close()
	if _, err := Open(path, nil); !errors.Is(err, retrieval.ErrDamaged) {
		t.Errorf("Open for writing = %v, want ErrDamaged", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, zeroed) {
		t.Errorf("the damaged file was written to")
	}
}

// An empty file (a copy that stopped before it began) cannot be made a
// store when opened read-only: it says so, not "bad file descriptor".
// Opened to write, a new store is made in it, as before.
func TestEmptyFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "store.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, &Options{ReadOnly: true})
	if !errors.Is(err, retrieval.ErrDamaged) || !strings.Contains(err.Error(), "is empty") {
		t.Fatalf("read-only Open of an empty file = %v, want ErrDamaged saying it is empty", err)
	}
	st, err := Open(path, nil)
	if err != nil {
		t.Fatalf("Open of an empty file to write: %v", err)
	}
	st.Close()
}
