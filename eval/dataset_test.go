package eval

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLoadNamedDatasets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, pack, grader string
		min                int
	}{
		{"gsm8k", "gsm8k", "gsm8k", 1319},
		{"math500", "math", "math", 500},
		{"game24", "game24", "game24", 1300},
		{"humaneval", "humaneval", "humaneval", 164},
	}
	for _, tc := range tests {
		d := loadNamed(t, tc.name)
		if d.Pack != tc.pack || d.Grader != tc.grader || len(d.Items) < tc.min || len(d.SHA256) != 64 || len(d.Skipped) != 0 {
			t.Errorf("%s: pack %s grader %s, %d items, %d skipped, sha %q; want %s, %s, at least %d, none skipped",
				tc.name, d.Pack, d.Grader, len(d.Items), len(d.Skipped), d.SHA256, tc.pack, tc.grader, tc.min)
		}
		// The hash is the whole file's, though one read parses it too.
		if b, err := os.ReadFile(d.Path); err != nil || fmt.Sprintf("%x", sha256.Sum256(b)) != d.SHA256 {
			t.Errorf("%s: sha %s is not that of %s (%v)", tc.name, d.SHA256, d.Path, err)
		}
		for _, it := range d.Items[:3] {
			if it.ID == "" || it.Problem == "" || it.Pack != tc.pack {
				t.Errorf("%s: item %+v lacks an id, problem or pack", tc.name, it)
			}
		}
	}
	if _, err := LoadDataset("gsm8k", &DatasetOptions{Fields: map[string]string{"problem": "q"}}); err == nil || !strings.Contains(err.Error(), "--field") {
		t.Errorf("--field with a named dataset: %v, want an error naming --field", err)
	}
	if _, err := LoadDataset("game24", &DatasetOptions{Pack: "math"}); err == nil || !strings.Contains(err.Error(), "--pack") {
		t.Errorf("--pack math with game24: %v, want an error naming --pack", err)
	}
}

func TestLoadJSONLWithFieldMapping(t *testing.T) {
	t.Parallel()
	d, err := LoadDataset("testdata/custom.jsonl", &DatasetOptions{
		Fields: map[string]string{"problem": "q", "truth": "meta.ans", "id": "uid"}, Pack: "math"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range d.Items {
		got = append(got, it.ID+"="+it.Truth+"/"+it.Pack)
	}
	if diff := cmp.Diff([]string{`a=42/math`, `b=\frac{1}{2}/math`, `d=4/math`}, got); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	if d.Grader != "math" || d.Name != "custom.jsonl" || len(d.SHA256) != 64 {
		t.Errorf("grader %s, name %s, sha %q", d.Grader, d.Name, d.SHA256)
	}
	wantSkipped := map[int]string{3: "bad JSON", 6: `missing field "meta.ans" (mapped to truth)`, 7: `duplicate id "a" (first on line 1)`,
		8: `field "q" (problem) is empty`, 9: "want text or a number"}
	if len(d.Skipped) != len(wantSkipped) {
		t.Errorf("skipped %v, want lines 3, 6, 7, 8, 9", d.Skipped)
	}
	for _, s := range d.Skipped {
		if want, ok := wantSkipped[s.Line]; !ok || !strings.Contains(s.Err.Error(), want) {
			t.Errorf("line %d skipped with %q; want %q", s.Line, s.Err, want)
		}
	}
}

func TestLoadJSONLDefaults(t *testing.T) {
	t.Parallel()
	d, err := LoadDataset("testdata/defaults.jsonl", &DatasetOptions{Pack: "gsm8k"})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Items) != 2 || d.Items[0].Truth != "72" || d.Items[1].Truth != "1001" || d.Items[0].ID != "defaults/1" || d.Grader != "gsm8k" {
		t.Fatalf("items %+v grader %s; want truths 72 and 1001 from the #### lines, ids defaults/1, defaults/2", d.Items, d.Grader)
	}
	// Without a truth field the default mapping says which keys it tried.
	dir := t.TempDir()
	path := filepath.Join(dir, "x.jsonl")
	if err := os.WriteFile(path, []byte(`{"question": "q?", "solution": "s"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err = LoadDataset(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Skipped) != 1 || !strings.Contains(d.Skipped[0].Err.Error(), "--field truth=NAME") {
		t.Errorf("skipped %v; want line 1 naming --field truth=NAME", d.Skipped)
	}
	// A UTF-8 byte-order mark (Notepad, PowerShell) and CRLF line ends.
	bom := filepath.Join(dir, "bom.jsonl")
	if err := os.WriteFile(bom, []byte("\xef\xbb\xbf"+`{"question": "1+1?", "answer": "2"}`+"\r\n"+`{"question": "2+2?", "answer": "4"}`+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err = LoadDataset(bom, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Items) != 2 || len(d.Skipped) != 0 || d.Items[0].Problem != "1+1?" || d.Items[0].ID != "bom/1" {
		t.Errorf("a file with a byte-order mark: items %+v, skipped %v", d.Items, d.Skipped)
	}
}

// Lines that are no object, hold two, or give the gsm8k grader a truth
// it cannot read are skipped with a reason in the user's words: a truth
// that is no number made an error record of every search of it, after
// its LLM calls, and a second object on a line was dropped unreported.
func TestLoadJSONLSkipsLinesNoSearchCanUse(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "odd.jsonl")
	lines := []string{
		`{"question": "1+1?", "answer": "2"}`,
		`[1, 2, 3]`,
		`null`,
		`"just text"`,
		`{"question": "2+2?", "answer": "4"} {"question": "3+3?", "answer": "6"}`,
		`{"question": "4+4?", "answer": "eight"}`,
		`{"question": "5+5?", "answer": "#### 1,0"}`,
		`{"question": "6+6?", "answer": 12}`,
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := LoadDataset(path, &DatasetOptions{Pack: "gsm8k"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]string{2: "not a JSON object but an array", 3: "not a JSON object but null", 4: "not a JSON object but a string",
		5: "more after the first value", 6: `truth "eight" is not a number`}
	if len(d.Items) != 3 || len(d.Skipped) != len(want) {
		t.Fatalf("items %+v, skipped %v; want lines 1, 7 and 8 read, %d skipped", d.Items, d.Skipped, len(want))
	}
	for _, s := range d.Skipped {
		if w, ok := want[s.Line]; !ok || !strings.Contains(s.Err.Error(), w) || strings.Contains(s.Err.Error(), "Go value") {
			t.Errorf("line %d skipped with %q; want %q", s.Line, s.Err, w)
		}
	}
	// The math grader reads any truth.
	if d, err := LoadDataset(path, nil); err != nil || len(d.Items) != 4 {
		t.Errorf("math grader: %v, items %+v; want the 4 objects read", err, d.Items)
	}
}

func TestLoadDatasetBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path string
		opts DatasetOptions
		want string
	}{
		{"testdata/nope.jsonl", DatasetOptions{}, "not a named dataset"},
		{"testdata", DatasetOptions{}, "is a directory"},
		{"testdata/custom.jsonl", DatasetOptions{Fields: map[string]string{"answer": "x"}}, `unknown item field "answer"`},
		{"testdata/custom.jsonl", DatasetOptions{Grader: "vibes"}, `unknown grader "vibes"`},
	}
	for _, tc := range tests {
		o := tc.opts
		if _, err := LoadDataset(tc.path, &o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadDataset(%s, %+v) = %v, want %q", tc.path, tc.opts, err, tc.want)
		}
	}
}

func TestSelect(t *testing.T) {
	t.Parallel()
	items := []Item{{ID: "0"}, {ID: "1"}, {ID: "2"}, {ID: "3"}}
	for _, tc := range []struct {
		offset, limit int
		want          int
	}{{0, 0, 4}, {1, 2, 2}, {3, 5, 1}, {4, 1, 0}, {9, 0, 0}} {
		if got := Select(items, tc.offset, tc.limit); len(got) != tc.want {
			t.Errorf("Select(offset %d, limit %d) has %d items, want %d", tc.offset, tc.limit, len(got), tc.want)
		}
	}
}

// A line longer than a scanner's buffer (64 MiB) is read like any other,
// not the end of the whole dataset.
func TestLoadJSONLWithAVeryLongLine(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "long.jsonl")
	long := `{"question": "` + strings.Repeat("x", 65<<20) + `", "answer": "1"}`
	if err := os.WriteFile(path, []byte("{\"question\": \"1+1\", \"answer\": \"2\"}\n"+long+"\n{\"question\": \"2+2\", \"answer\": \"4\"}"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := LoadDataset(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Items) != 3 || len(d.Skipped) != 0 || d.Items[2].ID != "long/3" || len(d.Items[1].Problem) != 65<<20 {
		t.Fatalf("%d items, skipped %v; want all 3 lines read", len(d.Items), d.Skipped)
	}
}
