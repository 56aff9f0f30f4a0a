package traces_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/traces"
)

// A saved trace's folder is synced after the rename that puts the trace
// in it (traces.WriteFile and the store's save alike): without it a power
// cut could lose the rename while an eval record naming the trace, synced,
// was kept. Each sync is checked to come after the rename (the file is
// there when it runs). Not parallel: it wraps the package's folder sync.
func TestSavedTraceFolderIsSyncedAfterTheRename(t *testing.T) {
	var synced []string
	var missing []string
	restore := traces.WrapSyncDir(func(dir string, sync func(string) error) error {
		synced = append(synced, dir)
		// The trace file the sync is to make durable is already in dir.
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		found := false
		for _, e := range entries {
			if filepath.Ext(e.Name()) == ".json" {
				found = true
			}
		}
		if !found {
			missing = append(missing, dir)
		}
		return sync(dir)
	})
	defer restore()

	dir := t.TempDir()
	path := filepath.Join(dir, "t.json")
	tr := &core.Trace{Schema: core.TraceSchema, ID: "t", Answer: "7", Started: time.Now()}
	if err := traces.WriteFile(path, tr); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(synced, []string{dir}) || len(missing) > 0 {
		t.Fatalf("WriteFile synced folders %q (before the rename: %q), want %q once after it", synced, missing, dir)
	}

	synced = nil
	storeDir := t.TempDir()
	st, err := traces.Open(storeDir, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	solveInto(t, st, "What is 3 + 4?")
	if !slices.Contains(synced, storeDir) || len(missing) > 0 {
		t.Fatalf("store save synced folders %q (before the rename: %q), want %q", synced, missing, storeDir)
	}

	// A folder sync that fails is the save's error: the trace may not
	// survive a power cut, so no record may count on it.
	restoreFail := traces.WrapSyncDir(func(string, func(string) error) error { return errors.New("disk gone") })
	err = traces.WriteFile(filepath.Join(dir, "u.json"), tr)
	restoreFail()
	if err == nil || !strings.Contains(err.Error(), "u.json: sync its folder: disk gone") {
		t.Fatalf("failed folder sync: %v, want an error naming the trace and the sync", err)
	}
}

// BenchmarkWriteFile is the cost of saving one trace, with the folder's
// sync after the rename and without it (what it costs).
func BenchmarkWriteFile(b *testing.B) {
	st, err := traces.Open(b.TempDir(), 5, nil)
	if err != nil {
		b.Fatal(err)
	}
	tr, err := st.Get(solveInto(b, st, "What is 3 + 4?").TraceID)
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"dir-sync", "no-dir-sync"} {
		b.Run(mode, func(b *testing.B) {
			if mode == "no-dir-sync" {
				defer traces.WrapSyncDir(func(string, func(string) error) error { return nil })()
			}
			dir := b.TempDir()
			i := 0
			b.ResetTimer()
			for b.Loop() {
				// A new name each time: a run's save adds an entry.
				i++
				if err := traces.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.json", i)), tr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
