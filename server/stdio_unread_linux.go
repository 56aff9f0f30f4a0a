package server

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// unreadBytes reports how much of what was written to w its reader has not
// taken yet, when w is a pipe (FIONREAD, which Linux calls TIOCINQ, on the
// write end) or a Unix socket (SIOCOUTQ, alias TIOCOUTQ: what the peer has
// not read; Node and Electron give a child socketpairs, not pipes); ok is
// false for anything else.
func unreadBytes(w io.Writer) (n int, ok bool) {
	f, isFile := w.(*os.File)
	if !isFile {
		return 0, false
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, false
	}
	var req uint
	switch mode := fi.Mode(); {
	case mode&os.ModeNamedPipe != 0:
		req = unix.TIOCINQ
	case mode&os.ModeSocket != 0:
		req = unix.TIOCOUTQ
	default:
		return 0, false
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, false
	}
	var ioctlErr error
	if err := rc.Control(func(fd uintptr) { n, ioctlErr = unix.IoctlGetInt(int(fd), req) }); err != nil || ioctlErr != nil {
		return 0, false
	}
	return n, true
}
