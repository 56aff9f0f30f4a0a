package sdk

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ponder-rlm/ponder/core"
)

// toStatus turns an error into a gRPC status whose code keeps its
// identity across the process boundary (docs/plugin-protocol.md).
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Unknown
	switch {
	case errors.Is(err, core.ErrBudgetExhausted):
		code = codes.ResourceExhausted
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, core.ErrUnknown):
		code = codes.NotFound
	case errors.Is(err, ErrSessionOver), errors.Is(err, ErrNotAllowed):
		code = codes.FailedPrecondition
	case errors.Is(err, errInvalid), errors.Is(err, core.ErrInvalidParam):
		code = codes.InvalidArgument
	}
	return status.Error(code, err.Error())
}

// errInvalid marks malformed requests (INVALID_ARGUMENT).
var errInvalid = errors.New("invalid request")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errInvalid, fmt.Sprintf(format, a...))
}

// fromStatus turns a status received from the peer back into an error that
// errors.Is recognises. what names the call for the message.
func fromStatus(ctx context.Context, what string, err error) error {
	if err == nil {
		return nil
	}
	// A call cut short by our own context reports that, not the peer's
	// view of it.
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w", what, ctxErr)
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", what, err)
	}
	msg := st.Message()
	switch st.Code() {
	case codes.ResourceExhausted:
		// gRPC's own size check says so with this code too; it is not the
		// budget.
		if strings.Contains(msg, "message larger than max") {
			return fmt.Errorf("%s: %w (%s)", what, ErrTooLarge, msg)
		}
		if errors.Is(err, core.ErrBudgetExhausted) {
			return fmt.Errorf("%s: %w", what, err)
		}
		return fmt.Errorf("%s: %w", what, peerError(core.ErrBudgetExhausted, msg))
	case codes.Canceled:
		return fmt.Errorf("%s: %w", what, peerError(context.Canceled, msg))
	case codes.DeadlineExceeded:
		return fmt.Errorf("%s: %w", what, peerError(context.DeadlineExceeded, msg))
	case codes.FailedPrecondition:
		if errors.Is(err, ErrSessionOver) || errors.Is(err, ErrNotAllowed) {
			return fmt.Errorf("%s: %s", what, msg)
		}
		return fmt.Errorf("%s: %w (%s)", what, ErrNotAllowed, msg)
	case codes.NotFound:
		return fmt.Errorf("%s: %w (%s)", what, core.ErrUnknown, msg)
	case codes.Unavailable:
		return fmt.Errorf("%s: %w: %s", what, ErrUnavailable, msg)
	}
	return fmt.Errorf("%s: %s", what, msg)
}

// peerError is the peer's message as an error that errors.Is recognises
// as sentinel, whose code the message came with. A message that already
// says what sentinel says (the budget's "budget exhausted: 3 of 3 llm calls
// used", passed through the plugin and back) is kept as is instead of
// being wrapped in the sentinel's text once more at every crossing.
func peerError(sentinel error, msg string) error {
	if msg == "" {
		return sentinel
	}
	if strings.Contains(msg, sentinel.Error()) {
		return &codedError{msg: msg, sentinel: sentinel}
	}
	return fmt.Errorf("%w (%s)", sentinel, msg)
}

// codedError is a peer's message that stands for sentinel.
type codedError struct {
	msg      string
	sentinel error
}

func (e *codedError) Error() string { return e.msg }
func (e *codedError) Unwrap() error { return e.sentinel }

// ErrTooLarge is wrapped when a message between host and plugin was over
// its receiver's size limit.
var ErrTooLarge = errors.New("message too large")

// ErrUnavailable is wrapped when the peer process cannot be reached (it
// exited or crashed).
var ErrUnavailable = errors.New("plugin unavailable")
