//go:build unix

package server

import "syscall"

// fdLimit is the process's limit on open files (Go raises the soft limit
// to the hard one at start), or 0 when unknown.
func fdLimit() uint64 {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) != nil {
		return 0
	}
	return r.Cur
}
