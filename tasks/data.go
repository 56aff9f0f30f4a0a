package tasks

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Item is one benchmark problem.
type Item struct {
	ID       string `json:"id"`
	Pack     string `json:"pack"`
	Problem  string `json:"problem"`
	Truth    string `json:"truth,omitempty"`    // reference final answer
	Solution string `json:"solution,omitempty"` // reference worked solution
	// Extra holds dataset-specific fields (HumanEval's test and entry point,
	// MATH's subject and level).
	Extra map[string]string `json:"extra,omitempty"`
}

// LineError reports a dataset line that was skipped.
type LineError struct {
	Line int
	Err  error
}

func (e LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// Dataset names the public benchmark files in ../shared/data.
var datasetFiles = map[string]string{
	"gsm8k":     "gsm8k-test.jsonl",
	"math500":   "math500.jsonl",
	"game24":    "game24.csv",
	"humaneval": "humaneval.jsonl",
}

// DatasetFile returns the file of a named dataset under dataDir.
func DatasetFile(dataDir, name string) (string, bool) {
	f, ok := datasetFiles[name]
	if !ok {
		return "", false
	}
	return filepath.Join(dataDir, f), true
}

// FindDataDir returns the first of the usual places that holds the public
// benchmark files: $PONDER_DATA_SETS, ../shared/data, ../../shared/data, ...
// from the working directory upwards.
func FindDataDir() (string, error) {
	if d := os.Getenv("PONDER_DATA_SETS"); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		cand := filepath.Join(dir, "..", "shared", "data")
		if _, err := os.Stat(filepath.Join(cand, "gsm8k-test.jsonl")); err == nil {
			return filepath.Clean(cand), nil
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	return "", errors.New("benchmark data not found: set PONDER_DATA_SETS to the folder holding gsm8k-test.jsonl")
}

// LoadDataset reads a named dataset from dataDir. Lines that cannot be read
// are skipped and reported in skipped.
func LoadDataset(dataDir, name string) (items []Item, skipped []LineError, err error) {
	path, ok := DatasetFile(dataDir, name)
	if !ok {
		return nil, nil, fmt.Errorf("unknown dataset %q (known: gsm8k, math500, game24, humaneval)", name)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open dataset %s: %w", name, err)
	}
	defer f.Close()
	return ReadDataset(name, f)
}

// ReadDataset reads the named dataset's file format (see DatasetFile) from
// r: for a caller that also hashes what it reads.
func ReadDataset(name string, r io.Reader) (items []Item, skipped []LineError, err error) {
	f := r
	switch name {
	case "gsm8k":
		return readJSONL(f, gsm8kItem)
	case "math500":
		return readJSONL(f, math500Item)
	case "humaneval":
		return readJSONL(f, humanEvalItem)
	case "game24":
		return readGame24(f)
	}
	return nil, nil, fmt.Errorf("unknown dataset %q (known: gsm8k, math500, game24, humaneval)", name)
}

func readJSONL(r io.Reader, conv func(map[string]any, int) (Item, error)) ([]Item, []LineError, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var items []Item
	var skipped []LineError
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(text), &m); err != nil {
			skipped = append(skipped, LineError{line, fmt.Errorf("bad JSON: %v", err)})
			continue
		}
		it, err := conv(m, line)
		if err != nil {
			skipped = append(skipped, LineError{line, err})
			continue
		}
		items = append(items, it)
	}
	if err := sc.Err(); err != nil {
		return items, skipped, fmt.Errorf("read dataset: %w", err)
	}
	return items, skipped, nil
}

func str(m map[string]any, key string) (string, error) {
	v, ok := m[key].(string)
	if !ok || v == "" {
		return "", fmt.Errorf("missing field %q", key)
	}
	return v, nil
}

func gsm8kItem(m map[string]any, line int) (Item, error) {
	q, err := str(m, "question")
	if err != nil {
		return Item{}, err
	}
	a, err := str(m, "answer")
	if err != nil {
		return Item{}, err
	}
	i := strings.LastIndex(a, "####")
	if i < 0 {
		return Item{}, errors.New(`answer has no "####" final answer`)
	}
	truth := strings.ReplaceAll(strings.TrimSpace(a[i+4:]), ",", "")
	return Item{ID: "gsm8k/" + strconv.Itoa(line-1), Pack: "gsm8k", Problem: q, Truth: truth, Solution: strings.TrimSpace(a[:i])}, nil
}

func math500Item(m map[string]any, line int) (Item, error) {
	p, err := str(m, "problem")
	if err != nil {
		return Item{}, err
	}
	a, err := str(m, "answer")
	if err != nil {
		return Item{}, err
	}
	id, _ := m["unique_id"].(string)
	if id == "" {
		id = "math500/" + strconv.Itoa(line-1)
	}
	sol, _ := m["solution"].(string)
	extra := map[string]string{}
	for _, k := range []string{"subject", "level"} {
		if v, ok := m[k].(string); ok {
			extra[k] = v
		}
	}
	return Item{ID: id, Pack: "math", Problem: p, Truth: a, Solution: sol, Extra: extra}, nil
}

func humanEvalItem(m map[string]any, line int) (Item, error) {
	id, err := str(m, "task_id")
	if err != nil {
		return Item{}, err
	}
	p, err := str(m, "prompt")
	if err != nil {
		return Item{}, err
	}
	extra := map[string]string{}
	for _, k := range []string{"entry_point", "test", "canonical_solution"} {
		v, err := str(m, k)
		if err != nil {
			return Item{}, err
		}
		extra[k] = v
	}
	return Item{ID: id, Pack: "humaneval", Problem: p, Solution: extra["canonical_solution"], Extra: extra}, nil
}

func readGame24(r io.Reader) ([]Item, []LineError, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, nil, fmt.Errorf("read game24 csv: %w", err)
	}
	var items []Item
	var skipped []LineError
	for i, row := range rows {
		if i == 0 {
			continue // header
		}
		if len(row) < 2 || len(strings.Fields(row[1])) != 4 {
			skipped = append(skipped, LineError{i + 1, errors.New("want a rank and four numbers")})
			continue
		}
		items = append(items, Item{ID: "game24/" + row[0], Pack: "game24", Problem: strings.TrimSpace(row[1]),
			Extra: map[string]string{"rank": row[0]}})
	}
	return items, skipped, nil
}
