package toolstest

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ProcessesWith lists the host processes whose command line contains s:
// tests mark what they start with a unique string and check that nothing
// with it is left running.
func ProcessesWith(s string) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), s) {
			out = append(out, e.Name())
		}
	}
	return out
}

// ZombieChildren counts this process's children that have exited and
// have not been waited for.
func ZombieChildren() int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	me := strconv.Itoa(os.Getpid())
	n := 0
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(fields) >= 2 && fields[0] == "Z" && fields[1] == me {
			n++
		}
	}
	return n
}

// AsReaper makes the test process a child subreaper, as a container's
// PID 1 is, until the test ends: orphans of what it starts become its
// children. Tests that call it must not run in parallel.
func AsReaper(t testing.TB) {
	t.Helper()
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, 36 /* PR_SET_CHILD_SUBREAPER */, 1, 0); errno != 0 {
		t.Skipf("prctl(PR_SET_CHILD_SUBREAPER): %v", errno)
	}
	t.Cleanup(func() { syscall.RawSyscall(syscall.SYS_PRCTL, 36, 0, 0) })
}

// NoZombiesLeft fails the test unless, within 3s, the test process has no
// unwaited children.
func NoZombiesLeft(t testing.TB, what string) {
	t.Helper()
	n := 0
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if n = ZombieChildren(); n == 0 {
			return
		}
	}
	t.Fatalf("%d zombie children left after %s", n, what)
}
