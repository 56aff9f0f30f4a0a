// Package embedded is Ponder's default document store: one bbolt file under
// the data directory holding chunks, a BM25 inverted index and dense
// vectors, with an in-memory HNSW index over the vectors built on first
// dense search and kept up to date while the store is open.
//
//	st, err := embedded.Open("/var/lib/ponder/retrieval.db", nil)
//	defer st.Close()
//	_, err = st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: "docs"})
//	err = st.Put(ctx, "docs", docs)          // durable when it returns
//	hits, err := st.Search(ctx, "docs", retrieval.Query{Text: "admin port", K: 5})
//
// Every Put is one bbolt transaction, fsynced on commit: a document is
// either wholly there (all its chunks and postings) or not at all, and an
// acknowledged Put survives kill -9 and power loss.
package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/ponder-rlm/ponder/retrieval"
	"github.com/ponder-rlm/ponder/retrieval/hnsw"
	"github.com/ponder-rlm/ponder/retrieval/lexical"
)

// Options tune the store. The zero value is valid.
type Options struct {
	// LockTimeout bounds the wait for another process's lock (default 2s).
	LockTimeout time.Duration
	// EfSearch is HNSW's candidate list size for dense search (default 96).
	EfSearch int
	// ExactBelow: collections with fewer vectors are searched exactly
	// (default 4096).
	ExactBelow int
	// ExactDense scores every dense query exactly, however large the
	// collection, and never builds the HNSW graph: for short-lived
	// processes (`ponder search`, a solve), which make a few queries, and
	// for whom building the graph (about 40s at 20,000 chunks of 384
	// dimensions) costs far more than scoring every stored vector
	// (milliseconds a query). Results are those of the exact search of a
	// collection under ExactBelow.
	ExactDense bool
	// HNSW tunes the graph.
	HNSW   *hnsw.Options
	Logger zerolog.Logger
	// NoSync skips fsync on commit (benchmarks only: acknowledged writes
	// may then be lost on power failure).
	NoSync bool
	// ReadOnly opens the file for reading only, with a shared lock: any
	// number of read-only openers may search it at once, while a writer
	// (which holds the lock alone) still keeps them out. Writes fail with
	// retrieval.ErrReadOnly. The file must exist.
	ReadOnly bool

	// openFile opens the file for bbolt (tests: a file this user may not
	// write, as root, who may write anything).
	openFile func(name string, flag int, perm os.FileMode) (*os.File, error)
	// beforeBuild, when set, is called before an HNSW graph is built or
	// brought up to date from a snapshot (tests: hold a build in
	// progress).
	beforeBuild func()
}

// Store is the embedded store. It is safe for concurrent use.
type Store struct {
	db   *bolt.DB
	path string
	opt  Options
	log  zerolog.Logger

	mu    sync.Mutex
	dense map[string]*denseIndex
	bufs  sync.Pool
	// readOnly says why the store is read-only ("" when it is writable).
	readOnly string
	// deferBuild (Shared) builds a dense index away from this handle, so
	// not under the file's lock; it reports false when it cannot (the
	// store is closing). Until the index is ready, dense queries are
	// scored exactly.
	deferBuild func(collection string, d *denseIndex) bool
}

var (
	_ retrieval.Store     = (*Store)(nil)
	_ retrieval.MetaKeyer = (*Store)(nil)
)

var (
	bCollections = []byte("collections")
	bDocs        = []byte("docs")
	bChunks      = []byte("chunks")
	bVecs        = []byte("vecs")
	bPost        = []byte("post")
	bTerms       = []byte("terms")
	kStats       = []byte("stats")
)

// Open opens (creating if needed) the store file at path. A file locked by
// another process gives an error wrapping retrieval.ErrLocked after
// LockTimeout; a file that is not a store, or is damaged (cut short, its
// header overwritten), an error wrapping retrieval.ErrDamaged that names
// it and says what is wrong, and the file is left as it is. A file this user may read but not write (or one on a
// read-only file system) is opened read-only: search works, writes fail
// with retrieval.ErrReadOnly saying why.
func Open(path string, o *Options) (*Store, error) {
	var opt Options
	if o != nil {
		opt = *o
	}
	if opt.LockTimeout <= 0 {
		opt.LockTimeout = defaultLockTimeout
	}
	if opt.EfSearch <= 0 {
		opt.EfSearch = 96
	}
	if opt.ExactBelow <= 0 {
		opt.ExactBelow = 4096
	}
	readOnly := ""
	if opt.ReadOnly {
		readOnly = "opened for reading only"
	} else if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("document store %s: %w", path, err)
	}
	db, err := openBolt(path, opt, opt.ReadOnly)
	if err != nil && !opt.ReadOnly && cannotWrite(err) {
		// Reading needs no write access: a store the user may only read
		// (another user's data dir, a read-only mount) is still searched.
		// Only an existing file: a missing one cannot be created here.
		if _, serr := os.Stat(path); serr == nil {
			db2, err2 := openBolt(path, opt, true)
			if err2 == nil {
				readOnly = "this user cannot write it: " + errText(err)
				db, err = db2, nil
				opt.Logger.Debug().Str("path", path).Msg("document store opened read-only: " + readOnly)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, path: path, opt: opt, log: opt.Logger, dense: map[string]*denseIndex{}, readOnly: readOnly}
	if readOnly != "" {
		return s, nil
	}
	// Only a new file is written at open: a write transaction at every
	// open would fsync and move the file's transaction id, which Shared
	// reads as another process's write.
	made := false
	if err := s.view(func(tx *bolt.Tx) error {
		made = tx.Bucket(bCollections) != nil
		return nil
	}); err != nil {
		// A damaged file is not written to.
		db.Close()
		return nil, err
	}
	if made {
		return s, nil
	}
	if err := s.update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bCollections)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("document store %s: %w", path, err)
	}
	return s, nil
}

func openBolt(path string, opt Options, readOnly bool) (db *bolt.DB, err error) {
	// A file cut short kills the process inside bbolt (see checkFile):
	// it is refused before bbolt maps it.
	if err := checkFile(path); err != nil {
		return nil, err
	}
	defer func() {
		// bbolt panics on some kinds of damage instead of returning an error.
		if r := recover(); r != nil {
			db, err = nil, damaged(path, fmt.Sprintf("cannot be read (%v)", r))
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: opt.LockTimeout, NoSync: opt.NoSync, ReadOnly: readOnly, OpenFile: opt.openFile})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, berrors.ErrTimeout):
		// Reading while another process writes is not safe with bbolt
		// (the writer reuses pages a reader in another process may still
		// be reading), so a read-only open waits for the writer too.
		// Readers share the lock, so a writer also waits for searches and
		// solves.
		holder := "`ponder serve` or ingest"
		if !readOnly {
			holder = "`ponder serve`, ingest, search, solve --collection, eval or tools call"
		}
		return nil, fmt.Errorf("%w: %s is in use by another ponder process (a running %s?); let it finish or stop it, or set a different --data-dir", retrieval.ErrLocked, path, holder)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrChecksum):
		return nil, damaged(path, fmt.Sprintf("is not a Ponder document store, or its header is damaged (%v)", err))
	default:
		if st, serr := os.Stat(path); readOnly && serr == nil && st.Size() == 0 {
			// bbolt makes a new store in an empty file, which it cannot
			// write here. Checked only now, under the shared lock: a
			// writer in another process may have just made the file and
			// be writing its first pages.
			return nil, damaged(path, "is empty (a copy or backup that stopped before it began, on a full disk?)")
		}
		return nil, fmt.Errorf("open document store %s: %w", path, err)
	}
}

// cannotWrite reports whether err says the file may not be opened for
// writing: permission denied, or a read-only file system.
func cannotWrite(err error) bool {
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS)
}

func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Path is the store's file.
func (s *Store) Path() string { return s.path }

// ReadOnly says why the store is read-only, or "" when it is writable.
func (s *Store) ReadOnly() string { return s.readOnly }

// writable refuses a write (op names it) on a read-only store.
func (s *Store) writable(op string) error {
	if s.readOnly == "" {
		return nil
	}
	return fmt.Errorf("%w (%s): cannot %s; searching works, but ingesting and deleting need write access to %s (or another --data-dir)",
		retrieval.ErrReadOnly, s.readOnly, op, s.path)
}

// Close closes the file; later calls fail.
func (s *Store) Close() error {
	s.mu.Lock()
	s.dense = map[string]*denseIndex{}
	s.mu.Unlock()
	return s.db.Close()
}

type collMeta struct {
	Name    string    `json:"name"`
	Dim     int       `json:"dim,omitempty"`
	Model   string    `json:"model,omitempty"`
	Created time.Time `json:"created"`
}

type stats struct {
	chunks, docs, totalLen, nextSeq uint64
}

func readStats(b *bolt.Bucket) stats {
	v := b.Get(kStats)
	if len(v) < 32 {
		return stats{nextSeq: 1}
	}
	return stats{binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:]), binary.BigEndian.Uint64(v[16:]), binary.BigEndian.Uint64(v[24:])}
}

func writeStats(b *bolt.Bucket, st stats) error {
	v := make([]byte, 32)
	binary.BigEndian.PutUint64(v, st.chunks)
	binary.BigEndian.PutUint64(v[8:], st.docs)
	binary.BigEndian.PutUint64(v[16:], st.totalLen)
	binary.BigEndian.PutUint64(v[24:], st.nextSeq)
	return b.Put(kStats, v)
}

func collBucketName(name string) []byte { return []byte("c:" + name) }

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

func (s *Store) meta(tx *bolt.Tx, name string) (collMeta, *bolt.Bucket, error) {
	var m collMeta
	var v []byte
	if cb := tx.Bucket(bCollections); cb != nil {
		v = cb.Get([]byte(name))
	}
	b := tx.Bucket(collBucketName(name))
	if v == nil || b == nil {
		return m, nil, fmt.Errorf("%w: %q (ingest documents into it with `ponder ingest --collection %s PATH`)", retrieval.ErrNoCollection, name, name)
	}
	if err := json.Unmarshal(v, &m); err != nil {
		return m, nil, fmt.Errorf("collection %q: damaged metadata: %w", name, err)
	}
	return m, b, nil
}

func info(m collMeta, b *bolt.Bucket) retrieval.CollectionInfo {
	st := readStats(b)
	return retrieval.CollectionInfo{Name: m.Name, Dim: m.Dim, Model: m.Model, Documents: int(st.docs), Chunks: int(st.chunks), Created: m.Created}
}

// EnsureCollection implements retrieval.Store.
func (s *Store) EnsureCollection(ctx context.Context, spec retrieval.CollectionSpec) (retrieval.CollectionInfo, error) {
	if err := retrieval.ValidateCollection(spec.Name); err != nil {
		return retrieval.CollectionInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return retrieval.CollectionInfo{}, err
	}
	if err := s.writable("add to collection " + spec.Name); err != nil {
		return retrieval.CollectionInfo{}, err
	}
	var out retrieval.CollectionInfo
	err := s.update(func(tx *bolt.Tx) error {
		if m, b, err := s.meta(tx, spec.Name); err == nil {
			if m.Dim != spec.Dim {
				return dimErr(m, spec.Dim, spec.Model)
			}
			out = info(m, b)
			return retrieval.CheckModel(out, spec.Model, false)
		}
		m := collMeta{Name: spec.Name, Dim: spec.Dim, Model: spec.Model, Created: time.Now().UTC()}
		v, _ := json.Marshal(m)
		if err := tx.Bucket(bCollections).Put([]byte(spec.Name), v); err != nil {
			return err
		}
		b, err := tx.CreateBucketIfNotExists(collBucketName(spec.Name))
		if err != nil {
			return err
		}
		for _, sub := range [][]byte{bDocs, bChunks, bVecs, bPost, bTerms} {
			if _, err := b.CreateBucketIfNotExists(sub); err != nil {
				return err
			}
		}
		if err := writeStats(b, stats{nextSeq: 1}); err != nil {
			return err
		}
		out = info(m, b)
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("collection %q: %w", spec.Name, err)
	}
	return out, nil
}

func dimErr(m collMeta, dim int, model string) error {
	have := "lexical only (no embedder)"
	if m.Dim > 0 {
		have = fmt.Sprintf("%d-dimensional vectors", m.Dim)
		if m.Model != "" {
			have += " from " + m.Model
		}
	}
	want := "no vectors"
	if dim > 0 {
		want = fmt.Sprintf("%d-dimensional vectors", dim)
		if model != "" {
			want += " from " + model
		}
	}
	return fmt.Errorf("%w: collection %q holds %s but this embedder gives %s: use the same embedding model, or another collection",
		retrieval.ErrDimension, m.Name, have, want)
}

// Collection implements retrieval.Store.
func (s *Store) Collection(ctx context.Context, name string) (retrieval.CollectionInfo, error) {
	var out retrieval.CollectionInfo
	err := s.view(func(tx *bolt.Tx) error {
		m, b, err := s.meta(tx, name)
		if err != nil {
			return err
		}
		out = info(m, b)
		return nil
	})
	return out, err
}

// Collections implements retrieval.Store.
func (s *Store) Collections(ctx context.Context) ([]retrieval.CollectionInfo, error) {
	var out []retrieval.CollectionInfo
	err := s.view(func(tx *bolt.Tx) error {
		cb := tx.Bucket(bCollections)
		if cb == nil {
			return nil // a read-only store that never had a collection
		}
		return cb.ForEach(func(k, _ []byte) error {
			m, b, err := s.meta(tx, string(k))
			if err != nil {
				return err
			}
			out = append(out, info(m, b))
			return nil
		})
	})
	return out, err
}

// DeleteCollection implements retrieval.Store.
func (s *Store) DeleteCollection(ctx context.Context, name string) error {
	if err := s.writable("delete collection " + name); err != nil {
		return err
	}
	err := s.update(func(tx *bolt.Tx) error {
		if _, _, err := s.meta(tx, name); err != nil {
			return err
		}
		if err := tx.DeleteBucket(collBucketName(name)); err != nil {
			return err
		}
		return tx.Bucket(bCollections).Delete([]byte(name))
	})
	if err != nil {
		return fmt.Errorf("delete collection %q: %w", name, err)
	}
	s.mu.Lock()
	delete(s.dense, name)
	s.mu.Unlock()
	return nil
}

// docRecord is a document as stored: its info and its chunks' sequence
// numbers.
type docRecord struct {
	retrieval.DocInfo
	Meta map[string]string `json:"meta,omitempty"`
	Seqs []uint64          `json:"seqs"`
}

// Documents implements retrieval.Store.
func (s *Store) Documents(ctx context.Context, collection string, sources []string) (map[string]retrieval.DocInfo, error) {
	out := map[string]retrieval.DocInfo{}
	err := s.view(func(tx *bolt.Tx) error {
		_, b, err := s.meta(tx, collection)
		if err != nil {
			return err
		}
		docs := b.Bucket(bDocs)
		for _, src := range sources {
			if v := docs.Get([]byte(src)); v != nil {
				var r docRecord
				if err := json.Unmarshal(v, &r); err != nil {
					return fmt.Errorf("document %s: damaged record: %w", src, err)
				}
				out[src] = r.DocInfo
			}
		}
		return nil
	})
	return out, err
}

// ListDocuments returns every document of a collection, by source.
func (s *Store) ListDocuments(ctx context.Context, collection string) ([]retrieval.DocInfo, error) {
	var out []retrieval.DocInfo
	err := s.view(func(tx *bolt.Tx) error {
		_, b, err := s.meta(tx, collection)
		if err != nil {
			return err
		}
		return b.Bucket(bDocs).ForEach(func(k, v []byte) error {
			var r docRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("document %s: damaged record: %w", k, err)
			}
			out = append(out, r.DocInfo)
			return nil
		})
	})
	return out, err
}

// MetaKeys implements retrieval.MetaKeyer: it reads every chunk's record
// (only when a filtered search found nothing: see retrieval.CheckFilter).
func (s *Store) MetaKeys(ctx context.Context, collection string) ([]string, error) {
	seen := map[string]bool{}
	err := s.view(func(tx *bolt.Tx) error {
		_, b, err := s.meta(tx, collection)
		if err != nil {
			return err
		}
		n := 0
		return b.Bucket(bChunks).ForEach(func(k, v []byte) error {
			if n++; n%1024 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			var c struct {
				Meta map[string]json.RawMessage `json:"meta"`
			}
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("chunk %x: damaged record: %w", k, err)
			}
			for m := range c.Meta {
				seen[m] = true
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list the metadata keys of %q: %w", collection, err)
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

// Sources implements retrieval.Store: the docs bucket is keyed by source,
// so the sources under a prefix are one range of it.
func (s *Store) Sources(ctx context.Context, collection, prefix string) ([]string, error) {
	out := []string{}
	err := s.view(func(tx *bolt.Tx) error {
		_, b, err := s.meta(tx, collection)
		if err != nil {
			return err
		}
		c := b.Bucket(bDocs).Cursor()
		p := []byte(prefix)
		for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
			out = append(out, string(k))
		}
		return nil
	})
	return out, err
}

// storedChunk is a chunk's record; Len is its BM25 length.
type storedChunk struct {
	retrieval.Chunk
	Len int `json:"len"`
}

// postings are encoded as an 8-byte last sequence number followed by
// uvarint triples (sequence delta, term frequency, chunk length).
type posting struct {
	seq    uint64
	tf, dl uint32
}

func decodePostings(v []byte, fn func(p posting)) {
	if len(v) < 8 {
		return
	}
	v = v[8:]
	var seq uint64
	for len(v) > 0 {
		d, n := binary.Uvarint(v)
		v = v[n:]
		tf, n2 := binary.Uvarint(v)
		v = v[n2:]
		dl, n3 := binary.Uvarint(v)
		v = v[n3:]
		if n <= 0 || n2 <= 0 || n3 <= 0 {
			return
		}
		seq += d
		fn(posting{seq, uint32(tf), uint32(dl)})
	}
}

func encodePostings(ps []posting) []byte {
	return appendPostings(make([]byte, 8), ps)
}

// appendPostings appends ps, whose sequence numbers are above every one in
// the encoded list v, to v and updates its header (the last sequence number).
func appendPostings(v []byte, ps []posting) []byte {
	last := binary.BigEndian.Uint64(v)
	for _, p := range ps {
		v = binary.AppendUvarint(v, p.seq-last)
		v = binary.AppendUvarint(v, uint64(p.tf))
		v = binary.AppendUvarint(v, uint64(p.dl))
		last = p.seq
	}
	binary.BigEndian.PutUint64(v, last)
	return v
}

// Put implements retrieval.Store: all of docs in one transaction, fsynced.
func (s *Store) Put(ctx context.Context, collection string, docs []retrieval.Document) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.writable(fmt.Sprintf("store %d documents in %s", len(docs), collection)); err != nil {
		return err
	}
	var added []denseAdd
	var removed []uint64
	err := s.update(func(tx *bolt.Tx) error {
		m, b, err := s.meta(tx, collection)
		if err != nil {
			return err
		}
		// Check every vector before writing anything.
		for _, d := range docs {
			if d.Source == "" {
				return fmt.Errorf("%w: a document has no source", retrieval.ErrBadQuery)
			}
			for _, c := range d.Chunks {
				if len(c.Vector) != m.Dim {
					return dimErr(m, len(c.Vector), "")
				}
			}
		}
		st := readStats(b)
		docsB, chunksB, vecsB, postB, termsB := b.Bucket(bDocs), b.Bucket(bChunks), b.Bucket(bVecs), b.Bucket(bPost), b.Bucket(bTerms)
		drop := map[string]map[uint64]bool{} // term -> seqs to remove
		adds := map[string][]posting{}
		for _, d := range docs {
			if v := docsB.Get([]byte(d.Source)); v != nil {
				if removed, err = removeDoc(b, d.Source, v, &st, drop, removed); err != nil {
					return err
				}
			}
			rec := docRecord{DocInfo: retrieval.DocInfo{Source: d.Source, Hash: d.Hash, Params: d.Params, Title: d.Title,
				Bytes: d.Bytes, Chunks: len(d.Chunks), IngestedAt: d.IngestedAt}, Meta: d.Meta}
			for i, c := range d.Chunks {
				seq := st.nextSeq
				st.nextSeq++
				c.Source = d.Source
				c.DocHash = d.Hash
				if c.IngestedAt.IsZero() {
					c.IngestedAt = d.IngestedAt
				}
				if c.Title == "" {
					c.Title = d.Title
				}
				if c.ID == "" {
					c.ID = retrieval.ChunkID(d.Source, d.Hash, i)
				}
				tf, dl := lexical.TermFreqs(c.Text)
				cv, err := json.Marshal(storedChunk{Chunk: c, Len: dl})
				if err != nil {
					return err
				}
				k := seqKey(seq)
				if err := chunksB.Put(k, cv); err != nil {
					return err
				}
				terms := make([]string, 0, len(tf))
				for t, n := range tf {
					terms = append(terms, t)
					adds[t] = append(adds[t], posting{seq, uint32(n), uint32(dl)})
				}
				sort.Strings(terms)
				tb := []byte{}
				for i, t := range terms {
					if i > 0 {
						tb = append(tb, 0)
					}
					tb = append(tb, t...)
				}
				if err := termsB.Put(k, tb); err != nil {
					return err
				}
				if m.Dim > 0 {
					if err := vecsB.Put(k, encodeVec(c.Vector)); err != nil {
						return err
					}
					added = append(added, denseAdd{seq, c.Vector})
				}
				rec.Seqs = append(rec.Seqs, seq)
				st.chunks++
				st.totalLen += uint64(dl)
			}
			rv, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			if err := docsB.Put([]byte(d.Source), rv); err != nil {
				return err
			}
			st.docs++
		}
		if err := updatePostings(postB, drop, adds); err != nil {
			return err
		}
		return writeStats(b, st)
	})
	if err != nil {
		return fmt.Errorf("store %d documents in %q: %w", len(docs), collection, err)
	}
	s.updateDense(collection, removed, added)
	return nil
}

func updatePostings(postB *bolt.Bucket, drop map[string]map[uint64]bool, adds map[string][]posting) error {
	terms := make([]string, 0, len(drop)+len(adds))
	for t := range drop {
		terms = append(terms, t)
	}
	for t := range adds {
		if drop[t] == nil {
			terms = append(terms, t)
		}
	}
	sort.Strings(terms) // sequential keys write faster in a B+tree
	for _, t := range terms {
		key := []byte(t)
		old := postB.Get(key)
		d, a := drop[t], adds[t]
		if d == nil && len(old) >= 8 {
			// Append only: new sequence numbers are above every old one.
			nv := make([]byte, len(old), len(old)+len(a)*6)
			copy(nv, old)
			nv = appendPostings(nv, a)
			if err := postB.Put(key, nv); err != nil {
				return err
			}
			continue
		}
		var ps []posting
		decodePostings(old, func(p posting) {
			if !d[p.seq] {
				ps = append(ps, p)
			}
		})
		// A chunk added earlier in this transaction may be dropped too (one
		// Put naming a source twice).
		for _, p := range a {
			if !d[p.seq] {
				ps = append(ps, p)
			}
		}
		if len(ps) == 0 {
			if err := postB.Delete(key); err != nil {
				return err
			}
			continue
		}
		if err := postB.Put(key, encodePostings(ps)); err != nil {
			return err
		}
	}
	return nil
}

// removeDoc deletes the chunks of the stored document record rec (of
// source) from the collection bucket b: it updates st, marks each chunk's
// terms in drop (term -> seqs) for updatePostings and returns removed with
// the chunks' sequence numbers appended. The record itself is left to the
// caller.
func removeDoc(b *bolt.Bucket, source string, rec []byte, st *stats, drop map[string]map[uint64]bool, removed []uint64) ([]uint64, error) {
	var old docRecord
	if err := json.Unmarshal(rec, &old); err != nil {
		return removed, fmt.Errorf("document %s: damaged record: %w", source, err)
	}
	chunksB, vecsB, termsB := b.Bucket(bChunks), b.Bucket(bVecs), b.Bucket(bTerms)
	for _, seq := range old.Seqs {
		k := seqKey(seq)
		if cv := chunksB.Get(k); cv != nil {
			var sc storedChunk
			if json.Unmarshal(cv, &sc) == nil {
				st.totalLen -= min(st.totalLen, uint64(sc.Len))
			}
		}
		for _, t := range bytes.Split(termsB.Get(k), []byte{0}) {
			if len(t) == 0 {
				continue
			}
			if drop[string(t)] == nil {
				drop[string(t)] = map[uint64]bool{}
			}
			drop[string(t)][seq] = true
		}
		for _, bb := range []*bolt.Bucket{chunksB, vecsB, termsB} {
			if err := bb.Delete(k); err != nil {
				return removed, err
			}
		}
		removed = append(removed, seq)
		st.chunks--
	}
	st.docs--
	return removed, nil
}

// DeleteDocument implements retrieval.Store.
func (s *Store) DeleteDocument(ctx context.Context, collection, source string) (bool, error) {
	if err := s.writable(fmt.Sprintf("delete %s from %s", source, collection)); err != nil {
		return false, err
	}
	found := false
	var removed []uint64
	err := s.update(func(tx *bolt.Tx) error {
		_, b, err := s.meta(tx, collection)
		if err != nil {
			return err
		}
		docsB := b.Bucket(bDocs)
		v := docsB.Get([]byte(source))
		if v == nil {
			return nil
		}
		found = true
		st := readStats(b)
		drop := map[string]map[uint64]bool{}
		if removed, err = removeDoc(b, source, v, &st, drop, nil); err != nil {
			return err
		}
		if err := updatePostings(b.Bucket(bPost), drop, nil); err != nil {
			return err
		}
		if err := docsB.Delete([]byte(source)); err != nil {
			return err
		}
		return writeStats(b, st)
	})
	if err != nil {
		return false, fmt.Errorf("delete %s from %q: %w", source, collection, err)
	}
	s.updateDense(collection, removed, nil)
	return found, nil
}

func encodeVec(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func decodeVec(b []byte) []float32 {
	return decodeVecInto(nil, b)
}

// decodeVecInto decodes b into buf's storage when it is large enough.
func decodeVecInto(buf []float32, b []byte) []float32 {
	n := len(b) / 4
	if cap(buf) < n {
		buf = make([]float32, n)
	}
	v := buf[:n]
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}
