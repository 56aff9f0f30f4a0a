package plugins

import (
	"context"
	"encoding/json"
	"sort"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/sdk"
)

// reportPercentiles adds p50 and p99 of d (in µs) to the benchmark.
func reportPercentiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(d[len(d)*99/100].Nanoseconds())/1e3, "p99-µs")
}

// BenchmarkToolCall is the round trip of a trivial tool call through a
// running plugin subprocess (gRPC over a Unix socket with mTLS).
func BenchmarkToolCall(b *testing.B) {
	dir := b.TempDir()
	installMode(b, dir, "echo", sdk.KindTool, "tool")
	m := newTestManager(b, Options{Dirs: []string{dir}, HealthInterval: -1})
	tool := m.Tools()[0]
	ctx := context.Background()
	args := json.RawMessage(`{"text":"hi"}`)
	if _, err := tool.Call(ctx, args); err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		if _, err := tool.Call(ctx, args); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	reportPercentiles(b, lat)
}

// BenchmarkEvaluatorCall is the round trip of an evaluator call (a
// two-node path) through a running plugin subprocess.
func BenchmarkEvaluatorCall(b *testing.B) {
	dir := b.TempDir()
	installMode(b, dir, "half", sdk.KindEvaluator, "evaluator")
	m := newTestManager(b, Options{Dirs: []string{dir}, HealthInterval: -1})
	reg := core.NewRegistry()
	m.Register(reg)
	ev, err := reg.Evaluator("half", nil)
	if err != nil {
		b.Fatal(err)
	}
	req := core.EvalRequest{Task: core.Task{Problem: "What is 3 + 4?"}, Path: []core.Node{
		{ID: 0, Kind: core.KindProblem, Content: "What is 3 + 4?"},
		{ID: 1, Kind: core.KindAnswer, Content: "3 + 4 = 7. The answer is 7.", Answer: "7", Terminal: true, Depth: 1}}}
	ctx := context.Background()
	if _, err := ev.Evaluate(ctx, req); err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		if _, err := ev.Evaluate(ctx, req); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	reportPercentiles(b, lat)
}

// BenchmarkStartToReady is a plugin's start: checksum, exec, handshake,
// mTLS connection and Describe, until the first call could be made.
func BenchmarkStartToReady(b *testing.B) {
	dir := b.TempDir()
	man := installMode(b, dir, "echo", sdk.KindTool, "tool")
	opts := New(&Options{HealthInterval: -1}).opts
	ctx := context.Background()
	var lat []time.Duration
	for b.Loop() {
		p := newProcess(man, &opts)
		t0 := time.Now()
		if _, err := p.Remote(ctx); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		b.StopTimer()
		p.mu.Lock()
		p.forceKillLocked()
		p.mu.Unlock()
		b.StartTimer()
	}
	reportPercentiles(b, lat)
}
