//go:build !linux

package plugins

import (
	"os"
	"syscall"
)

// childProcAttr: outside Linux there is no parent-death signal; plugins
// are stopped by Manager.Close.
func childProcAttr() *syscall.SysProcAttr { return nil }

func killNow(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}

// killGroup: outside Linux the processes a plugin starts are its own
// business.
func killGroup(int) {}
