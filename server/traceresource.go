package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
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
	local := s.localClient(ctx)
	if n, err := s.opts.Traces.Size(id); err == nil && n > maxTraceResourceBytes {
		return s.traceSummary(uri, id, n, nil, local)
	}
	t, err := s.opts.Traces.Get(id)
	if err != nil {
		if why := s.unsaved(id); why != "" {
			return nil, fmt.Errorf("%w: %s: the trace was not saved (%s)", mcpserver.ErrResourceNotFound, uri, why)
		}
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
		return s.traceSummary(uri, id, int64(len(b)), t, local)
	}
	// A remote client reads the sources retrieved by their names.
	b = traceMask(local, t).JSON(b)
	return []mcp.ResourceContents{mcp.TextResourceContents{URI: uri, MIMEType: "application/json", Text: string(b)}}, nil
}

// traceSummary answers a read of a trace of size bytes over the cap: the
// summary from t when it was read, else from the store's list. A client
// not on the server's machine (local false) reads the sources its problem
// and answer quote by their names, as in the whole trace.
func (s *Server) traceSummary(uri, id string, size int64, t *core.Trace, local bool) ([]mcp.ResourceContents, error) {
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
	if !local && (absPath.MatchString(out.Problem) || absPath.MatchString(out.Answer)) {
		mask := traceMask(false, t)
		if t == nil {
			var err error
			if mask, err = s.storedMask(id); err != nil {
				// Which paths are sources cannot be told: none is sent.
				s.log.Warn().Err(err).Str("trace", id).Msg("trace summary: could not learn the trace's sources: problem and answer left out")
				out.Problem, out.Answer = "", ""
			}
		}
		out.Problem, out.Answer = mask.Text(out.Problem), mask.Text(out.Answer)
	}
	return jsonResource(uri, out)
}

// absPath finds what may be an absolute path ("/srv/docs/a.md", not the
// "/" of "1/2"): only text holding one can quote a source.
var absPath = regexp.MustCompile(`(?:^|[^\w.~/-])/[\w.~-]`)

// storedMask is the mask of the stored trace id, learnt from its document
// one event and one node at a time: a trace over the cap is not loaded
// whole for the names its summary needs.
func (s *Server) storedMask(id string) (*sourceMask, error) {
	rc, err := s.opts.Traces.Open(id)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	m := newSourceMask()
	if err := learnStream(m, rc); err != nil {
		return nil, fmt.Errorf("read trace %s: %w", id, err)
	}
	return m, nil
}

// learnStream has m learn from a trace document read from r: "events" and
// "structure"'s "nodes" element by element, everything else whole (see
// docs/trace.schema.json), so that what is held at once is one event or
// node.
func learnStream(m *sourceMask, r io.Reader) error {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 64<<10))
	add := func() error {
		var v any
		if err := dec.Decode(&v); err != nil {
			return err
		}
		m.add(v)
		return nil
	}
	return eachField(dec, func(key string) error {
		switch key {
		case "events":
			return eachElement(dec, add)
		case "structure":
			return eachField(dec, func(key string) error {
				if key == "nodes" {
					return eachElement(dec, add)
				}
				return add()
			})
		}
		return add()
	})
}

// eachField calls f with dec at each value of the JSON object dec reads
// next (nothing for null); f reads the value.
func eachField(dec *json.Decoder, f func(key string) error) error {
	return walk(dec, '{', func() error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		return f(key)
	})
}

// eachElement calls f with dec at each element of the JSON array dec
// reads next (nothing for null); f reads the element.
func eachElement(dec *json.Decoder, f func() error) error {
	return walk(dec, '[', f)
}

func walk(dec *json.Decoder, open json.Delim, each func() error) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		return nil
	}
	if tok != open {
		return fmt.Errorf("trace document: want %v, found %v", open, tok)
	}
	for dec.More() {
		if err := each(); err != nil {
			return err
		}
	}
	_, err = dec.Token()
	return err
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
