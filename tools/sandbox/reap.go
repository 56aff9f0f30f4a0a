//go:build linux

package sandbox

import (
	"os"
	"syscall"
	"unsafe"
)

// prGetChildSubreaper is PR_GET_CHILD_SUBREAPER; the syscall package has no
// name for it.
const prGetChildSubreaper = 37

// isReaper reports whether orphaned descendants of this process are
// re-parented to it: it is PID 1 of its PID namespace (Ponder as a
// container's entrypoint) or a child subreaper.
func isReaper() bool {
	if os.Getpid() == 1 {
		return true
	}
	var v int32
	_, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prGetChildSubreaper, uintptr(unsafe.Pointer(&v)), 0)
	return errno == 0 && v != 0
}

// reapOrphan waits for the sandbox's PID 1 (bubblewrap's child, pid as
// --json-status-fd reports it) once bubblewrap itself has been waited for.
// bubblewrap exits as soon as its child reports the program's status,
// before that child has exited, so the child is orphaned at the end of
// every run (and when a run is killed). A process that is PID 1 or a
// subreaper inherits it and must reap it, or it stays a zombie: one per
// run, counted against the uid's process limit until new sandboxes fail.
// Anywhere else the host's init reaps it, and nothing is done (a pid that
// is not our child could be one that os/exec waits for).
func reapOrphan(pid int) {
	if pid <= 0 || !isReaper() {
		return
	}
	go func() {
		var ws syscall.WaitStatus
		for {
			// __WALL: whatever its exit signal. It is dying (bubblewrap's
			// --die-with-parent), so this wait is short; ECHILD when it
			// was not re-parented here.
			_, err := syscall.Wait4(pid, &ws, 0x40000000, nil)
			if err != syscall.EINTR {
				return
			}
		}
	}()
}
