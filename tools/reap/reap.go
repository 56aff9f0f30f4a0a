//go:build linux

// Package reap waits for processes that were re-parented to Ponder.
//
// A process whose parent dies is re-parented to the nearest subreaper
// among its ancestors, else to PID 1 of its PID namespace. When Ponder is
// PID 1 itself (a container's entrypoint) or a subreaper, the orphans of
// the processes it starts and kills (bubblewrap's sandbox init, an MCP
// server's children) become its children, and stay zombies, counted
// against the uid's process limit, until it waits for them. Go waits only
// for the processes os/exec started, so these are waited for here.
// Anywhere else the host's init reaps them, and nothing is done: a pid or
// group that is not an orphan's could be a child that os/exec waits for.
package reap

import (
	"os"
	"syscall"
	"unsafe"
)

const (
	prGetChildSubreaper = 37         // PR_GET_CHILD_SUBREAPER
	wALL                = 0x40000000 // __WALL: children of any exit signal
)

// IsReaper reports whether orphaned descendants of this process are
// re-parented to it: it is PID 1 of its PID namespace or a child
// subreaper.
func IsReaper() bool {
	if os.Getpid() == 1 {
		return true
	}
	var v int32
	_, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prGetChildSubreaper, uintptr(unsafe.Pointer(&v)), 0)
	return errno == 0 && v != 0
}

// Pid waits, in the background, for the process pid once it has been
// re-parented here: call it after its parent has been waited for (which
// re-parents its children before the wait returns), with the process
// dying (killed, or killed with its parent). It does nothing unless this
// process is a reaper.
func Pid(pid int) {
	if pid > 0 && IsReaper() {
		go waitAll(pid)
	}
}

// Group waits, in the background, for every child of this process in
// process group pgid: the orphans of a group that was killed, once its
// leader has been waited for. A member that dies later re-parents its own
// children here before its exit is reported, so they are waited for too.
// It does nothing unless this process is a reaper.
func Group(pgid int) {
	if pgid > 1 && IsReaper() {
		go waitAll(-pgid)
	}
}

func waitAll(which int) {
	var ws syscall.WaitStatus
	for {
		if _, err := syscall.Wait4(which, &ws, wALL, nil); err != nil && err != syscall.EINTR {
			return // ECHILD: none (left) here
		}
		if which > 0 {
			return
		}
	}
}
