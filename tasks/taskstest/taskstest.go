// Package taskstest loads the benchmark datasets in ../shared/data for
// tests, skipping a test when the data is not there.
//
//	items := taskstest.Load(t, "gsm8k", 50) // the first 50 GSM8K problems
package taskstest

import (
	"testing"

	"github.com/ponder-rlm/ponder/tasks"
)

// Load returns the first n items of the named dataset (all when n is 0). It
// skips the test when no data directory is found and fails it when the
// dataset cannot be read.
func Load(t testing.TB, name string, n int) []tasks.Item {
	t.Helper()
	dir, err := tasks.FindDataDir()
	if err != nil {
		t.Skip(err)
	}
	items, _, err := tasks.LoadDataset(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	if n > 0 && len(items) > n {
		items = items[:n]
	}
	return items
}
