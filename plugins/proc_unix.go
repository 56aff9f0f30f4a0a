//go:build linux

package plugins

import "syscall"

// childProcAttr makes the kernel kill a plugin when Ponder dies, even by
// SIGKILL, so no plugin outlives its host.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

func killNow(pid int) { _ = syscall.Kill(pid, syscall.SIGKILL) }
