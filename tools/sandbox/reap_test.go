//go:build linux

package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// zombieChildren counts this process's children that have exited and not
// been reaped.
func zombieChildren(t *testing.T) int {
	t.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	me := os.Getpid()
	n := 0
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(fields) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid == me && fields[0] == "Z" {
			n++
		}
	}
	return n
}

// TestNoZombiesWhenReaper runs Ponder's sandbox as a container's PID 1
// would (a child subreaper: orphans are re-parented to it). bubblewrap
// exits before its child, the sandbox's PID 1, so every run orphaned that
// child; nothing reaped it, and each run (finished, timed out, a session's
// end) left a zombie counted against the uid's process limit.
func TestNoZombiesWhenReaper(t *testing.T) {
	// Not parallel: the subreaper attribute is the whole test process's.
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, 36 /* PR_SET_CHILD_SUBREAPER */, 1, 0); errno != 0 {
		t.Skipf("prctl(PR_SET_CHILD_SUBREAPER): %v", errno)
	}
	t.Cleanup(func() { syscall.RawSyscall(syscall.SYS_PRCTL, 36, 0, 0) })
	if !isReaper() {
		t.Fatal("isReaper() is false for a subreaper")
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
	n := 0
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if n = zombieChildren(t); n == 0 {
			return
		}
	}
	t.Fatalf("%d zombie children left after 6 sandboxes ended", n)
}
