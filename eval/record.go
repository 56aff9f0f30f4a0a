package eval

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ponder-rlm/ponder/core"
)

// Status is how one (problem, strategy, budget) ended.
type Status string

// Statuses. An error is neither right nor wrong: the LLM or the grader
// failed, and reports count it apart.
const (
	StatusCorrect Status = "correct"
	StatusWrong   Status = "wrong"
	StatusError   Status = "error"
)

// Record is one line of results.jsonl: one problem solved by one strategy
// at one budget.
type Record struct {
	// Key is item|strategy|budget; a later record with the same key
	// replaces an earlier one (--retry-errors).
	Key      string      `json:"key"`
	Item     string      `json:"item"`
	Index    int         `json:"index"` // position in the dataset
	Strategy string      `json:"strategy"`
	Budget   int64       `json:"budget"` // LLM calls allowed
	Params   core.Params `json:"params,omitempty"`
	Status   Status      `json:"status"`
	Answer   string      `json:"answer"`
	Truth    string      `json:"truth,omitempty"`
	// Detail says why an answer is wrong (want 18, got 17).
	Detail  string          `json:"detail,omitempty"`
	Error   string          `json:"error,omitempty"`
	Stopped core.StopReason `json:"stopped"`
	Usage   core.Usage      `json:"usage"`
	// LLMErrors counts the search's LLM calls that failed (after the
	// client's retries), which usage does not count. A search that lost
	// more calls than came back is an error, not a graded answer.
	LLMErrors int `json:"llm_errors,omitempty"`
	// Warnings are the search's own (core.Result.Warnings): what failed
	// without stopping it (evaluations that left nodes unscored, LLM
	// requests it went on without), which the answer may be the worse
	// for, and why a search that ended by itself found no answer.
	Warnings []string `json:"warnings,omitempty"`
	// Verified is the task pack's own check of the answer
	// (core.Result.Verified): absent when the pack cannot check it (no
	// answer, or GSM8K and MATH without --oracle). The grade is Status;
	// this is what the search's user would have been told.
	Verified *bool  `json:"verified,omitempty"`
	TraceID  string `json:"trace_id,omitempty"`
	// Samples and SamplesCorrect count the complete answers in the search
	// (every terminal node) and how many of them grade correct: pass@k
	// is estimated from them.
	Samples        int       `json:"samples"`
	SamplesCorrect int       `json:"samples_correct"`
	Time           time.Time `json:"time"`
}

// SearchWarnings returns warnings without the task pack's rejection of the
// answer: an eval grades every answer itself (Status, Detail, Verified),
// and a wrong answer is no failure of the search. Kept, every wrong Game of
// 24 answer would count as a search that went on past failures.
func SearchWarnings(ws []string) []string {
	var out []string
	for _, w := range ws {
		if !strings.HasPrefix(w, core.WrongAnswerWarning) {
			out = append(out, w)
		}
	}
	return out
}

// RecordKey is the key of a record.
func RecordKey(item, strategy string, budget int64) string {
	return item + "|" + strategy + "|" + strconv.FormatInt(budget, 10)
}

// ResultsFile and ManifestFile are the names of a run directory's files;
// traces go under TracesDir.
const (
	ResultsFile  = "results.jsonl"
	ManifestFile = "manifest.json"
	TracesDir    = "traces"
)

// ReadRecords reads a results file: the last record of each key, ordered
// by dataset position, strategy and budget. Lines that are not records (a
// line cut short by a crash) are reported in bad and skipped.
func ReadRecords(path string) (records []Record, bad []LineError, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read results: %w", err)
	}
	defer f.Close()
	return readRecords(f, nil)
}

// readRecords reads records as ReadRecords does; named, when not nil, gets
// the trace id of every record line, replaced ones included.
func readRecords(r io.Reader, named map[string]bool) ([]Record, []LineError, error) {
	byKey := map[string]int{}
	var out []Record
	var bad []LineError
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(b, &rec); err != nil {
			bad = append(bad, LineError{Line: line, Err: fmt.Errorf("not a record: %v", err)})
			continue
		}
		if err := rec.check(); err != nil {
			bad = append(bad, LineError{Line: line, Err: fmt.Errorf("not a record: %v", err)})
			continue
		}
		if rec.Key == "" {
			rec.Key = RecordKey(rec.Item, rec.Strategy, rec.Budget)
		}
		if named != nil && rec.TraceID != "" {
			named[rec.TraceID] = true
		}
		if i, ok := byKey[rec.Key]; ok {
			out[i] = rec
			continue
		}
		byKey[rec.Key] = len(out)
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, bad, fmt.Errorf("read results: line %d: %w", line+1, err)
	}
	SortRecords(out)
	return out, bad, nil
}

// check reports what a decoded line lacks to be a record: a JSON object
// such as {} or {"status": "ok"} decodes, but is not one.
func (r *Record) check() error {
	switch {
	case r.Item == "":
		return errors.New("no item")
	case r.Strategy == "":
		return errors.New("no strategy")
	case r.Budget < 1:
		return fmt.Errorf("budget %d, want at least 1", r.Budget)
	case r.Status != StatusCorrect && r.Status != StatusWrong && r.Status != StatusError:
		return fmt.Errorf("status %q, want correct, wrong or error", r.Status)
	}
	return nil
}

// SortRecords orders records by dataset position, strategy and budget.
func SortRecords(rs []Record) {
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.Index != b.Index {
			return a.Index < b.Index
		}
		if a.Item != b.Item {
			return a.Item < b.Item
		}
		if a.Strategy != b.Strategy {
			return a.Strategy < b.Strategy
		}
		return a.Budget < b.Budget
	})
}

// resultsLog appends records to results.jsonl, one line each, synced to
// disk before Append returns: a record that was appended survives a crash.
// Concurrent appends share fsyncs (group commit): one sync covers every
// line written before it started.
type resultsLog struct {
	mu      sync.Mutex // guards f, size and written
	f       *os.File
	size    int64 // bytes of whole lines in f
	written int64

	syncMu sync.Mutex // serialises syncs; guards synced
	synced int64
}

// openResults opens (or creates) the results file for appending and
// returns the records already there and the trace ids any of its lines
// names. A last line cut short by a crash is cut off, so the next record
// starts on its own line.
func openResults(path string) (*resultsLog, []Record, map[string]bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open results: %w", err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, nil, nil, fmt.Errorf("read results: %w", err)
	}
	if n := len(b); n > 0 && b[n-1] != '\n' {
		keep := bytes.LastIndexByte(b, '\n') + 1
		if err := f.Truncate(int64(keep)); err != nil {
			f.Close()
			return nil, nil, nil, fmt.Errorf("cut the unfinished last line of %s: %w", path, err)
		}
		b = b[:keep]
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, nil, nil, err
	}
	named := map[string]bool{}
	recs, _, err := readRecords(bytes.NewReader(b), named)
	if err != nil {
		f.Close()
		return nil, nil, nil, err
	}
	return &resultsLog{f: f, size: int64(len(b))}, recs, named, nil
}

var errClosed = errors.New("results file is closed")

// Append writes rec as one line and syncs it to disk.
func (l *resultsLog) Append(rec Record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode record %s: %w", rec.Key, err)
	}
	l.mu.Lock()
	if l.f == nil {
		l.mu.Unlock()
		return errClosed
	}
	if n, err := l.f.Write(append(b, '\n')); err != nil {
		if n > 0 {
			// A full disk took part of the line: cut it off, or the next
			// record (another search's, or the next run's) would be
			// appended to it and lost with it.
			if terr := l.f.Truncate(l.size); terr == nil {
				_, _ = l.f.Seek(l.size, io.SeekStart)
			}
		}
		l.mu.Unlock()
		return fmt.Errorf("append record %s: %w; the records before it are kept: make room and run the same command again to continue",
			rec.Key, err)
	}
	l.size += int64(len(b) + 1)
	l.written++
	mine := l.written
	l.mu.Unlock()

	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.synced >= mine {
		return nil // a sync that started after our write covered it
	}
	l.mu.Lock()
	f, upTo := l.f, l.written
	l.mu.Unlock()
	if f == nil {
		return errClosed
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync results: %w; run the same command again once the disk is fixed: what was synced before is kept", err)
	}
	l.synced = upTo
	return nil
}

func (l *resultsLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
