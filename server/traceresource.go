package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/text"
	"github.com/ponder-rlm/ponder/traces"
)

// maxTraceResourceBytes caps the trace a ponder://traces/{id} read
// returns. A bigger one (a long search with record_prompts can reach
// hundreds of MiB) would be decoded whole into memory, encoded again, and
// sent to a client that mostly hands it to a model; it gets the trace's
// summary and where to fetch the whole of it instead. Four times
// get_trace's cap (maxTraceBytes), which sends here for the traces it
// leaves out.
const maxTraceResourceBytes = 8 << 20

// traceTooLarge is what a ponder://traces/{id} read returns for a trace
// over the cap: its summary, marked truncated, and how to get all of it.
type traceTooLarge struct {
	ID         string          `json:"id"`
	Status     core.StopReason `json:"status,omitempty"`
	Strategy   string          `json:"strategy,omitempty"`
	Pack       string          `json:"pack,omitempty"`
	Problem    string          `json:"problem,omitempty"`
	Answer     string          `json:"answer,omitempty"`
	Usage      *core.Usage     `json:"usage,omitempty"`
	Started    *time.Time      `json:"started,omitempty"`
	Truncated  bool            `json:"truncated"`
	TraceBytes int64           `json:"trace_bytes"`
	LimitBytes int64           `json:"limit_bytes"`
	Note       string          `json:"note"`
}

// readTrace serves ponder://traces/{id}: the trace document
// (docs/trace.schema.json), or its summary when it is larger than the cap.
// A finished trace's size is read from its file before anything else, so
// a huge one is never loaded for a read that will not return it.
func (s *Server) readTrace(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	uri := req.Params.URI
	id := strings.TrimPrefix(uri, "ponder://traces/")
	if s.opts.Traces == nil {
		return nil, fmt.Errorf("%w: this server keeps no traces", mcpserver.ErrResourceNotFound)
	}
	if n, err := s.opts.Traces.Size(id); err == nil && n > maxTraceResourceBytes {
		return s.traceSummary(uri, id, n, nil)
	}
	t, err := s.opts.Traces.Get(id)
	if err != nil {
		if errors.Is(err, traces.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", mcpserver.ErrResourceNotFound, uri)
		}
		return nil, err
	}
	// Compact, as traces are stored: the size checked is the size sent.
	b, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", uri, err)
	}
	if len(b) > maxTraceResourceBytes { // a running trace, rebuilt from its events
		return s.traceSummary(uri, id, int64(len(b)), t)
	}
	// A remote client reads the sources retrieved by their names.
	b = traceMask(s.localClient(ctx), t).JSON(b)
	return []mcp.ResourceContents{mcp.TextResourceContents{URI: uri, MIMEType: "application/json", Text: string(b)}}, nil
}

// traceSummary answers a read of a trace of size bytes over the cap: the
// summary from t when it was read, else from the store's list.
func (s *Server) traceSummary(uri, id string, size int64, t *core.Trace) ([]mcp.ResourceContents, error) {
	out := traceTooLarge{ID: id, Truncated: true, TraceBytes: size, LimitBytes: maxTraceResourceBytes,
		Note: fmt.Sprintf("The trace is %s, more than the %s a resource read returns: this is its summary. "+
			"Get the whole trace over HTTP with GET /ui/api/runs/%s (the server token as \"Authorization: Bearer <token>\"), "+
			"see it in the web viewer at /ui/#run=%s, or run `ponder trace get %s` on the server's machine.",
			sizeText(size), sizeText(maxTraceResourceBytes), id, id, id)}
	if t != nil {
		out.Status, out.Strategy, out.Pack, out.Answer = t.Status, t.Strategy, t.Pack, t.Answer
		out.Problem, out.Usage, out.Started = text.Clip(t.Problem, 200), &t.Usage, &t.Started
	} else {
		for _, sum := range s.opts.Traces.List() {
			if sum.ID == id {
				out.Status, out.Strategy, out.Pack, out.Answer = sum.Status, sum.Strategy, sum.Pack, sum.Answer
				out.Problem, out.Usage, out.Started = sum.Problem, &sum.Usage, &sum.Started
				break
			}
		}
	}
	return jsonResource(uri, out)
}

// sizeText writes a size in bytes, KiB or MiB.
func sizeText(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d bytes", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
