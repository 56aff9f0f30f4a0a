// Package hnsw is an in-memory approximate nearest-neighbour index for
// dense vectors under cosine similarity: a hierarchical navigable small
// world graph (Malkov and Yashunin, 2018), written to the paper's
// algorithms: ef-bounded best-first layer search (Alg. 2), the neighbour
// selection heuristic with kept pruned connections (Alg. 4), and shrinking
// of over-full neighbour lists with the same heuristic.
//
// Inserts may run concurrently with each other and with searches:
//
//	ix := hnsw.New(384, nil)
//	ix.Add(key, vec)                // any goroutine
//	res := ix.Search(query, 10, 64) // k=10, ef=64
//
// Vectors are normalised on insert; Distance is 1 - cosine similarity.
// Deleted keys are tombstoned: still traversed, never returned.
package hnsw

import (
	"container/heap"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
)

// Options tune the graph. Zero values take the defaults.
type Options struct {
	// M is the number of links per node on upper layers (default 16);
	// layer 0 keeps 2*M.
	M int
	// EfConstruction is the candidate list size while inserting (default 200).
	EfConstruction int
	// Seed makes level assignment reproducible (default 1).
	Seed uint64
}

type node struct {
	key   uint64
	vec   []float32
	level int
	mu    sync.Mutex // serialises writers of links
	// links[l] is the neighbour list on layer l: an immutable slice,
	// replaced whole, so searches read it without locking.
	links   []atomic.Pointer[[]uint32]
	deleted atomic.Bool
}

// Index is an HNSW graph. It is safe for concurrent use.
type Index struct {
	dim    int
	m, m0  int
	efc    int
	ml     float64
	mu     sync.RWMutex // guards nodes (the slice) and byKey
	nodes  []*node
	byKey  map[uint64]uint32
	rngMu  sync.Mutex
	rng    *rand.Rand
	topMu  sync.Mutex // serialises entry-point changes
	entry  atomic.Int64
	maxLvl atomic.Int64
	live   atomic.Int64
	pool   sync.Pool
}

// New returns an empty index for vectors of dim dimensions.
func New(dim int, o *Options) *Index {
	var opt Options
	if o != nil {
		opt = *o
	}
	if opt.M <= 1 {
		opt.M = 16
	}
	if opt.EfConstruction <= 0 {
		opt.EfConstruction = 200
	}
	if opt.Seed == 0 {
		opt.Seed = 1
	}
	ix := &Index{dim: dim, m: opt.M, m0: 2 * opt.M, efc: opt.EfConstruction, ml: 1 / math.Log(float64(opt.M)),
		byKey: map[uint64]uint32{}, rng: rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x9e3779b97f4a7c15))}
	ix.entry.Store(-1)
	ix.maxLvl.Store(-1)
	return ix
}

// Dim is the vector size.
func (ix *Index) Dim() int { return ix.dim }

// Len is the number of live (not deleted) vectors.
func (ix *Index) Len() int { return int(ix.live.Load()) }

// Normalize scales v to unit length in place (a zero vector stays zero).
func Normalize(v []float32) {
	var s float32
	for _, x := range v {
		s += x * x
	}
	if s == 0 {
		return
	}
	inv := float32(1 / math.Sqrt(float64(s)))
	for i := range v {
		v[i] *= inv
	}
}

// Dot is the inner product of two equal-length vectors.
func Dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}

func (ix *Index) dist(q []float32, id uint32) float32 {
	return 1 - Dot(q, ix.nodes[id].vec)
}

func (ix *Index) randomLevel() int {
	ix.rngMu.Lock()
	u := ix.rng.Float64()
	ix.rngMu.Unlock()
	if u == 0 {
		u = 1e-12
	}
	return int(-math.Log(u) * ix.ml)
}

// Add inserts vec under key. Adding a key again replaces its vector (the
// old node is tombstoned). vec is copied.
func (ix *Index) Add(key uint64, vec []float32) {
	if len(vec) != ix.dim {
		panic("hnsw: vector dimension mismatch")
	}
	v := append([]float32(nil), vec...)
	Normalize(v)
	lvl := ix.randomLevel()
	n := &node{key: key, vec: v, level: lvl, links: make([]atomic.Pointer[[]uint32], lvl+1)}
	ix.mu.Lock()
	if old, ok := ix.byKey[key]; ok {
		if !ix.nodes[old].deleted.Swap(true) {
			ix.live.Add(-1)
		}
	}
	id := uint32(len(ix.nodes))
	ix.nodes = append(ix.nodes, n)
	ix.byKey[key] = id
	ix.mu.Unlock()
	ix.live.Add(1)

	ix.mu.RLock()
	defer ix.mu.RUnlock()
	// The first node becomes the entry point.
	ix.topMu.Lock()
	if ix.entry.Load() < 0 {
		ix.entry.Store(int64(id))
		ix.maxLvl.Store(int64(lvl))
		ix.topMu.Unlock()
		return
	}
	ix.topMu.Unlock()
	ep := uint32(ix.entry.Load())
	top := int(ix.maxLvl.Load())
	epDist := ix.dist(v, ep)
	for l := top; l > lvl; l-- {
		ep, epDist = ix.greedy(v, ep, epDist, l)
	}
	s := ix.getSearcher()
	defer ix.pool.Put(s)
	eps := []cand{{ep, epDist}}
	for l := min(lvl, top); l >= 0; l-- {
		w := ix.searchLayer(s, v, eps, ix.efc, l)
		mmax := ix.m
		if l == 0 {
			mmax = ix.m0
		}
		nb := ix.selectNeighbors(w, ix.m)
		ids := make([]uint32, len(nb))
		for i, c := range nb {
			ids[i] = c.id
		}
		n.mu.Lock()
		n.links[l].Store(&ids)
		n.mu.Unlock()
		for _, c := range nb {
			ix.connect(c.id, id, c.d, l, mmax)
		}
		eps = w
	}
	if lvl > top {
		ix.topMu.Lock()
		if int64(lvl) > ix.maxLvl.Load() {
			ix.maxLvl.Store(int64(lvl))
			ix.entry.Store(int64(id))
		}
		ix.topMu.Unlock()
	}
}

// connect adds a link from a to b on layer l, shrinking a's list with the
// selection heuristic when it exceeds mmax.
func (ix *Index) connect(a, b uint32, dab float32, l, mmax int) {
	na := ix.nodes[a]
	na.mu.Lock()
	defer na.mu.Unlock()
	if l >= len(na.links) {
		return
	}
	var cur []uint32
	if p := na.links[l].Load(); p != nil {
		cur = *p
	}
	for _, x := range cur {
		if x == b {
			return
		}
	}
	if len(cur) < mmax {
		next := make([]uint32, len(cur)+1, mmax)
		copy(next, cur)
		next[len(cur)] = b
		na.links[l].Store(&next)
		return
	}
	cs := make([]cand, 0, len(cur)+1)
	cs = append(cs, cand{b, dab})
	for _, x := range cur {
		cs = append(cs, cand{x, 1 - Dot(na.vec, ix.nodes[x].vec)})
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].d < cs[j].d })
	sel := ix.selectNeighbors(cs, mmax)
	out := make([]uint32, len(sel))
	for i, c := range sel {
		out[i] = c.id
	}
	na.links[l].Store(&out)
}

// selectNeighbors is Alg. 4 with keepPrunedConnections: from candidates
// sorted by distance to the base, keep one that is closer to the base than
// to every kept neighbour, then fill up with the closest pruned ones.
func (ix *Index) selectNeighbors(cs []cand, m int) []cand {
	if len(cs) <= m {
		return cs
	}
	out := make([]cand, 0, m)
	var pruned []cand
	for _, c := range cs {
		if len(out) >= m {
			break
		}
		good := true
		cv := ix.nodes[c.id].vec
		for _, r := range out {
			if 1-Dot(cv, ix.nodes[r.id].vec) < c.d {
				good = false
				break
			}
		}
		if good {
			out = append(out, c)
		} else {
			pruned = append(pruned, c)
		}
	}
	for _, c := range pruned {
		if len(out) >= m {
			break
		}
		out = append(out, c)
	}
	return out
}

// links returns id's neighbours on layer l (an immutable slice).
func (ix *Index) links(id uint32, l int) []uint32 {
	n := ix.nodes[id]
	if l >= len(n.links) {
		return nil
	}
	if p := n.links[l].Load(); p != nil {
		return *p
	}
	return nil
}

// greedy walks layer l from ep to a local minimum of the distance to q.
func (ix *Index) greedy(q []float32, ep uint32, d float32, l int) (uint32, float32) {
	for changed := true; changed; {
		changed = false
		for _, nb := range ix.links(ep, l) {
			if nd := ix.dist(q, nb); nd < d {
				ep, d, changed = nb, nd, true
			}
		}
	}
	return ep, d
}

type cand struct {
	id uint32
	d  float32
}

// candHeap is a binary heap of candidates: a min-heap by distance when
// max is false, a max-heap when true. Typed, so pushes do not allocate.
type candHeap struct {
	a   []cand
	max bool
}

func (h *candHeap) Len() int { return len(h.a) }

func (h *candHeap) less(i, j int) bool {
	if h.max {
		return h.a[i].d > h.a[j].d
	}
	return h.a[i].d < h.a[j].d
}

func (h *candHeap) push(c cand) {
	h.a = append(h.a, c)
	i := len(h.a) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			break
		}
		h.a[i], h.a[p] = h.a[p], h.a[i]
		i = p
	}
}

func (h *candHeap) pop() cand {
	top := h.a[0]
	n := len(h.a) - 1
	h.a[0] = h.a[n]
	h.a = h.a[:n]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && h.less(l, m) {
			m = l
		}
		if r < n && h.less(r, m) {
			m = r
		}
		if m == i {
			return top
		}
		h.a[i], h.a[m] = h.a[m], h.a[i]
		i = m
	}
}

// searcher holds reusable per-search state: a visited set stamped with a
// generation so it needs no clearing.
type searcher struct {
	seen []uint32
	gen  uint32
	cand candHeap
	res  candHeap
}

func (ix *Index) getSearcher() *searcher {
	s, _ := ix.pool.Get().(*searcher)
	if s == nil {
		s = &searcher{res: candHeap{max: true}}
	}
	if n := len(ix.nodes); len(s.seen) < n {
		s.seen = make([]uint32, n+n/4+64)
		s.gen = 0
	}
	return s
}

// next starts a new visited set.
func (s *searcher) next() {
	s.gen++
	if s.gen == 0 {
		clear(s.seen)
		s.gen = 1
	}
}

// searchLayer is Alg. 2: best-first search of layer l from eps keeping the
// ef closest nodes found; it stops when the closest unexpanded candidate is
// farther than the farthest of those ef. Returns them sorted by distance.
func (ix *Index) searchLayer(s *searcher, q []float32, eps []cand, ef, l int) []cand {
	s.next()
	s.cand.a = s.cand.a[:0]
	s.res.a = s.res.a[:0]
	for _, e := range eps {
		if int(e.id) < len(s.seen) && s.seen[e.id] != s.gen {
			s.seen[e.id] = s.gen
			s.cand.push(e)
			s.res.push(e)
			if s.res.Len() > ef {
				s.res.pop()
			}
		}
	}
	for s.cand.Len() > 0 {
		c := s.cand.pop()
		if s.res.Len() >= ef && c.d > s.res.a[0].d {
			break
		}
		for _, nb := range ix.links(c.id, l) {
			if int(nb) >= len(s.seen) || s.seen[nb] == s.gen {
				continue
			}
			s.seen[nb] = s.gen
			d := ix.dist(q, nb)
			if s.res.Len() < ef || d < s.res.a[0].d {
				s.cand.push(cand{nb, d})
				s.res.push(cand{nb, d})
				if s.res.Len() > ef {
					s.res.pop()
				}
			}
		}
	}
	out := make([]cand, len(s.res.a))
	copy(out, s.res.a)
	sort.Slice(out, func(i, j int) bool { return out[i].d < out[j].d })
	return out
}

// Result is one neighbour: its key and cosine similarity to the query.
type Result struct {
	Key   uint64
	Score float32
}

// Search returns up to k live keys nearest to q, best first, searching
// layer 0 with a candidate list of max(ef, k). Larger ef: better recall,
// slower.
func (ix *Index) Search(q []float32, k, ef int) []Result {
	if len(q) != ix.dim || k <= 0 {
		return nil
	}
	qv := append([]float32(nil), q...)
	Normalize(qv)
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	e := ix.entry.Load()
	if e < 0 {
		return nil
	}
	ep := uint32(e)
	d := ix.dist(qv, ep)
	for l := int(ix.maxLvl.Load()); l > 0; l-- {
		ep, d = ix.greedy(qv, ep, d, l)
	}
	ef = max(ef, k)
	// Tombstones take places in the candidate list: widen it by their share.
	if dead := len(ix.nodes) - ix.Len(); dead > 0 && ix.Len() > 0 {
		ef += ef * dead / ix.Len()
	}
	s := ix.getSearcher()
	defer ix.pool.Put(s)
	w := ix.searchLayer(s, qv, []cand{{ep, d}}, ef, 0)
	out := make([]Result, 0, k)
	for _, c := range w {
		n := ix.nodes[c.id]
		if n.deleted.Load() {
			continue
		}
		out = append(out, Result{Key: n.key, Score: 1 - c.d})
		if len(out) == k {
			break
		}
	}
	return out
}

// Keys returns the keys of the live vectors, in no order.
func (ix *Index) Keys() []uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	keys := make([]uint64, 0, len(ix.byKey))
	for k := range ix.byKey {
		keys = append(keys, k)
	}
	return keys
}

// Delete tombstones key; it reports whether key was live.
func (ix *Index) Delete(key uint64) bool {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	id, ok := ix.byKey[key]
	if !ok {
		return false
	}
	delete(ix.byKey, key)
	if ix.nodes[id].deleted.Swap(true) {
		return false
	}
	ix.live.Add(-1)
	return true
}

// Exact returns the k nearest of vecs to q by brute force (cosine), for
// small sets and for measuring recall.
func Exact(q []float32, keys []uint64, vecs [][]float32, k int) []Result {
	qv := append([]float32(nil), q...)
	Normalize(qv)
	h := make(minResHeap, 0, k+1)
	for i, v := range vecs {
		s := Dot(qv, v)
		if len(h) < k {
			heap.Push(&h, Result{keys[i], s})
		} else if s > h[0].Score {
			h[0] = Result{keys[i], s}
			heap.Fix(&h, 0)
		}
	}
	out := make([]Result, len(h))
	copy(out, h)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Score != out[j].Score {
			return out[i].Score > out[j].Score
		}
		return out[i].Key < out[j].Key
	})
	return out
}

type minResHeap []Result

func (h minResHeap) Len() int           { return len(h) }
func (h minResHeap) Less(i, j int) bool { return h[i].Score < h[j].Score }
func (h minResHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *minResHeap) Push(x any)        { *h = append(*h, x.(Result)) }
func (h *minResHeap) Pop() any          { o := *h; x := o[len(o)-1]; *h = o[:len(o)-1]; return x }
