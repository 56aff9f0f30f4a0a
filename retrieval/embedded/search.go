package embedded

import (
	"container/heap"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ponder-rlm/ponder/retrieval"
	"github.com/ponder-rlm/ponder/retrieval/hnsw"
	"github.com/ponder-rlm/ponder/retrieval/lexical"
)

// Search implements retrieval.Store.
func (s *Store) Search(ctx context.Context, collection string, q retrieval.Query) ([]retrieval.Hit, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if q.K <= 0 {
		q.K = 5
	}
	mode := q.EffectiveMode()
	// The HNSW graph is built (if needed) outside the search transaction:
	// a read transaction must not open another one.
	var ix *hnsw.Index
	if mode != retrieval.ModeLexical && len(q.Filter) == 0 {
		var m collMeta
		var n uint64
		if err := s.view(func(tx *bolt.Tx) error {
			var b *bolt.Bucket
			var err error
			m, b, err = s.meta(tx, collection)
			if err == nil {
				n = readStats(b).chunks
			}
			return err
		}); err != nil {
			return nil, fmt.Errorf("search %q: %w", collection, err)
		}
		if !s.opt.ExactDense && n >= uint64(s.opt.ExactBelow) && m.Dim > 0 && len(q.Vector) == m.Dim {
			var err error
			if ix, err = s.graph(collection, m.Dim); err != nil {
				return nil, fmt.Errorf("search %q: %w", collection, err)
			}
		}
	}
	var out []retrieval.Hit
	err := s.view(func(tx *bolt.Tx) error {
		m, b, err := s.meta(tx, collection)
		if err != nil {
			return err
		}
		if mode != retrieval.ModeLexical && len(q.Vector) != m.Dim {
			return dimErr(m, len(q.Vector), "")
		}
		switch mode {
		case retrieval.ModeLexical:
			out, err = s.lexicalSearch(tx, b, q.Text, q.K, q.Filter)
		case retrieval.ModeDense:
			out, err = s.denseSearch(b, ix, q.Vector, q.K, q.Filter)
		case retrieval.ModeHybrid:
			n := max(3*q.K, 30)
			var lex, den []retrieval.Hit
			if lex, err = s.lexicalSearch(tx, b, q.Text, n, q.Filter); err != nil {
				return err
			}
			if den, err = s.denseSearch(b, ix, q.Vector, n, q.Filter); err != nil {
				return err
			}
			out = retrieval.FuseRRF(q.K, lex, den)
		default:
			return fmt.Errorf("%w: unknown search mode %q (want lexical, dense or hybrid)", retrieval.ErrBadQuery, q.Mode)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("search %q: %w", collection, err)
	}
	return out, nil
}

type scoreBuf struct {
	score   []float32
	touched []uint32
	ps      []posting
}

type scored struct {
	seq   uint32
	score float32
}

type scoredHeap []scored

func (h scoredHeap) Len() int { return len(h) }
func (h scoredHeap) Less(i, j int) bool {
	if h[i].score != h[j].score {
		return h[i].score < h[j].score
	}
	return h[i].seq > h[j].seq
}
func (h scoredHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *scoredHeap) Push(x any)   { *h = append(*h, x.(scored)) }
func (h *scoredHeap) Pop() any     { o := *h; x := o[len(o)-1]; *h = o[:len(o)-1]; return x }

func better(a, b scored) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	return a.seq < b.seq
}

// lexicalSearch scores BM25 over the postings of the query's terms.
func (s *Store) lexicalSearch(tx *bolt.Tx, b *bolt.Bucket, text string, k int, filter map[string]string) ([]retrieval.Hit, error) {
	terms := lexical.Tokenize(text)
	if len(terms) == 0 {
		return nil, nil
	}
	st := readStats(b)
	if st.chunks == 0 {
		return nil, nil
	}
	avg := float64(st.totalLen) / float64(st.chunks)
	buf, _ := s.bufs.Get().(*scoreBuf)
	if buf == nil {
		buf = &scoreBuf{}
	}
	defer s.bufs.Put(buf)
	if uint64(len(buf.score)) < st.nextSeq {
		buf.score = make([]float32, st.nextSeq+st.nextSeq/4)
	}
	buf.touched = buf.touched[:0]
	postB := b.Bucket(bPost)
	seen := map[string]bool{}
	for _, t := range terms {
		if seen[t] {
			continue
		}
		seen[t] = true
		buf.ps = buf.ps[:0]
		decodePostings(postB.Get([]byte(t)), func(p posting) { buf.ps = append(buf.ps, p) })
		if len(buf.ps) == 0 {
			continue
		}
		idf := lexical.IDF(int(st.chunks), len(buf.ps))
		for _, p := range buf.ps {
			if p.seq >= uint64(len(buf.score)) {
				continue
			}
			if buf.score[p.seq] == 0 {
				buf.touched = append(buf.touched, uint32(p.seq))
			}
			buf.score[p.seq] += float32(idf * lexical.TF(int(p.tf), int(p.dl), avg))
		}
	}
	cands := make([]scored, 0, len(buf.touched))
	for _, seq := range buf.touched {
		cands = append(cands, scored{seq, buf.score[seq]})
		buf.score[seq] = 0
	}
	chunksB := b.Bucket(bChunks)
	if len(filter) == 0 {
		cands = topK(cands, k)
	} else {
		sort.Slice(cands, func(i, j int) bool { return better(cands[i], cands[j]) })
	}
	return loadHits(chunksB, cands, k, filter)
}

func topK(cands []scored, k int) []scored {
	if len(cands) <= k {
		sort.Slice(cands, func(i, j int) bool { return better(cands[i], cands[j]) })
		return cands
	}
	h := make(scoredHeap, 0, k+1)
	for _, c := range cands {
		if len(h) < k {
			heap.Push(&h, c)
		} else if better(c, h[0]) {
			h[0] = c
			heap.Fix(&h, 0)
		}
	}
	out := []scored(h)
	sort.Slice(out, func(i, j int) bool { return better(out[i], out[j]) })
	return out
}

// loadHits reads the chunks of cands in order, keeping those that pass
// filter, up to k.
func loadHits(chunksB *bolt.Bucket, cands []scored, k int, filter map[string]string) ([]retrieval.Hit, error) {
	var out []retrieval.Hit
	for _, c := range cands {
		v := chunksB.Get(seqKey(uint64(c.seq)))
		if v == nil {
			continue // deleted after the index snapshot
		}
		var sc storedChunk
		if err := json.Unmarshal(v, &sc); err != nil {
			return nil, fmt.Errorf("chunk %d: damaged record: %w", c.seq, err)
		}
		if !retrieval.MatchFilter(&sc.Chunk, filter) {
			continue
		}
		out = append(out, retrieval.Hit{Chunk: sc.Chunk, Score: float64(c.score)})
		if len(out) == k {
			break
		}
	}
	return out, nil
}

// denseIndex is a collection's HNSW graph, built from the stored vectors
// on first use and updated after every commit.
type denseIndex struct {
	mu    sync.Mutex
	ready bool
	ix    *hnsw.Index
	// stale: another process may have written the collection since ix
	// was last in step with it (Shared); the next dense search brings ix
	// in line with the stored vectors rather than building it again.
	stale bool
	// created is the collection's creation time as of ix: a collection
	// deleted and made again reuses sequence numbers, so ix is rebuilt.
	created time.Time
	// building: a Shared store is building ix (or bringing it up to
	// date) from a snapshot, away from the file's lock; ready is false
	// meanwhile, so commits leave ix to the builder.
	building bool
}

type denseAdd struct {
	seq uint64
	vec []float32
}

func (s *Store) updateDense(collection string, removed []uint64, added []denseAdd) {
	s.mu.Lock()
	d := s.dense[collection]
	s.mu.Unlock()
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.ready {
		return
	}
	gone := make(map[uint64]bool, len(removed))
	for _, seq := range removed {
		d.ix.Delete(seq)
		gone[seq] = true
	}
	for _, a := range added {
		if !gone[a.seq] { // added and replaced in the same Put
			d.ix.Add(a.seq, a.vec)
		}
	}
}

// graph returns the collection's ready HNSW index, building it first.
func (s *Store) graph(collection string, dim int) (*hnsw.Index, error) {
	s.mu.Lock()
	d := s.dense[collection]
	if d == nil {
		d = &denseIndex{}
		s.dense[collection] = d
	}
	s.mu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ready && !d.stale {
		return d.ix, nil
	}
	if d.building {
		return nil, nil // scored exactly until the index is ready
	}
	if d.ready {
		limit := 0
		if s.deferBuild != nil {
			limit = maxCatchUp
		}
		ok, err := s.catchUp(collection, d, limit)
		if err != nil || ok {
			return d.ix, err
		}
	}
	if s.deferBuild != nil {
		// Built away from this handle (see Shared.build); meanwhile
		// dense queries are scored exactly.
		if s.deferBuild(collection, d) {
			d.building, d.ready = true, false
		}
		return nil, nil
	}
	// Build from a snapshot taken after d was registered: commits after it
	// wait on d.mu and are applied once the build is done.
	ix := hnsw.New(dim, s.opt.HNSW)
	var vecs []denseAdd
	var created time.Time
	err := s.view(func(tx *bolt.Tx) error {
		m, b, err := s.meta(tx, collection)
		if err != nil {
			return err
		}
		created = m.Created
		vecs, _, err = vecDiff(b, nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	if s.opt.beforeBuild != nil {
		s.opt.beforeBuild()
	}
	if err := addAll(context.Background(), ix, vecs); err != nil {
		return nil, err
	}
	s.log.Debug().Str("collection", collection).Int("vectors", len(vecs)).Msg("built dense index")
	d.ix, d.ready, d.stale, d.created = ix, true, false, created
	return ix, nil
}

// maxCatchUp is the most vectors a Shared store adds to a stale index
// under the file's lock (about 2ms each at 384 dimensions); more (another
// process ingested a folder) are added away from the lock, as a build is.
const maxCatchUp = 64

// catchUp brings the stale index d (d.mu held) in line with the stored
// vectors: another process's writes add and remove a few chunks, and
// adding those is far cheaper than building the graph again (tens of
// seconds for 20,000 vectors of 384 dimensions, with the file locked all
// the while). It reports false when the index must be built again: the
// collection was deleted and made again, or its dimension changed; or,
// with a limit above 0, when more than limit vectors are to be added
// (nothing is changed then).
func (s *Store) catchUp(collection string, d *denseIndex, limit int) (bool, error) {
	var add []denseAdd
	var removed []uint64
	same := false
	err := s.view(func(tx *bolt.Tx) error {
		m, b, err := s.meta(tx, collection)
		if err != nil {
			return err
		}
		if same = sameGraph(m, d.ix, d.created); !same {
			return nil
		}
		add, removed, err = vecDiff(b, d.ix)
		return err
	})
	if err != nil || !same || (limit > 0 && len(add) > limit) {
		return false, err
	}
	if err := applyDiff(context.Background(), d.ix, add, removed); err != nil {
		return false, err
	}
	s.log.Debug().Str("collection", collection).Int("added", len(add)).Int("removed", len(removed)).Msg("updated dense index")
	d.stale = false
	return true, nil
}

// sameGraph says whether ix, built for the collection made at created,
// is for the collection m describes: one deleted and made again (which
// reuses sequence numbers), or of another dimension, needs a new graph.
func sameGraph(m collMeta, ix *hnsw.Index, created time.Time) bool {
	return ix != nil && m.Created.Equal(created) && m.Dim == ix.Dim()
}

// vecDiff compares the collection's stored vectors (b, its bucket) with
// the keys of ix: the vectors ix lacks (every one when ix is nil), and
// the keys it holds that are no longer stored.
func vecDiff(b *bolt.Bucket, ix *hnsw.Index) (add []denseAdd, removed []uint64, err error) {
	have := map[uint64]bool{}
	if ix != nil {
		for _, k := range ix.Keys() {
			have[k] = true
		}
	}
	err = b.Bucket(bVecs).ForEach(func(k, v []byte) error {
		seq := binary.BigEndian.Uint64(k)
		if have[seq] {
			delete(have, seq)
		} else {
			add = append(add, denseAdd{seq: seq, vec: decodeVec(v)})
		}
		return nil
	})
	for seq := range have {
		removed = append(removed, seq)
	}
	return add, removed, err
}

// applyDiff removes from ix the keys removed and adds the vectors add
// (see vecDiff).
func applyDiff(ctx context.Context, ix *hnsw.Index, add []denseAdd, removed []uint64) error {
	for _, seq := range removed {
		ix.Delete(seq)
	}
	return addAll(ctx, ix, add)
}

// addAll adds vecs to ix, four at a time; it stops early when ctx ends
// (a Shared store closing) and says so.
func addAll(ctx context.Context, ix *hnsw.Index, vecs []denseAdd) error {
	var wg sync.WaitGroup
	next := make(chan denseAdd, 64)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range next {
				ix.Add(a.seq, a.vec)
			}
		}()
	}
	defer wg.Wait()
	defer close(next)
	for _, a := range vecs {
		select {
		case next <- a:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// denseSearch uses ix when given, else scores every vector exactly.
func (s *Store) denseSearch(b *bolt.Bucket, ix *hnsw.Index, q []float32, k int, filter map[string]string) ([]retrieval.Hit, error) {
	chunksB := b.Bucket(bChunks)
	if ix == nil {
		// Exact: score every vector (filters need the full ranking).
		qv := append([]float32(nil), q...)
		hnsw.Normalize(qv)
		cands := make([]scored, 0, readStats(b).chunks)
		var vec []float32 // one buffer: a process scores every vector per query (ExactDense)
		err := b.Bucket(bVecs).ForEach(func(key, v []byte) error {
			vec = decodeVecInto(vec, v)
			hnsw.Normalize(vec)
			cands = append(cands, scored{uint32(binary.BigEndian.Uint64(key)), hnsw.Dot(qv, vec)})
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(filter) == 0 {
			cands = topK(cands, k)
		} else {
			sort.Slice(cands, func(i, j int) bool { return better(cands[i], cands[j]) })
		}
		return loadHits(chunksB, cands, k, filter)
	}
	res := ix.Search(q, k+8, max(s.opt.EfSearch, k))
	cands := make([]scored, len(res))
	for i, r := range res {
		cands[i] = scored{uint32(r.Key), r.Score}
	}
	return loadHits(chunksB, cands, k, nil)
}
