//go:build linux

package sandbox

import (
	"context"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/tools/reap"
	"github.com/ponder-rlm/ponder/tools/toolstest"
)

// TestNoZombiesWhenReaper runs Ponder's sandbox as a container's PID 1
// would (a child subreaper: orphans are re-parented to it). bubblewrap
// exits before its child, the sandbox's PID 1, so every run orphaned that
// child; nothing reaped it, and each run (finished, timed out, a session's
// end) left a zombie counted against the uid's process limit.
func TestNoZombiesWhenReaper(t *testing.T) {
	// Not parallel: the subreaper attribute is the whole test process's.
	toolstest.AsReaper(t)
	if !reap.IsReaper() {
		t.Fatal("reap.IsReaper() is false for a subreaper")
	}
	sb := newTestSandbox(t, nil)
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		if res := run(t, sb, "print(1)"); !res.OK() {
			t.Fatalf("run: %+v", res)
		}
	}
	if res, _ := sb.Run(ctx, "import time; time.sleep(10)", &RunOptions{Timeout: 200 * time.Millisecond}); res.Stop != StopTimeout {
		t.Fatalf("sleep: %+v", res)
	}
	if res, err := sb.RunSession(ctx, "z", "x = 1", nil); err != nil || !res.OK() {
		t.Fatalf("session: %+v %v", res, err)
	}
	sb.CloseSession("z")
	toolstest.NoZombiesLeft(t, "6 sandboxes ended")
}
