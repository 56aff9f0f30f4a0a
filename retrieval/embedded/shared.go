package embedded

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ponder-rlm/ponder/retrieval"
	"github.com/ponder-rlm/ponder/retrieval/hnsw"
)

// Shared is the store for long-lived processes and for writers that run
// beside them (`ponder serve`, `ponder ingest`): it opens the file for each
// operation and closes it, with its lock, as soon as no operation is in
// flight. Reads take the shared lock, writes the exclusive one, each only
// for as long as one call (one Put is one transaction), so a server that
// runs for days never keeps `ponder ingest` or `ponder search` out, and two
// writers in two processes interleave transaction by transaction: every
// document is whole (bbolt's lock and transactions), and the last Put of a
// source wins, as it does within one process.
//
// Operations in flight in this process share one open handle: reads share
// a read-only handle, and reads join a writable one only while a write is
// in flight on it (once its writes are done, reads wait for it to close
// and open the file read-only again, so a busy server holds the exclusive
// lock no longer than its writes). A write waits for this process's reads
// to finish (and new reads wait behind it), then opens the file for
// writing. A handle takes new operations for maxHold only; then they wait
// for it to close and for lockGap more, so another process waiting for
// the lock gets it however busy this one is. Another process's lock is
// waited on for LockTimeout, as with Open, or until the call's context
// ends.
//
// The in-memory dense (HNSW) index outlives the handle: this process's
// own writes update it as they commit, and when the file's transaction id
// shows that another process wrote since this one last saw it, the next
// dense search adds and removes what changed (the graph is built again
// only when the collection was deleted and made again). The graph is
// built (and a large change added) in the background from a snapshot of
// the vectors read in one transaction, not under the file's lock, which
// would keep other processes out for as long as the build takes (about
// 35s at 20,000 chunks of 384 dimensions); until it is ready, dense
// queries are scored exactly.
type Shared struct {
	path string
	opt  Options

	mu sync.Mutex
	// changed is closed (and replaced) whenever the state below changes:
	// waiters select on it and on their context, so a cancelled call
	// stops waiting (a sync.Cond cannot be).
	changed chan struct{}
	st      *Store // open while refs > 0
	write   bool   // st was opened for writing
	refs    int
	// writeRefs: the writes among refs. Reads join a writable handle
	// only while one is in flight.
	writeRefs int
	// heldSince: since when this process has held the file's lock with
	// no break of lockGap; closedAt: when the last handle closed.
	heldSince, closedAt time.Time
	// opening: one call is opening the file, without s.mu (waiting
	// for another process's lock may take LockTimeout).
	opening bool
	// writers waiting for a writable handle: new reads wait behind them,
	// so a stream of searches cannot keep an ingest out.
	writers int
	closed  bool

	// dense is the dense indexes, valid for the file as of transaction
	// txid (0: none seen yet).
	dense map[string]*denseIndex
	txid  int

	// Background builds of dense indexes (build): Close cancels bgCtx
	// and waits for them; bgMu guards bgClosed.
	bgCtx    context.Context
	bgCancel context.CancelFunc
	bgMu     sync.Mutex
	bgClosed bool
	bg       sync.WaitGroup

	// beforeSnapshot, when set, is called by a background build before
	// it takes the file for its snapshot (tests: let another process
	// take the lock first). Set before the first search.
	beforeSnapshot func()
}

var (
	_ retrieval.Store     = (*Shared)(nil)
	_ retrieval.MetaKeyer = (*Shared)(nil)
)

const (
	// maxHold is how long this process holds the file's lock before it
	// lets another process in: an open handle takes new operations for
	// maxHold after the hold began, then they wait for it to close. Long
	// enough that a handle serves many searches (an open costs about a
	// millisecond), short enough that a `ponder ingest` beside a busy
	// server gets the lock well within the default lock_timeout of 2s.
	maxHold = 500 * time.Millisecond
	// lockGap is how long the file is left unlocked after a hold of
	// maxHold: bbolt polls a held lock every 50ms (flock has no queue),
	// so a gap of two polls lets the waiting process in even on a loaded
	// machine. Busy searches wait at most this long, once per maxHold.
	lockGap = 100 * time.Millisecond
	// lockTry is how long one try to open the file waits for another
	// process's lock (bbolt polls it every 50ms and cannot be stopped
	// while it waits); between tries the wait ends if the caller's
	// context has, so Close, which cancels a background build's, waits
	// for it about this long rather than for LockTimeout.
	lockTry = 100 * time.Millisecond
	// defaultLockTimeout is Open's when Options.LockTimeout is not set.
	defaultLockTimeout = 2 * time.Second
)

// errSharedClosed: the Shared store was closed.
var errSharedClosed = errors.New("document store is closed")

// OpenShared returns a Shared store over the file at path. It opens the
// file once for reading (creating it when it is not there, unless
// o.ReadOnly) to report a damaged or unreadable store now rather than at
// the first operation, and closes it again; a write lock is first taken
// by the first write. With o.ReadOnly every operation takes the shared
// lock and writes fail with retrieval.ErrReadOnly.
func OpenShared(path string, o *Options) (*Shared, error) {
	s := &Shared{path: path, dense: map[string]*denseIndex{}}
	if o != nil {
		s.opt = *o
	}
	s.changed = make(chan struct{})
	s.bgCtx, s.bgCancel = context.WithCancel(context.Background())
	if _, err := s.acquire(context.Background(), false); err != nil {
		s.bgCancel()
		return nil, err
	}
	s.release(false)
	return s, nil
}

// broadcast wakes every waiter (s.mu held).
func (s *Shared) broadcast() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// acquire returns an open handle fit for a read (write false) or a write;
// the caller must call release once done with it. It gives up when ctx
// ends while it waits for this process's other calls.
func (s *Shared) acquire(ctx context.Context, write bool) (*Store, error) {
	write = write && !s.opt.ReadOnly
	s.mu.Lock()
	defer s.mu.Unlock()
	if write {
		s.writers++
		defer func() {
			if s.writers--; s.writers == 0 {
				s.broadcast() // reads held back for this write may go
			}
		}()
	}
	for {
		if s.closed {
			return nil, fmt.Errorf("%s: %w", s.path, errSharedClosed)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		now := time.Now()
		fresh := s.st != nil && now.Sub(s.heldSince) < maxHold
		switch {
		case s.st == nil && !s.opening && (write || s.writers == 0):
			if gap := s.gapLeft(now); gap > 0 {
				// Held for maxHold: leave the file unlocked a while.
				s.mu.Unlock()
				t := time.NewTimer(gap)
				select {
				case <-t.C:
				case <-ctx.Done():
				}
				t.Stop()
				s.mu.Lock()
				continue
			}
			s.opening = true
			s.mu.Unlock()
			st, err := s.open(ctx, write)
			s.mu.Lock()
			s.opening = false
			s.broadcast()
			if err != nil {
				return nil, err
			}
			if s.closed {
				s.closeHandle(st)
				return nil, fmt.Errorf("%s: %w", s.path, errSharedClosed)
			}
			if now := time.Now(); now.Sub(s.closedAt) >= lockGap {
				s.heldSince = now // the lock was free a while: a new hold
			}
			s.st, s.write, s.refs, s.writeRefs = st, write, 1, 0
			if write {
				s.writeRefs = 1
			}
			return st, nil
		case fresh && s.write && (write || s.writeRefs > 0):
			// A writable handle serves writes, and reads while a write is
			// in flight (the exclusive lock is held for it anyway).
			s.refs++
			if write {
				s.writeRefs++
			}
			return s.st, nil
		case fresh && !s.write && !write && s.writers == 0:
			// A read-only one serves reads while no write waits.
			s.refs++
			return s.st, nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		s.mu.Lock()
	}
}

// gapLeft is how long the next open must wait so that the file is left
// unlocked for lockGap after a hold of maxHold (s.mu held).
func (s *Shared) gapLeft(now time.Time) time.Duration {
	if s.closedAt.IsZero() || s.closedAt.Sub(s.heldSince) < maxHold {
		return 0
	}
	return max(0, s.closedAt.Add(lockGap).Sub(now))
}

// open opens the file (s.opening set by the caller, s.mu not held: no
// handle is open, and no other call opens one meanwhile). A read of a file
// that is not there yet opens it for writing, which creates it, as Open
// does for every command: the read then finds no collection and says how
// to make one. The wait for another process's lock ends at ctx's
// deadline when that comes before LockTimeout, and soon after ctx is
// cancelled (Close cancels a background build's).
func (s *Shared) open(ctx context.Context, write bool) (*Store, error) {
	opt := s.opt
	wait := opt.LockTimeout
	if wait <= 0 {
		wait = defaultLockTimeout
	}
	deadline := time.Now().Add(wait)
	if dl, ok := ctx.Deadline(); ok {
		if time.Until(dl) <= 0 {
			return nil, context.DeadlineExceeded
		}
		if dl.Before(deadline) {
			deadline = dl
		}
	}
	opt.ReadOnly = !write
	if !write && !s.opt.ReadOnly {
		if _, err := os.Stat(s.path); errors.Is(err, os.ErrNotExist) {
			opt.ReadOnly = false
		}
	}
	var st *Store
	for {
		// bbolt's wait for the lock cannot be cancelled: wait lockTry at
		// a time, and look at ctx between tries.
		// (At least a millisecond: Open takes 0 for its default.)
		opt.LockTimeout = max(time.Millisecond, min(lockTry, time.Until(deadline)))
		var err error
		if st, err = Open(s.path, &opt); err == nil {
			break
		}
		if !errors.Is(err, retrieval.ErrLocked) || time.Until(deadline) <= 0 {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("open document store %s: gave up waiting for another process's lock: %w", s.path, context.Cause(ctx))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, err := txID(st); err != nil || id != s.txid {
		// Another process wrote since this one last had the file open
		// (or this is the first open): the dense indexes may be stale.
		// The next dense search brings each up to date with the stored
		// vectors (a build of its own would hold the lock for as long as
		// building the whole graph takes, keeping writers out).
		for _, d := range s.dense {
			d.mu.Lock()
			d.stale = true
			d.mu.Unlock()
		}
	}
	st.dense = s.dense
	st.deferBuild = s.startBuild
	return st, nil
}

// startBuild starts building (or bringing up to date) the dense index d
// of collection in the background (d.mu held by the caller, which marks
// d building); false when the store is closing.
func (s *Shared) startBuild(collection string, d *denseIndex) bool {
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if s.bgClosed {
		return false
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.build(s.bgCtx, collection, d)
	}()
	return true
}

// build makes d ready: it reads the collection's vectors in one read
// transaction (the shared lock held only for that), and builds the graph
// from them, or adds to d's graph what changed when the collection is
// the one it was built for, with no lock held. The index is marked stale,
// so the next dense search catches up, under the lock, with the few
// writes made since the snapshot. On failure d keeps the graph it had,
// stale (none after a first build), and the next dense search tries
// again.
func (s *Shared) build(ctx context.Context, collection string, d *denseIndex) {
	if s.beforeSnapshot != nil {
		s.beforeSnapshot()
	}
	d.mu.Lock()
	ix, created := d.ix, d.created
	d.mu.Unlock()
	var add []denseAdd
	var removed []uint64
	err := func() error {
		st, err := s.acquire(ctx, false)
		if err != nil {
			return err
		}
		defer s.release(false)
		return st.view(func(tx *bolt.Tx) error {
			m, b, err := st.meta(tx, collection)
			if err != nil {
				return err
			}
			if !sameGraph(m, ix, created) {
				ix, created = hnsw.New(m.Dim, s.opt.HNSW), m.Created
			}
			add, removed, err = vecDiff(b, ix)
			return err
		})
	}()
	if err == nil {
		if s.opt.beforeBuild != nil {
			s.opt.beforeBuild()
		}
		err = applyDiff(ctx, ix, add, removed)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.building = false
	if err != nil {
		if ctx.Err() == nil {
			s.opt.Logger.Warn().Err(err).Str("collection", collection).Msg("build dense index")
		}
		// A graph built before keeps its place, stale: the next dense
		// search catches it up (its keys say what it holds, even after a
		// catch-up cut short), where building it again would take as
		// long as the first build (about 35s at 20,000 chunks of 384
		// dimensions). The snapshot fails when another process holds the
		// file past LockTimeout. A new graph that failed is dropped, and
		// the next dense search builds one again.
		d.ready, d.stale = d.ix != nil, true
		return
	}
	d.ix, d.created, d.ready, d.stale = ix, created, true, true
	s.opt.Logger.Debug().Str("collection", collection).Int("added", len(add)).Int("removed", len(removed)).Msg("built dense index")
}

// release ends one operation (write: acquired for a write); the last one
// closes the handle, which releases the file's lock.
func (s *Shared) release(write bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refs--
	if write && s.write {
		s.writeRefs--
	}
	if s.refs > 0 {
		return
	}
	st := s.st
	s.st = nil
	s.closeHandle(st)
	s.broadcast()
}

// closeHandle closes st, noting the file's transaction id (s.mu held).
func (s *Shared) closeHandle(st *Store) {
	// The dense indexes are in step with the file as of now: this
	// process's commits updated them.
	if id, err := txID(st); err == nil {
		s.txid = id
	} else {
		s.txid = 0
	}
	if err := st.db.Close(); err != nil {
		s.opt.Logger.Warn().Err(err).Str("path", s.path).Msg("close document store")
	}
	s.closedAt = time.Now()
}

func txID(st *Store) (int, error) {
	id := 0
	err := st.view(func(tx *bolt.Tx) error {
		id = tx.ID()
		return nil
	})
	return id, err
}

// Path is the store's file.
func (s *Shared) Path() string { return s.path }

// Close makes later operations fail; one in flight finishes, and the last
// closes the file. A dense index being built is given up, within lockTry
// when its build waits for another process's lock.
func (s *Shared) Close() error {
	s.mu.Lock()
	s.closed = true
	s.broadcast()
	s.mu.Unlock()
	s.bgMu.Lock()
	s.bgClosed = true
	s.bgMu.Unlock()
	s.bgCancel()
	s.bg.Wait()
	return nil
}

// with runs f on a handle acquired for a read (write false) or a write,
// and releases it.
func with[T any](ctx context.Context, s *Shared, write bool, f func(*Store) (T, error)) (T, error) {
	st, err := s.acquire(ctx, write)
	if err != nil {
		var zero T
		return zero, err
	}
	defer s.release(write)
	return f(st)
}

// EnsureCollection implements retrieval.Store.
func (s *Shared) EnsureCollection(ctx context.Context, spec retrieval.CollectionSpec) (retrieval.CollectionInfo, error) {
	return with(ctx, s, true, func(st *Store) (retrieval.CollectionInfo, error) { return st.EnsureCollection(ctx, spec) })
}

// Collection implements retrieval.Store.
func (s *Shared) Collection(ctx context.Context, name string) (retrieval.CollectionInfo, error) {
	return with(ctx, s, false, func(st *Store) (retrieval.CollectionInfo, error) { return st.Collection(ctx, name) })
}

// Collections implements retrieval.Store.
func (s *Shared) Collections(ctx context.Context) ([]retrieval.CollectionInfo, error) {
	return with(ctx, s, false, func(st *Store) ([]retrieval.CollectionInfo, error) { return st.Collections(ctx) })
}

// DeleteCollection implements retrieval.Store.
func (s *Shared) DeleteCollection(ctx context.Context, name string) error {
	_, err := with(ctx, s, true, func(st *Store) (struct{}, error) { return struct{}{}, st.DeleteCollection(ctx, name) })
	return err
}

// Documents implements retrieval.Store.
func (s *Shared) Documents(ctx context.Context, collection string, sources []string) (map[string]retrieval.DocInfo, error) {
	return with(ctx, s, false, func(st *Store) (map[string]retrieval.DocInfo, error) { return st.Documents(ctx, collection, sources) })
}

// ListDocuments returns every document of a collection, by source.
func (s *Shared) ListDocuments(ctx context.Context, collection string) ([]retrieval.DocInfo, error) {
	return with(ctx, s, false, func(st *Store) ([]retrieval.DocInfo, error) { return st.ListDocuments(ctx, collection) })
}

// Sources implements retrieval.Store.
func (s *Shared) Sources(ctx context.Context, collection, prefix string) ([]string, error) {
	return with(ctx, s, false, func(st *Store) ([]string, error) { return st.Sources(ctx, collection, prefix) })
}

// Put implements retrieval.Store.
func (s *Shared) Put(ctx context.Context, collection string, docs []retrieval.Document) error {
	_, err := with(ctx, s, true, func(st *Store) (struct{}, error) { return struct{}{}, st.Put(ctx, collection, docs) })
	return err
}

// DeleteDocument implements retrieval.Store.
func (s *Shared) DeleteDocument(ctx context.Context, collection, source string) (bool, error) {
	return with(ctx, s, true, func(st *Store) (bool, error) { return st.DeleteDocument(ctx, collection, source) })
}

// MetaKeys implements retrieval.MetaKeyer.
func (s *Shared) MetaKeys(ctx context.Context, collection string) ([]string, error) {
	return with(ctx, s, false, func(st *Store) ([]string, error) { return st.MetaKeys(ctx, collection) })
}

// Search implements retrieval.Store.
func (s *Shared) Search(ctx context.Context, collection string, q retrieval.Query) ([]retrieval.Hit, error) {
	return with(ctx, s, false, func(st *Store) ([]retrieval.Hit, error) { return st.Search(ctx, collection, q) })
}
