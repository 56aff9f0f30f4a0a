package hnsw

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// cpuPerQuery runs search over qs on one locked OS thread and returns the
// thread's CPU time per query: a cost that other processes on a shared
// machine do not inflate. 2/cpuPerQuery estimates QPS on 2 idle cores.
func cpuPerQuery(qs [][]float32, reps int, search func(q []float32)) time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var a, b unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_THREAD, &a)
	for range reps {
		for _, q := range qs {
			search(q)
		}
	}
	_ = unix.Getrusage(unix.RUSAGE_THREAD, &b)
	cpu := time.Duration(b.Utime.Nano() + b.Stime.Nano() - a.Utime.Nano() - a.Stime.Nano())
	return cpu / time.Duration(reps*len(qs))
}

// mixture returns n vectors of dim dimensions drawn from a Gaussian mixture
// of c clusters (the shape of real embeddings: topical clumps), and q
// queries from the same mixture.
func mixture(seed uint64, n, q, dim, c int) (data, queries [][]float32) {
	r := rand.New(rand.NewPCG(seed, seed+1))
	centers := make([][]float32, c)
	for i := range centers {
		centers[i] = make([]float32, dim)
		for j := range centers[i] {
			centers[i][j] = float32(r.NormFloat64())
		}
	}
	draw := func() []float32 {
		ctr := centers[r.IntN(c)]
		v := make([]float32, dim)
		for j := range v {
			v[j] = ctr[j] + 0.6*float32(r.NormFloat64())
		}
		return v
	}
	for range n {
		data = append(data, draw())
	}
	for range q {
		queries = append(queries, draw())
	}
	return data, queries
}

func build(data [][]float32, o *Options) *Index {
	ix := New(len(data[0]), o)
	var wg sync.WaitGroup
	next := make(chan int)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				ix.Add(uint64(i), data[i])
			}
		}()
	}
	for i := range data {
		next <- i
	}
	close(next)
	wg.Wait()
	return ix
}

func normalised(data [][]float32) ([]uint64, [][]float32) {
	keys := make([]uint64, len(data))
	vecs := make([][]float32, len(data))
	for i, v := range data {
		keys[i] = uint64(i)
		vecs[i] = append([]float32(nil), v...)
		Normalize(vecs[i])
	}
	return keys, vecs
}

func recall(ix *Index, keys []uint64, vecs, queries [][]float32, k, ef int) float64 {
	hit, total := 0, 0
	for _, q := range queries {
		want := map[uint64]bool{}
		for _, r := range Exact(q, keys, vecs, k) {
			want[r.Key] = true
		}
		for _, r := range ix.Search(q, k, ef) {
			if want[r.Key] {
				hit++
			}
		}
		total += k
	}
	return float64(hit) / float64(total)
}

func TestRecallAgainstExact(t *testing.T) {
	t.Parallel()
	data, queries := mixture(7, 3000, 100, 32, 20)
	ix := build(data, nil)
	keys, vecs := normalised(data)
	if got := recall(ix, keys, vecs, queries, 10, 64); got < 0.95 {
		t.Fatalf("recall@10 at ef=64 = %.3f, want >= 0.95", got)
	}
	// Every stored vector finds itself first.
	miss := 0
	for i := 0; i < len(data); i += 30 {
		r := ix.Search(data[i], 1, 32)
		if len(r) == 0 || r[0].Key != uint64(i) {
			miss++
		}
	}
	if miss > 1 {
		t.Fatalf("%d of 100 stored vectors did not find themselves", miss)
	}
}

func TestDeleteAndReplace(t *testing.T) {
	t.Parallel()
	data, _ := mixture(3, 500, 0, 16, 5)
	ix := build(data, nil)
	if !ix.Delete(10) || ix.Delete(10) {
		t.Fatal("Delete(10) should succeed once")
	}
	for _, r := range ix.Search(data[10], 20, 64) {
		if r.Key == 10 {
			t.Fatal("deleted key returned")
		}
	}
	ix.Add(11, data[12]) // replace 11's vector with 12's
	res := ix.Search(data[12], 2, 64)
	if len(res) != 2 || (res[0].Key != 11 && res[0].Key != 12) || ix.Len() != 499 {
		t.Fatalf("after replace: %v, len %d", res, ix.Len())
	}
	if got := ix.Search(make([]float32, 3), 1, 1); got != nil {
		t.Fatalf("wrong-dimension query returned %v", got)
	}
}

func TestEmptyIndex(t *testing.T) {
	ix := New(4, nil)
	if r := ix.Search([]float32{1, 0, 0, 0}, 3, 10); len(r) != 0 {
		t.Fatalf("empty index returned %v", r)
	}
}

var (
	benchOnce         sync.Once
	benchIx           *Index
	benchKeys         []uint64
	benchVecs, benchQ [][]float32
	benchBuild        time.Duration
	benchTruth        [][]uint64
)

// BenchmarkSearch100k measures queries per second on 100k x 384 vectors of
// a 100-cluster Gaussian mixture at several ef, and reports recall@10
// against exact search with each. Building the index takes a minute or two.
func BenchmarkSearch100k(b *testing.B) {
	benchOnce.Do(func() {
		data, q := mixture(42, 100_000, 200, 384, 100)
		start := time.Now()
		benchIx = build(data, nil)
		benchBuild = time.Since(start)
		benchKeys, benchVecs = normalised(data)
		benchQ = q
		for _, qv := range q {
			var ids []uint64
			for _, r := range Exact(qv, benchKeys, benchVecs, 10) {
				ids = append(ids, r.Key)
			}
			benchTruth = append(benchTruth, ids)
		}
	})
	b.Logf("built 100k x 384 in %s", benchBuild)
	for _, ef := range []int{16, 32, 64, 128} {
		b.Run(fmt.Sprintf("ef=%d", ef), func(b *testing.B) {
			hit := 0
			for qi, qv := range benchQ {
				want := map[uint64]bool{}
				for _, k := range benchTruth[qi] {
					want[k] = true
				}
				for _, r := range benchIx.Search(qv, 10, ef) {
					if want[r.Key] {
						hit++
					}
				}
			}
			rec := float64(hit) / float64(10*len(benchQ))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					benchIx.Search(benchQ[i%len(benchQ)], 10, ef)
					i++
				}
			})
			b.ReportMetric(rec, "recall@10")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "qps")
			b.StopTimer()
			cpu := cpuPerQuery(benchQ, 3, func(q []float32) { benchIx.Search(q, 10, ef) })
			b.ReportMetric(float64(cpu.Microseconds()), "cpu-us/query")
			b.ReportMetric(2/cpu.Seconds(), "qps-2core-est")
		})
	}
	b.Run("exact", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				Exact(benchQ[i%len(benchQ)], benchKeys, benchVecs, 10)
				i++
			}
		})
		b.ReportMetric(1, "recall@10")
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "qps")
		b.StopTimer()
		cpu := cpuPerQuery(benchQ[:20], 1, func(q []float32) { Exact(q, benchKeys, benchVecs, 10) })
		b.ReportMetric(float64(cpu.Microseconds()), "cpu-us/query")
		b.ReportMetric(2/cpu.Seconds(), "qps-2core-est")
	})
}
