package server

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// unreadBytes reports how many bytes written to w the reader has not taken
// yet, when w is a pipe (FIONREAD, which Linux calls TIOCINQ, on its write end); ok is false otherwise.
func unreadBytes(w io.Writer) (n int, ok bool) {
	f, isFile := w.(*os.File)
	if !isFile {
		return 0, false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return 0, false
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, false
	}
	var ioctlErr error
	if err := rc.Control(func(fd uintptr) { n, ioctlErr = unix.IoctlGetInt(int(fd), unix.TIOCINQ) }); err != nil || ioctlErr != nil {
		return 0, false
	}
	return n, true
}
