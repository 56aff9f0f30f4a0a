//go:build linux

package plugins

import "syscall"

// childProcAttr makes the kernel kill a plugin when Ponder dies, even by
// SIGKILL, so no plugin outlives its host, and puts the plugin in a
// process group of its own, so that the processes it starts are stopped
// with it (killGroup).
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}

func killNow(pid int) { _ = syscall.Kill(pid, syscall.SIGKILL) }

// killGroup kills what is left of the process group the plugin pid
// leads: the processes it started, which outlive it otherwise. The group
// id stays taken while any of them runs, so it names no other group.
func killGroup(pid int) {
	if pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}
