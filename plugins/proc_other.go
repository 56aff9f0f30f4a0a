//go:build !linux

package plugins

import (
	"errors"
	"os"
	"syscall"
)

// childProcAttr: outside Linux there is no parent-death signal nor PID
// namespace; plugins are stopped by Manager.Close, and what they start is
// their own business.
func childProcAttr() (*syscall.SysProcAttr, error) {
	return nil, errors.New("only Linux has PID namespaces")
}

func killNow(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}

// killGroup: outside Linux the processes a plugin starts are its own
// business.
func killGroup(int) {}

// reapGroup: outside Linux no orphan is re-parented to Ponder.
func reapGroup(int) {}
