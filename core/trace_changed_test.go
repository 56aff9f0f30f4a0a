package core_test

import (
	"testing"

	"github.com/ponder-rlm/ponder/core"
)

// Changed is closed by the next event, also when events came before with
// nobody waiting (the tracer then keeps its channel).
func TestTracerChangedWakesAtTheNextEvent(t *testing.T) {
	t.Parallel()
	tr := core.NewTracer(false)
	tr.Record(core.OpInfo, nil, nil) // nobody waits
	ch := tr.Changed()
	select {
	case <-ch:
		t.Fatal("closed before any event after Changed")
	default:
	}
	tr.Record(core.OpInfo, nil, nil)
	select {
	case <-ch:
	default:
		t.Fatal("not closed by the next event")
	}
	again := tr.Changed()
	if again == ch {
		t.Fatal("a closed channel was handed out again")
	}
	tr.Close()
	<-again
	<-tr.Changed()
}
