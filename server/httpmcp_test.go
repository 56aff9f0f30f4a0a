package server

import (
	"context"
	"testing"
	"time"
)

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
