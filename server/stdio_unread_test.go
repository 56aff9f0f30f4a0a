package server

import (
	"bytes"
	"context"
	"io"
	"os"
	"runtime"
	"testing"
	"time"
)

// The final progress notification on stdio waits until the client has read
// it off the pipe, so the response comes in a later read.
func TestAwaitReadWaitsForThePipeToBeRead(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("unread bytes are only known on Linux")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if n, ok := unreadBytes(&bytes.Buffer{}); ok || n != 0 {
		t.Fatalf("a buffer reported %d unread bytes", n)
	}
	tr := newStdioTransport(nil, w, 0)
	if err := tr.notify("notifications/progress", map[string]any{"progress": 1}); err != nil {
		t.Fatal(err)
	}
	n, ok := unreadBytes(w)
	if !ok || n == 0 {
		t.Fatalf("unread bytes on a written pipe: %d, %v", n, ok)
	}
	// Nobody reads: the wait gives up at its bound.
	start := time.Now()
	tr.awaitRead(context.Background(), time.Hour, 50*time.Millisecond)
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Fatalf("returned after %v with %d bytes unread", waited, n)
	}
	// The reader takes the line: the wait ends without the bound.
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, _ = io.ReadFull(r, make([]byte, n))
	}()
	tr.awaitRead(context.Background(), time.Hour, time.Hour)
	if n, _ := unreadBytes(w); n != 0 {
		t.Fatalf("%d bytes still unread after the wait", n)
	}
}

// A waiter learns which tools/call stream carried its final progress
// notification (nil: another stream, such as the session's GET stream).
func TestDeliveriesTellWhichStreamCarriedTheNotification(t *testing.T) {
	own := &exchange{}
	for _, via := range []*exchange{own, nil} {
		d := newDeliveries()
		d.expect("s", "7")
		go func() {
			d.record("s", "7", 1, own) // an earlier notification on the request's own stream
			d.record("s", "7", 4, via) // the final one
		}()
		written, got := d.wait(context.Background(), "s", "7", 4, time.Second)
		if !written || got != via {
			t.Errorf("final notification on %p: wait says written %v on %p", via, written, got)
		}
		if d.watching() {
			t.Error("still watching after the wait")
		}
	}
}
