package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/core"
)

// BenchmarkResultsAppend measures one durable record: marshal, write,
// fsync. BenchmarkResultsAppendParallel shows the group commit: appends
// from several goroutines share fsyncs.
func BenchmarkResultsAppend(b *testing.B) {
	l, _, _, err := openResults(filepath.Join(b.TempDir(), ResultsFile))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	rec := Record{Item: "game24/901", Strategy: "self-consistency", Budget: 40, Params: core.Params{"k": "40"},
		Status: StatusCorrect, Answer: "(5 * 4) + (10 - 6)", Stopped: core.StopDone,
		Usage: core.Usage{LLMCalls: 40, Requests: 40, PromptTokens: 4000, CompletionTokens: 2400}, TraceID: "0123456789abcdef",
		Samples: 40, SamplesCorrect: 12, Time: time.Now()}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec.Key = fmt.Sprintf("game24/%d|self-consistency|40", i)
		if err := l.Append(rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadRecords reads a results file of 20,000 records (a full
// Game of 24 sweep of 5 strategies × 3 budgets).
func BenchmarkReadRecords(b *testing.B) {
	path := filepath.Join(b.TempDir(), ResultsFile)
	var buf bytes.Buffer
	for i := 0; i < 20000; i++ {
		r := Record{Key: fmt.Sprint(i), Item: fmt.Sprint(i / 15), Index: i / 15, Strategy: "mcts", Budget: int64(i % 3), Status: StatusWrong,
			Answer: "(5 * 4) + (10 - 6)", Usage: core.Usage{LLMCalls: 40, PromptTokens: 4000, CompletionTokens: 2400}, TraceID: "0123456789abcdef"}
		line, _ := json.Marshal(r)
		buf.Write(append(line, '\n'))
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		recs, _, err := ReadRecords(path)
		if err != nil || len(recs) != 20000 {
			b.Fatal(err, len(recs))
		}
	}
}

func BenchmarkResultsAppendParallel(b *testing.B) {
	l, _, _, err := openResults(filepath.Join(b.TempDir(), ResultsFile))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if err := l.Append(Record{Key: fmt.Sprint(i), Item: "x", Strategy: "cot", Budget: 1, Status: StatusWrong}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
