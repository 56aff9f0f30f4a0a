package testutil_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ponder-rlm/ponder/internal/testutil"
)

// TestLockedBufferConcurrent writes from several goroutines while reading;
// under -race an unguarded buffer fails, and no write is lost.
func TestLockedBufferConcurrent(t *testing.T) {
	t.Parallel()
	var b testutil.LockedBuffer
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 100 {
				fmt.Fprintf(&b, "%d.%d\n", i, j)
			}
		}()
	}
	for range 100 {
		_ = b.String()
	}
	wg.Wait()
	if got := strings.Count(b.String(), "\n"); got != 400 {
		t.Errorf("%d lines, want 400", got)
	}
}
