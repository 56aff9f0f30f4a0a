package server

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The final progress notification on stdio waits until the client has read
// it off the pipe or socket, so the response comes in a later read.
func TestAwaitReadWaitsForThePipeToBeRead(t *testing.T) {
	if n, ok := unreadBytes(&bytes.Buffer{}); ok || n != 0 {
		t.Fatalf("a buffer reported %d unread bytes", n)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	sr, sw := os.NewFile(uintptr(fds[0]), "peer"), os.NewFile(uintptr(fds[1]), "stdout")
	for _, c := range []struct {
		name string
		r, w *os.File
	}{{"pipe", pr, pw}, {"socket", sr, sw}} {
		t.Run(c.name, func(t *testing.T) {
			defer c.r.Close()
			defer c.w.Close()
			awaitReadOn(t, c.r, c.w)
		})
	}
}

func awaitReadOn(t *testing.T, r io.Reader, w *os.File) {
	tr := newStdioTransport(nil, w, 0)
	if err := tr.notify("notifications/progress", map[string]any{"progress": 1}); err != nil {
		t.Fatal(err)
	}
	n, ok := unreadBytes(w)
	if !ok || n == 0 {
		t.Fatalf("unread bytes after a write: %d, %v", n, ok)
	}
	line := make([]byte, 4096)
	// Nobody reads: the wait gives up at its bound.
	start := time.Now()
	tr.awaitRead(context.Background(), time.Hour, 50*time.Millisecond)
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Fatalf("returned after %v with %d bytes unread", waited, n)
	}
	// The reader takes the line: the wait ends without the bound.
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, _ = r.Read(line) // the whole notification, one line
	}()
	tr.awaitRead(context.Background(), time.Hour, time.Hour)
	if n, _ := unreadBytes(w); n != 0 {
		t.Fatalf("%d bytes still unread after the wait", n)
	}
}
