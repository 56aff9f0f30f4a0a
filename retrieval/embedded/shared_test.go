package embedded

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/internal/testutil"
	"github.com/ponder-rlm/ponder/retrieval"
	"github.com/ponder-rlm/ponder/retrieval/hnsw"
	"github.com/ponder-rlm/ponder/retrieval/storetest"
)

// TestMain lets the test binary act as a writing child process for the
// two-process tests.
func TestMain(m *testing.M) {
	if store := os.Getenv("PONDER_TEST_SHARED_STORE"); store != "" {
		n, _ := strconv.Atoi(os.Getenv("PONDER_TEST_SHARED_DOCS"))
		lockTimeout, _ := time.ParseDuration(os.Getenv("PONDER_TEST_SHARED_LOCK_TIMEOUT"))
		if err := sharedChild(store, os.Getenv("PONDER_TEST_SHARED_OP"), os.Getenv("PONDER_TEST_SHARED_PREFIX"), n, lockTimeout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const sharedDim = 4

// sharedDoc is document i written by the process named prefix: three
// chunks carrying its marker, with vectors in the first three dimensions.
func sharedDoc(prefix string, i int) retrieval.Document {
	d := retrieval.Document{Source: fmt.Sprintf("/p/%s/%03d.md", prefix, i), Hash: "h"}
	for j := range 3 {
		vec := []float32{1, float32(i%7) / 7, float32(j) / 3, 0}
		if prefix == "z" {
			vec = []float32{0, 0, 0, 1} // a direction no other document has
		}
		d.Chunks = append(d.Chunks, retrieval.Chunk{Text: fmt.Sprintf("Station log %s part %d mentions %sm%03d.", prefix, j, prefix, i), Vector: vec})
	}
	return d
}

// openSharedDocs opens a Shared store over path with o, closed when the
// test ends, and makes the collection "docs" with n documents
// sharedDoc("parent", i) in it, one Put each.
func openSharedDocs(t *testing.T, path string, o *Options, n int) *Shared {
	t.Helper()
	st, err := OpenShared(path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := t.Context()
	if _, err := st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: "docs", Dim: sharedDim}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := st.Put(ctx, "docs", []retrieval.Document{sharedDoc("parent", i)}); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// sharedChild is a process beside the test's. By op:
//   - "" writes n documents of its own, one Put each, and rewrites ten
//     sources that every child writes, through a Shared store (as `ponder
//     ingest` does);
//   - "search" opens the store read-only for its life and searches once
//     (as `ponder search` does).
//
// Each waits up to lockTimeout (default 20s) for the file's lock.
func sharedChild(store, op, prefix string, n int, lockTimeout time.Duration) error {
	if lockTimeout <= 0 {
		lockTimeout = 20 * time.Second
	}
	ctx := context.Background()
	if op == "search" {
		st, err := Open(store, &Options{LockTimeout: lockTimeout, ReadOnly: true})
		if err != nil {
			return fmt.Errorf("child search: %w", err)
		}
		defer st.Close()
		if _, err := st.Search(ctx, "docs", retrieval.Query{Text: "station log", K: 3}); err != nil {
			return fmt.Errorf("child search: %w", err)
		}
		return nil
	}
	st, err := OpenShared(store, &Options{LockTimeout: lockTimeout})
	if err != nil {
		return err
	}
	defer st.Close()
	for i := range n {
		docs := []retrieval.Document{sharedDoc(prefix, i)}
		if i%3 == 0 {
			docs = append(docs, retrieval.Document{Source: fmt.Sprintf("/p/common/%d.md", i%10), Hash: prefix,
				Chunks: []retrieval.Chunk{{Text: "common written by " + prefix, Vector: []float32{1, 1, 0, 0}}}})
		}
		if err := st.Put(ctx, "docs", docs); err != nil {
			return fmt.Errorf("child %s, document %d: %w", prefix, i, err)
		}
	}
	return nil
}

// startChild starts a child writing n documents as prefix into store.
func startChild(t *testing.T, store, prefix string, n int) func() error {
	t.Helper()
	return startChildOp(t, store, "", prefix, n, 0)
}

// startChildOp starts a child doing op (see sharedChild), waiting up to
// lockTimeout for the lock; the returned func waits for it to end.
func startChildOp(t *testing.T, store, op, prefix string, n int, lockTimeout time.Duration) func() error {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PONDER_TEST_SHARED_STORE="+store, "PONDER_TEST_SHARED_PREFIX="+prefix,
		"PONDER_TEST_SHARED_DOCS="+strconv.Itoa(n), "PONDER_TEST_SHARED_OP="+op,
		"PONDER_TEST_SHARED_LOCK_TIMEOUT="+lockTimeout.String())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return func() error {
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("child %s: %v: %s", prefix, err, stderr.String())
		}
		return nil
	}
}

// Two processes write one store through Shared while a third (this test)
// keeps it open, searching: nobody is kept out, every document is whole,
// the counts agree, and this process sees what the others wrote, in its
// dense index too. With Open (the lock held for the store's life) the
// second writer fails with ErrLocked.
func TestSharedTwoProcessesWriteWhileOneReads(t *testing.T) {
	t.Parallel()
	store := filepath.Join(t.TempDir(), "store.db")
	// ExactBelow 2: dense search uses the HNSW index, so a stale index
	// would miss the other processes' documents.
	st := openSharedDocs(t, store, &Options{LockTimeout: 20 * time.Second, ExactBelow: 2}, 1)
	ctx := t.Context()
	// Build the dense index before the others write.
	if hits, err := st.Search(ctx, "docs", retrieval.Query{Vector: []float32{1, 0, 0, 0}, K: 1, Mode: retrieval.ModeDense}); err != nil || len(hits) != 1 {
		t.Fatalf("dense search: %v, %v", hits, err)
	}
	built := denseBuilt(t, st, "docs")

	// This process's own writes keep the index (no rebuild per search).
	if err := st.Put(ctx, "docs", []retrieval.Document{sharedDoc("parent", 1)}); err != nil {
		t.Fatal(err)
	}
	if hits, err := st.Search(ctx, "docs", retrieval.Query{Vector: []float32{1, 1.0 / 7, 0, 0}, K: 1, Mode: retrieval.ModeDense}); err != nil || len(hits) != 1 || hits[0].Source != "/p/parent/001.md" {
		t.Fatalf("dense search after this process's Put: %v, %v", hits, err)
	}
	if denseBuilt(t, st, "docs") != built {
		t.Fatal("the dense index was rebuilt after this process's own write")
	}

	const n = 40
	waits := []func() error{startChild(t, store, "a", n), startChild(t, store, "b", n)}
	// Search all the while: each search takes the shared lock for itself
	// only, between the children's transactions.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var searchErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := st.Search(ctx, "docs", retrieval.Query{Text: "station log", K: 3}); err != nil {
				searchErr = err
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	for _, w := range waits {
		if err := w(); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	if searchErr != nil {
		t.Errorf("search beside two writing processes: %v", searchErr)
	}

	info, err := st.Collection(ctx, "docs")
	if err != nil {
		t.Fatal(err)
	}
	if wantDocs, wantChunks := 2+2*n+10, 3*(2+2*n)+10; info.Documents != wantDocs || info.Chunks != wantChunks {
		t.Errorf("collection holds %d documents and %d chunks, want %d and %d", info.Documents, info.Chunks, wantDocs, wantChunks)
	}
	for _, p := range []string{"a", "b"} {
		for i := range n {
			marker := fmt.Sprintf("%sm%03d", p, i)
			hits, err := st.Search(ctx, "docs", retrieval.Query{Text: marker, K: 5})
			if err != nil || len(hits) != 3 {
				t.Fatalf("search %s: %d hits (%v), want the document's 3 chunks", marker, len(hits), err)
			}
		}
	}
	for i := range 10 {
		// Written by whichever child came last: one version, whole.
		src := fmt.Sprintf("/p/common/%d.md", i)
		hits, err := st.Search(ctx, "docs", retrieval.Query{Text: "common written", K: 20, Filter: map[string]string{"source": src}})
		if err != nil || len(hits) != 1 {
			t.Errorf("%s: %d chunks (%v), want 1", src, len(hits), err)
		}
	}

	// A document only another process wrote, in a direction no other
	// vector has: this process's dense index must have been rebuilt.
	if err := startChild(t, store, "z", 1)(); err != nil {
		t.Fatal(err)
	}
	hits, err := st.Search(ctx, "docs", retrieval.Query{Vector: []float32{0, 0, 0, 1}, K: 1, Mode: retrieval.ModeDense})
	if err != nil || len(hits) != 1 || hits[0].Source != "/p/z/000.md" {
		t.Fatalf("dense search after another writer: %v, %v; want /p/z/000.md (a stale dense index?)", hits, err)
	}

	// What Shared replaces: a store held open for its life keeps the other
	// process out.
	held, err := Open(store, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, err := OpenShared(store, &Options{LockTimeout: 100 * time.Millisecond}); !errors.Is(err, retrieval.ErrLocked) {
		t.Fatalf("OpenShared beside a held store: %v, want ErrLocked", err)
	}
}

// A read-only Shared store never writes, and a Shared store whose file is
// not there yet reports a missing collection as Open does.
func TestSharedReadOnlyAndMissing(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "store.db")
	fill(t, path)
	ro, err := OpenShared(path, &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	ctx := t.Context()
	if hits, err := ro.Search(ctx, "docs", retrieval.Query{Text: "admin console port", K: 3}); err != nil || len(hits) != 1 {
		t.Fatalf("read-only search: %v, %v", hits, err)
	}
	d := retrieval.Document{Source: "/d/new.md", Hash: "h2", Chunks: []retrieval.Chunk{{Text: "new"}}}
	if err := ro.Put(ctx, "docs", []retrieval.Document{d}); !errors.Is(err, retrieval.ErrReadOnly) {
		t.Fatalf("Put on a read-only Shared store: %v, want ErrReadOnly", err)
	}

	fresh, err := OpenShared(filepath.Join(t.TempDir(), "sub", "store.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if _, err := fresh.Search(ctx, "docs", retrieval.Query{Text: "x"}); !errors.Is(err, retrieval.ErrNoCollection) {
		t.Fatalf("search of a new store: %v, want ErrNoCollection", err)
	}
	fresh.Close()
	if _, err := fresh.Collections(ctx); err == nil {
		t.Fatal("a closed Shared store still answers")
	}
}

// Shared keeps every promise of a Store, with the HNSW path too.
func TestConformanceShared(t *testing.T) {
	t.Parallel()
	for _, exactBelow := range []int{0, 1} {
		t.Run(fmt.Sprintf("ExactBelow=%d", exactBelow), func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t *testing.T) retrieval.Store {
				st, err := OpenShared(filepath.Join(t.TempDir(), "store.db"), &Options{ExactBelow: exactBelow})
				if err != nil {
					t.Fatal(err)
				}
				return st
			})
		})
	}
}

// After another writer's transaction, the next dense search adds and
// removes what changed in this process's HNSW graph instead of building
// it again (which holds the shared lock for as long as the build takes:
// tens of seconds at 20,000 chunks of 384 dimensions, so a `ponder ingest`
// beside `ponder serve` failed with ErrLocked). A collection deleted and
// made again, whose sequence numbers start over, is built again.
func TestSharedDenseIndexCatchesUp(t *testing.T) {
	t.Parallel()
	store := filepath.Join(t.TempDir(), "store.db")
	ctx := t.Context()
	a := openSharedDocs(t, store, &Options{ExactBelow: 2}, 5)
	// b stands for another process: it opens the file on its own, under
	// the same locks (flock locks are per open file).
	b, err := OpenShared(store, &Options{ExactBelow: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dense := func(vec []float32, k int) []retrieval.Hit {
		t.Helper()
		hits, err := a.Search(ctx, "docs", retrieval.Query{Vector: vec, K: k, Mode: retrieval.ModeDense})
		if err != nil {
			t.Fatal(err)
		}
		return hits
	}
	dense([]float32{1, 0, 0, 0}, 1)
	built := denseBuilt(t, a, "docs")

	if err := b.Put(ctx, "docs", []retrieval.Document{sharedDoc("z", 0)}); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.DeleteDocument(ctx, "docs", "/p/parent/001.md"); !ok || err != nil {
		t.Fatalf("delete: %v, %v", ok, err)
	}
	if hits := dense([]float32{0, 0, 0, 1}, 1); len(hits) != 1 || hits[0].Source != "/p/z/000.md" {
		t.Fatalf("dense search after another writer: %v; want /p/z/000.md", hits)
	}
	for _, h := range dense([]float32{1, 1.0 / 7, 0, 0}, 20) {
		if h.Source == "/p/parent/001.md" {
			t.Fatalf("a document another writer deleted is still found: %v", h)
		}
	}
	if got := denseBuilt(t, a, "docs"); got != built {
		t.Fatal("the dense index was built again after another writer's transaction; want it brought up to date")
	}
	if n := built.Len(); n != 3*5 {
		t.Fatalf("dense index holds %d vectors, want 15", n)
	}

	// Deleted and made again: sequence numbers start over, so the old
	// graph's keys would name the new chunks with the old vectors.
	if err := b.DeleteCollection(ctx, "docs"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.EnsureCollection(ctx, retrieval.CollectionSpec{Name: "docs", Dim: sharedDim}); err != nil {
		t.Fatal(err)
	}
	y := retrieval.Document{Source: "/p/y.md", Hash: "h"}
	for range 3 {
		y.Chunks = append(y.Chunks, retrieval.Chunk{Text: "y", Vector: []float32{0, 1, 0, 0}})
	}
	if err := b.Put(ctx, "docs", []retrieval.Document{y}); err != nil {
		t.Fatal(err)
	}
	hits := dense([]float32{0, 1, 0, 0}, 5)
	if len(hits) != 3 || hits[0].Source != "/p/y.md" || hits[0].Score < 0.99 {
		t.Fatalf("dense search of a collection made again: %v; want /p/y.md's 3 chunks, scored 1", hits)
	}
	if denseBuilt(t, a, "docs") == built {
		t.Fatal("the dense index of a collection made again was kept")
	}
	if hits := dense([]float32{0, 1, 0, 0}, 5); len(hits) != 3 || hits[0].Source != "/p/y.md" {
		t.Fatalf("dense search of a collection made again, through its new graph: %v", hits)
	}
}

// A call waiting for the store gives up when its context ends: a write
// waiting behind this process's reads (a dense index being built can take
// a minute), and a wait for another process's lock, which ends at the
// context's deadline when that comes before LockTimeout. Reads that
// waited behind a write that gave up go on at once.
func TestSharedWaitHonoursContext(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "store.db")
	fill(t, path)
	st, err := OpenShared(path, &Options{LockTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.acquire(t.Context(), false); err != nil { // a read in flight
		t.Fatal(err)
	}
	held := true
	defer func() {
		if held {
			st.release(false)
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	d := retrieval.Document{Source: "/d/new.md", Hash: "h2", Chunks: []retrieval.Chunk{{Text: "new"}}}
	readDone := make(chan error, 1)
	go func() {
		time.Sleep(100 * time.Millisecond) // behind the waiting write
		_, err := st.Search(t.Context(), "docs", retrieval.Query{Text: "admin console port", K: 3})
		readDone <- err
	}()
	start := time.Now()
	if err := st.Put(ctx, "docs", []retrieval.Document{d}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Put behind a read, its context ended: %v, want DeadlineExceeded", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("Put gave up after %s, want about 300ms", el)
	}
	select {
	case err := <-readDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a read that waited behind a write that gave up is still waiting")
	}
	st.release(false)
	held = false

	// Another process holds the file.
	other, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx2, cancel2 := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel2()
	start = time.Now()
	if _, err := st.Search(ctx2, "docs", retrieval.Query{Text: "admin", K: 3}); err == nil {
		t.Fatal("search of a store another process holds succeeded")
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("search gave up after %s, want about 300ms (its deadline), not LockTimeout", el)
	}
	// A context cancelled, with no deadline: bbolt's wait for the lock
	// cannot be cancelled, and went on for LockTimeout.
	ctx3, cancel3 := context.WithCancel(t.Context())
	defer cancel3()
	time.AfterFunc(300*time.Millisecond, cancel3)
	start = time.Now()
	if _, err := st.Search(ctx3, "docs", retrieval.Query{Text: "admin", K: 3}); !errors.Is(err, context.Canceled) {
		t.Fatalf("search of a store another process holds, its context cancelled: %v, want context.Canceled", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("search gave up after %s, want about 300ms (when its context was cancelled), not LockTimeout", el)
	}
}

// A process whose searches overlap without pause still lets another
// process in within its lock timeout: a `ponder ingest` (the exclusive
// lock), and a `ponder search` (the shared lock) after this process
// wrote. The handle was kept open while any call was in flight, so
// overlapping searches held the shared lock for good, and after one write
// held the exclusive one, keeping out even readers.
func TestSharedYieldsToOtherProcesses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		op    string // the child's (see sharedChild)
		write bool   // this process writes once its searches run
	}{
		{"ingest beside searches", "", false},
		{"ingest beside searches after a write", "", true},
		{"search beside searches after a write", "search", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := filepath.Join(t.TempDir(), "store.db")
			st := openSharedDocs(t, store, &Options{LockTimeout: 20 * time.Second}, 20)
			ctx := t.Context()
			// Three searchers, each search held 10ms and started 3ms
			// apart, so one is always in flight (a busy server; searches
			// that happen to end together would let the lock go by
			// chance).
			stop := make(chan struct{})
			var wg sync.WaitGroup
			errs := make(chan error, 3)
			for g := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					time.Sleep(time.Duration(g) * 3 * time.Millisecond)
					for {
						select {
						case <-stop:
							return
						default:
						}
						h, err := st.acquire(ctx, false)
						if err == nil {
							_, err = h.Search(ctx, "docs", retrieval.Query{Text: "station log", K: 3})
							time.Sleep(10 * time.Millisecond)
							st.release(false)
						}
						if err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			defer func() {
				close(stop)
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Errorf("search: %v", err)
				}
			}()
			if tc.write {
				time.Sleep(20 * time.Millisecond) // the searches run
				if err := st.Put(ctx, "docs", []retrieval.Document{sharedDoc("parent", 20)}); err != nil {
					t.Fatal(err)
				}
			}
			// The child waits up to the default retrieval.lock_timeout
			// and a second more (a loaded machine).
			if err := startChildOp(t, store, tc.op, "c", 1, 3*time.Second)(); err != nil {
				t.Fatalf("another process beside this one's searches: %v", err)
			}
			if tc.op == "" {
				hits, err := st.Search(ctx, "docs", retrieval.Query{Text: "cm000", K: 5})
				if err != nil || len(hits) != 3 {
					t.Fatalf("the other process's document: %d hits (%v), want 3", len(hits), err)
				}
			}
		})
	}
}

// denseBuilt waits for the dense index of collection, which st builds in
// the background, to be ready, and returns its graph.
func denseBuilt(t *testing.T, st *Shared, collection string) *hnsw.Index {
	t.Helper()
	ix, _, _ := denseWhen(t, st, collection, "built", func(d *denseIndex) bool { return d.ready && !d.building })
	return ix
}

// checkGraph waits for the dense index of "docs" to be ready, and checks
// that it is built, the graph brought up to date rather than one built
// again, and that it holds every chunk of the collection.
func checkGraph(t *testing.T, st *Shared, built *hnsw.Index) {
	t.Helper()
	info, err := st.Collection(t.Context(), "docs")
	if err != nil {
		t.Fatal(err)
	}
	if got := denseBuilt(t, st, "docs"); got != built || got.Len() != info.Chunks {
		t.Fatalf("graph holds %d vectors (built again: %v), want the collection's %d in the graph built before", got.Len(), got != built, info.Chunks)
	}
}

// denseWhen waits until ok (called with d.mu held) holds for the dense
// index of collection, and returns its graph and whether it is ready and
// stale; what says what is waited for.
func denseWhen(t *testing.T, st *Shared, collection, what string, ok func(d *denseIndex) bool) (ix *hnsw.Index, ready, stale bool) {
	t.Helper()
	waitUntil(t, "the dense index of "+collection+" is "+what, func() bool {
		st.mu.Lock()
		d := st.dense[collection]
		st.mu.Unlock()
		if d == nil {
			return false
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		ix, ready, stale = d.ix, d.ready, d.stale
		return ok(d)
	})
	return ix, ready, stale
}

// waitRecv waits for a value on ch, for up to 30s; what says what it
// stands for.
func waitRecv(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("not after 30s: %s", what)
	}
}

// waitUntil polls cond until it holds, for up to 30s (a loaded machine).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not after 30s: %s", what)
		}
	}
}

// The first dense search of `ponder serve` builds the HNSW graph away
// from the file's lock, from a snapshot of the vectors read in one
// transaction: another process ingests meanwhile (it failed after
// lock_timeout while the graph was built under the shared lock, about 35s
// at 20,000 chunks of 384 dimensions), searches meanwhile are scored
// exactly (they waited for the build), and once built the graph catches
// up with what was written during the build.
func TestSharedBuildsGraphAwayFromLock(t *testing.T) {
	t.Parallel()
	store := filepath.Join(t.TempDir(), "store.db")
	started := make(chan struct{}, 1)
	var gateMu sync.Mutex
	proceed := make(chan struct{})
	resume := func() { // lets the build held now go on; the next is held again
		gateMu.Lock()
		close(proceed)
		proceed = make(chan struct{})
		gateMu.Unlock()
	}
	defer resume()
	// beforeBuild holds the build in progress, as a large collection's
	// would be.
	st := openSharedDocs(t, store, &Options{LockTimeout: 20 * time.Second, ExactBelow: 2, beforeBuild: func() {
		gateMu.Lock()
		p := proceed
		gateMu.Unlock()
		select {
		case started <- struct{}{}:
		default:
		}
		<-p
	}}, 10)
	ctx := t.Context()
	dense := func(vec []float32) []retrieval.Hit {
		t.Helper()
		hits, err := st.Search(ctx, "docs", retrieval.Query{Vector: vec, K: 3, Mode: retrieval.ModeDense})
		if err != nil {
			t.Fatal(err)
		}
		return hits
	}
	first := make(chan []retrieval.Hit, 1)
	go func() {
		hits, _ := st.Search(ctx, "docs", retrieval.Query{Vector: []float32{1, 0, 0, 0}, K: 3, Mode: retrieval.ModeDense})
		first <- hits
	}()
	waitRecv(t, started, "the first dense search starts a build")
	if err := startChildOp(t, store, "", "z", 1, 2*time.Second)(); err != nil {
		t.Fatalf("another process ingesting while the graph is built: %v", err)
	}
	select {
	case hits := <-first:
		if len(hits) != 3 || hits[0].Source != "/p/parent/000.md" {
			t.Fatalf("first dense search: %v, want /p/parent/000.md's 3 chunks", hits)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the first dense search waits for the graph")
	}
	// Scored exactly meanwhile: what the other process wrote is found.
	if hits := dense([]float32{0, 0, 0, 1}); len(hits) == 0 || hits[0].Source != "/p/z/000.md" {
		t.Fatalf("dense search during the build: %v, want /p/z/000.md", hits)
	}
	resume()
	built := denseBuilt(t, st, "docs")
	// Through the graph, caught up with the write made during the build.
	if hits := dense([]float32{0, 0, 0, 1}); len(hits) == 0 || hits[0].Source != "/p/z/000.md" {
		t.Fatalf("dense search through the graph: %v, want /p/z/000.md", hits)
	}
	checkGraph(t, st, built)

	// Another process ingests more than is worth adding under the lock:
	// the next dense search adds it to the graph in the background too,
	// and another ingest meanwhile gets in.
	if err := startChild(t, store, "y", 30)(); err != nil {
		t.Fatal(err)
	}
	dense([]float32{0, 0, 0, 1})
	waitRecv(t, started, "a large change is added to the graph away from the lock")
	if err := startChildOp(t, store, "", "x", 1, 2*time.Second)(); err != nil {
		t.Fatalf("another process ingesting while a large change is added to the graph: %v", err)
	}
	resume()
	denseBuilt(t, st, "docs")
	dense([]float32{0, 0, 0, 1}) // catches up with x
	checkGraph(t, st, built)
}

// holdSnapshots makes st's background builds wait, before they take the
// file for their snapshot, once hold is set: each then sends on arrived
// and waits for proceed to close.
func holdSnapshots(st *Shared) (hold *atomic.Bool, arrived chan struct{}, proceed chan struct{}) {
	hold = &atomic.Bool{}
	arrived, proceed = make(chan struct{}, 1), make(chan struct{})
	st.beforeSnapshot = func() {
		if hold.Load() {
			arrived <- struct{}{}
			<-proceed
		}
	}
	return hold, arrived, proceed
}

// A background catch-up that cannot read the store (another process
// holds it past LockTimeout) keeps the graph it was to bring up to date,
// stale, and the next dense search catches that graph up: it was thrown
// away, and the next dense search built the whole graph again (about 35s
// at 20,000 chunks of 384 dimensions).
func TestSharedFailedCatchUpKeepsGraph(t *testing.T) {
	t.Parallel()
	store := filepath.Join(t.TempDir(), "store.db")
	ctx := t.Context()
	var log testutil.LockedBuffer
	a := openSharedDocs(t, store, &Options{ExactBelow: 2, LockTimeout: 300 * time.Millisecond, Logger: zerolog.New(&log)}, 5)
	hold, arrived, proceed := holdSnapshots(a)
	dense := func() []retrieval.Hit {
		t.Helper()
		hits, err := a.Search(ctx, "docs", retrieval.Query{Vector: []float32{0, 0, 0, 1}, K: 3, Mode: retrieval.ModeDense})
		if err != nil {
			t.Fatal(err)
		}
		return hits
	}
	dense()
	built := denseBuilt(t, a, "docs")

	// Another process ingests more than is added under the lock (90
	// vectors), so the next dense search catches up in the background.
	b, err := OpenShared(store, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var docs []retrieval.Document
	for i := range 30 {
		docs = append(docs, sharedDoc("z", i))
	}
	if err := b.Put(ctx, "docs", docs); err != nil {
		t.Fatal(err)
	}
	hold.Store(true)
	dense()
	waitRecv(t, arrived, "a large change from another process starts a catch-up")
	// Yet another process takes the file before the catch-up reads it,
	// and holds it past LockTimeout.
	other, err := Open(store, nil)
	if err != nil {
		t.Fatal(err)
	}
	letGo := sync.OnceFunc(func() { other.Close() })
	defer letGo()
	hold.Store(false)
	close(proceed)
	ix, ready, stale := denseWhen(t, a, "docs", "idle", func(d *denseIndex) bool { return !d.building })
	letGo()
	if !strings.Contains(log.String(), "in use by another ponder process") {
		t.Fatalf("the catch-up did not fail on the lock; log:\n%s", log.String())
	}
	if ix != built || !ready || !stale {
		t.Fatalf("after a catch-up that could not read the store: graph %p (ready %v, stale %v), want the graph built before (%p), ready and stale", ix, ready, stale, built)
	}

	if hits := dense(); len(hits) != 3 || !strings.HasPrefix(hits[0].Source, "/p/z/") {
		t.Fatalf("dense search after the failed catch-up: %v, want the other process's chunks", hits)
	}
	checkGraph(t, a, built)
	if hits := dense(); len(hits) != 3 || !strings.HasPrefix(hits[0].Source, "/p/z/") {
		t.Fatalf("dense search through the caught-up graph: %v, want the other process's chunks", hits)
	}
}

// Close gives up a background build that waits for another process's
// lock at once, not after LockTimeout: bbolt's wait cannot be cancelled,
// so stopping `ponder serve` beside a long shell ingest waited out
// lock_timeout.
func TestSharedCloseEndsBuildWaitingForLock(t *testing.T) {
	t.Parallel()
	store := filepath.Join(t.TempDir(), "store.db")
	st := openSharedDocs(t, store, &Options{ExactBelow: 2, LockTimeout: time.Minute}, 5)
	hold, arrived, proceed := holdSnapshots(st)
	hold.Store(true)
	if _, err := st.Search(t.Context(), "docs", retrieval.Query{Vector: []float32{1, 0, 0, 0}, K: 3, Mode: retrieval.ModeDense}); err != nil {
		t.Fatal(err)
	}
	waitRecv(t, arrived, "the first dense search starts a build")
	other, err := Open(store, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	close(proceed)
	waitUntil(t, "the build waits for the other's lock", func() bool {
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.opening
	})
	closed := make(chan struct{})
	go func() {
		st.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waits out the background build's wait for another process's lock (LockTimeout 1m)")
	}
}
