package sdk

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ponder-rlm/ponder/sdk/internal/pb"
)

// callTracker counts the plugin's calls in flight (Tool.Call,
// Evaluator.Evaluate, Strategy.Run) and when each one's context ended, so
// that the host can learn whether calls it gave up on still run: a Go
// goroutine cannot be stopped from outside, and one that ignores its
// context would pile up in the plugin for as long as it lives.
type callTracker struct {
	mu    sync.Mutex
	calls map[*trackedCall]struct{}
}

type trackedCall struct {
	ended time.Time // when its context ended; zero while it is live
}

// begin records a call that runs under ctx; the returned func ends it.
func (t *callTracker) begin(ctx context.Context) (end func()) {
	c := &trackedCall{}
	t.mu.Lock()
	if t.calls == nil {
		t.calls = map[*trackedCall]struct{}{}
	}
	t.calls[c] = struct{}{}
	t.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		t.mu.Lock()
		c.ended = time.Now()
		t.mu.Unlock()
	})
	return func() {
		stop()
		t.mu.Lock()
		delete(t.calls, c)
		t.mu.Unlock()
	}
}

// state counts the calls running, and of them those whose context ended
// at least age ago.
func (t *callTracker) state(age time.Duration) (running, abandoned int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	for c := range t.calls {
		running++
		if !c.ended.IsZero() && now.Sub(c.ended) >= age {
			abandoned++
		}
	}
	return running, abandoned
}

type callsServer struct {
	pb.UnimplementedCallsServer
	t *callTracker
}

func (s *callsServer) State(_ context.Context, r *pb.CallsRequest) (*pb.CallsState, error) {
	running, abandoned := s.t.state(time.Duration(max(0, r.GetAbandonedForMs())) * time.Millisecond)
	return &pb.CallsState{Running: uint32(running), Abandoned: uint32(abandoned)}, nil
}

// ErrNotReported is returned by Remote.AbandonedCalls for a plugin that
// does not serve the Calls service (one not built with this SDK).
var ErrNotReported = errors.New("the plugin does not report its calls")

// AbandonedCalls asks the plugin how many of its calls are still running
// although they were cancelled (or passed their deadline) at least age
// ago: calls the host gave up on, which the plugin ignores the end of.
func (r *Remote) AbandonedCalls(ctx context.Context, age time.Duration) (int, error) {
	st, err := r.calls.State(ctx, &pb.CallsRequest{AbandonedForMs: age.Milliseconds()})
	if status.Code(err) == codes.Unimplemented {
		return 0, ErrNotReported
	}
	if err != nil {
		return 0, fromStatus(ctx, "calls", err)
	}
	if st.GetAbandoned() > st.GetRunning() {
		return 0, fmt.Errorf("calls: the plugin says %d of its %d calls are abandoned", st.GetAbandoned(), st.GetRunning())
	}
	return int(st.GetAbandoned()), nil
}
