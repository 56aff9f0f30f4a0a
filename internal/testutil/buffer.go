// Package testutil holds small helpers that the tests of several of
// Ponder's packages share, so that each does not keep its own copy. It is
// imported from _test.go files only.
//
//	var stderr testutil.LockedBuffer
//	cmd.Stderr = &stderr // the process writes from its own goroutine
//	...
//	if !strings.Contains(stderr.String(), "listening") { ... }
package testutil

import (
	"bytes"
	"sync"
)

// LockedBuffer is a bytes.Buffer safe for one writer and concurrent
// readers: a child process's output copied in by os/exec, or a logger
// writing from the goroutines under test, read by the test while they
// run. The zero value is an empty buffer ready to use.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p; it never fails.
func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what has been written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
