package eval

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/ponder-rlm/ponder/internal/text"
	"github.com/ponder-rlm/ponder/tasks"
)

// Item is one problem of a dataset (tasks.Item: ID, Pack, Problem, Truth,
// Solution, Extra).
type Item = tasks.Item

// LineError reports a dataset line that was skipped.
type LineError = tasks.LineError

// Dataset is a list of problems with how to pose and grade them.
type Dataset struct {
	// Name is the named dataset (gsm8k, math500, game24, humaneval) or the
	// file's name.
	Name string `json:"name"`
	// Path is the file read.
	Path string `json:"path"`
	// SHA256 is the digest of the file: a run directory is tied to it.
	SHA256 string `json:"sha256"`
	// Pack poses the problems (gsm8k, math, game24, humaneval, generic).
	Pack string `json:"pack"`
	// Grader grades answers (see Graders).
	Grader string `json:"grader"`
	// Fields is the field mapping a JSONL file was read with.
	Fields  map[string]string `json:"fields,omitempty"`
	Items   []Item            `json:"-"`
	Skipped []LineError       `json:"-"`
}

// DatasetOptions say how to read a dataset. The zero value reads a named
// dataset from tasks.FindDataDir() and a JSONL file with the default field
// mapping and the generic pack.
type DatasetOptions struct {
	// DataDir holds the named datasets (default: tasks.FindDataDir()).
	DataDir string
	// Fields maps item fields to JSON keys of a user's JSONL file:
	// problem=question, truth=answer, id=uid. Keys are id, problem, truth,
	// solution, test and entry_point; a value may be a dotted path
	// (meta.answer). Unset keys use DefaultFields.
	Fields map[string]string
	// Pack poses a user's problems (default generic). Named datasets have
	// their own.
	Pack string
	// Grader overrides the grader the pack implies.
	Grader string
}

// Named datasets.
var namedPacks = map[string]string{"gsm8k": "gsm8k", "math500": "math", "game24": "game24", "humaneval": "humaneval"}

// NamedDatasets lists the datasets read by name from the data directory.
func NamedDatasets() []string { return []string{"gsm8k", "math500", "game24", "humaneval"} }

// DefaultFields are the JSON keys tried, in order, for each item field of
// a user's JSONL file when --field does not name one.
var DefaultFields = map[string][]string{
	"id":          {"id", "unique_id", "task_id"},
	"problem":     {"problem", "question", "prompt", "input"},
	"truth":       {"truth", "answer", "target", "output"},
	"solution":    {"solution", "rationale"},
	"test":        {"test"},
	"entry_point": {"entry_point"},
}

// LoadDataset reads a named dataset (gsm8k, math500, game24, humaneval) or
// a JSONL file. Lines with bad JSON or missing fields are skipped and
// listed in Dataset.Skipped with their line numbers.
func LoadDataset(nameOrPath string, o *DatasetOptions) (*Dataset, error) {
	var opts DatasetOptions
	if o != nil {
		opts = *o
	}
	if pack, ok := namedPacks[nameOrPath]; ok {
		if len(opts.Fields) > 0 {
			return nil, fmt.Errorf("--field applies to JSONL files, not to the named dataset %s", nameOrPath)
		}
		if opts.Pack != "" && opts.Pack != pack {
			return nil, fmt.Errorf("dataset %s is posed by the %s pack; drop --pack %s", nameOrPath, pack, opts.Pack)
		}
		dir := opts.DataDir
		if dir == "" {
			d, err := tasks.FindDataDir()
			if err != nil {
				return nil, err
			}
			dir = d
		}
		path, _ := tasks.DatasetFile(dir, nameOrPath)
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("dataset %s: %w (set PONDER_DATA_SETS to the folder holding the benchmark files)", nameOrPath, err)
		}
		defer f.Close()
		// One read both hashes the file and parses it.
		h := sha256.New()
		tee := io.TeeReader(f, h)
		items, skipped, err := tasks.ReadDataset(nameOrPath, tee)
		if err != nil {
			return nil, err
		}
		if _, err := io.Copy(io.Discard, tee); err != nil { // whatever the parser left unread
			return nil, fmt.Errorf("dataset %s: %w", nameOrPath, err)
		}
		sum := hex.EncodeToString(h.Sum(nil))
		grader, err := pickGrader(pack, opts.Grader)
		if err != nil {
			return nil, err
		}
		return &Dataset{Name: nameOrPath, Path: path, SHA256: sum, Pack: pack, Grader: grader, Items: items, Skipped: skipped}, nil
	}
	return loadJSONL(nameOrPath, opts)
}

func pickGrader(pack, override string) (string, error) {
	if override != "" {
		if _, ok := graders[override]; !ok {
			return "", fmt.Errorf("unknown grader %q (known: %s)", override, strings.Join(Graders(), ", "))
		}
		return override, nil
	}
	return PackGrader(pack), nil
}

// PackGrader is the grader of a pack's answers when none is named: the
// pack's own (gsm8k, math, game24, humaneval), else math.
func PackGrader(pack string) string {
	switch pack {
	case "gsm8k", "math", "game24", "humaneval":
		return pack
	}
	return "math"
}

func loadJSONL(path string, o DatasetOptions) (*Dataset, error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("dataset %q: no such file, and not a named dataset (%s)", path, strings.Join(NamedDatasets(), ", "))
		}
		return nil, fmt.Errorf("dataset %s: %w", path, err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("dataset %s is a directory; give a JSONL file", path)
	}
	for k := range o.Fields {
		if _, ok := DefaultFields[k]; !ok {
			return nil, fmt.Errorf("--field %s=...: unknown item field %q (known: id, problem, truth, solution, test, entry_point)", k, k)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dataset %s: %w", path, err)
	}
	sum := sha256.Sum256(b)
	pack := o.Pack
	if pack == "" {
		pack = "generic"
	}
	grader, err := pickGrader(pack, o.Grader)
	if err != nil {
		return nil, err
	}
	needTruth := grader != "game24" && grader != "humaneval"
	needTests := grader == "humaneval"
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	d := &Dataset{Name: filepath.Base(path), Path: path, SHA256: hex.EncodeToString(sum[:]), Pack: pack, Grader: grader, Fields: o.Fields}
	seen := map[string]int{}
	// A file saved by Windows tools starts with a UTF-8 byte-order mark;
	// left there, it makes line 1 bad JSON. The file is in memory: lines
	// are split there, whatever their length (a scanner's limit made one
	// long line fail the whole file).
	rest := bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	line := 0
	for len(rest) > 0 {
		line++
		cur := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			cur, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		body := bytes.TrimSpace(cur)
		if len(body) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			d.Skipped = append(d.Skipped, LineError{Line: line, Err: fmt.Errorf("bad JSON: %v", err)})
			continue
		}
		if _, err := dec.Token(); err != io.EOF {
			// Two objects on one line (a lost line break): reading the
			// first alone would drop the second without a word.
			d.Skipped = append(d.Skipped, LineError{Line: line, Err: errors.New("bad JSON: more after the first value; want one JSON object per line")})
			continue
		}
		m, ok := v.(map[string]any)
		if !ok {
			d.Skipped = append(d.Skipped, LineError{Line: line, Err: fmt.Errorf("not a JSON object but %s; want one object per line", jsonKind(v))})
			continue
		}
		it, err := mapItem(m, o.Fields, needTruth, needTests)
		if err != nil {
			d.Skipped = append(d.Skipped, LineError{Line: line, Err: err})
			continue
		}
		if it.ID == "" {
			it.ID = base + "/" + strconv.Itoa(line)
		}
		if grader == "gsm8k" {
			if i := strings.LastIndex(it.Truth, "####"); i >= 0 {
				it.Truth = strings.ReplaceAll(strings.TrimSpace(it.Truth[i+4:]), ",", "")
			}
			if _, ok := numberValue(it.Truth); !ok {
				// Every search of it would be run and then be an error
				// record, which --retry-errors would run again to no end.
				d.Skipped = append(d.Skipped, LineError{Line: line,
					Err: fmt.Errorf("truth %q is not a number, which the gsm8k grader needs", text.Clip(it.Truth, 80))})
				continue
			}
		}
		if first, dup := seen[it.ID]; dup {
			d.Skipped = append(d.Skipped, LineError{Line: line, Err: fmt.Errorf("duplicate id %q (first on line %d)", it.ID, first)})
			continue
		}
		seen[it.ID] = line
		it.Pack = pack
		d.Items = append(d.Items, it)
	}
	return d, nil
}

// mapItem reads one JSON object through the field mapping.
func mapItem(m map[string]any, fields map[string]string, needTruth, needTests bool) (Item, error) {
	get := func(field string, required bool) (string, error) {
		keys := DefaultFields[field]
		explicit := false
		if k, ok := fields[field]; ok {
			keys, explicit = []string{k}, true
		}
		for _, k := range keys {
			v, ok := lookup(m, k)
			if !ok {
				continue
			}
			s, err := scalarString(v)
			if err != nil {
				return "", fmt.Errorf("field %q (%s): %v", k, field, err)
			}
			if strings.TrimSpace(s) == "" {
				if required {
					return "", fmt.Errorf("field %q (%s) is empty", k, field)
				}
				return "", nil
			}
			return s, nil
		}
		if !required {
			return "", nil
		}
		if explicit {
			return "", fmt.Errorf("missing field %q (mapped to %s)", keys[0], field)
		}
		return "", fmt.Errorf("missing %s: none of the fields %s (map one with --field %s=NAME)", field, strings.Join(quoteAll(keys), ", "), field)
	}
	var it Item
	var err error
	if it.Problem, err = get("problem", true); err != nil {
		return Item{}, err
	}
	if it.Truth, err = get("truth", needTruth); err != nil {
		return Item{}, err
	}
	if it.ID, err = get("id", false); err != nil {
		return Item{}, err
	}
	if it.Solution, err = get("solution", false); err != nil {
		return Item{}, err
	}
	test, err := get("test", needTests)
	if err != nil {
		return Item{}, err
	}
	entry, err := get("entry_point", needTests)
	if err != nil {
		return Item{}, err
	}
	if test != "" || entry != "" {
		it.Extra = map[string]string{"test": test, "entry_point": entry}
	}
	return it, nil
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

// lookup follows a dotted path through nested objects.
func lookup(m map[string]any, path string) (any, bool) {
	if v, ok := m[path]; ok {
		return v, v != nil
	}
	cur := any(m)
	for _, part := range strings.Split(path, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[part]; !ok {
			return nil, false
		}
	}
	return cur, cur != nil
}

func scalarString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case bool:
		return strconv.FormatBool(x), nil
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			s, err := scalarString(e)
			if err != nil {
				return "", err
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ", "), nil
	}
	return "", fmt.Errorf("want text or a number, got a JSON object")
}

// jsonKind names the kind of a decoded JSON value that is not an object.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "another value"
}

// Select returns items[offset:offset+limit] (limit <= 0: to the end).
func Select(items []Item, offset, limit int) []Item {
	if offset >= len(items) {
		return nil
	}
	items = items[offset:]
	if limit > 0 && limit < len(items) {
		items = items[:limit]
	}
	return items
}

// Graders lists the grader names.
func Graders() []string {
	out := make([]string, 0, len(graders))
	for k := range graders {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
