//go:build !linux

package plugins

import (
	"errors"
	"os"
	"syscall"
)

// isolation: outside Linux a plugin is isolated by nothing more than a
// process group, and only as far as Manager.Close stops it.
type isolation int

const isolateGroup isolation = 0

// pluginIsolation: outside Linux there is no PID namespace.
func pluginIsolation() (isolation, error) {
	return isolateGroup, errors.New("only Linux has PID namespaces")
}

// childProcAttr: outside Linux there is no parent-death signal nor PID
// namespace; plugins are stopped by Manager.Close, and what they start is
// their own business.
func childProcAttr() (*syscall.SysProcAttr, error) {
	_, err := pluginIsolation()
	return nil, err
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
