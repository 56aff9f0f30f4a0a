package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strconv"
	"sync"
	"time"
)

// stdioTransport sits between mcp-go's stdio server and the real stdin and
// stdout. It does what mcp-go leaves to us on stdio:
//   - it writes progress notifications synchronously (mcp-go sends
//     notifications from another goroutine, so one sent just before a
//     handler returns can reach the client after the response);
//   - it drops the response to a request the client cancelled
//     (notifications/cancelled): the spec says none is sent, mcp-go sends
//     one anyway.
//
// It watches the lines read (requests in flight, cancellations) and the
// messages written (responses), one JSON-RPC message per line each way.
type stdioTransport struct {
	in      io.Reader
	out     io.Writer
	maxLine int

	wmu sync.Mutex // serialises writes to out

	codes rpcCodes // error codes due for responses not yet written

	samples *sampleWatch // learns the ids of sampling requests written

	mu       sync.Mutex
	inflight map[string]bool // request id -> cancelled
	partial  []byte          // an incomplete line read so far
	skipping bool            // the current line is too long to inspect
}

type stdioKey struct{}

func stdioFrom(ctx context.Context) *stdioTransport {
	t, _ := ctx.Value(stdioKey{}).(*stdioTransport)
	return t
}

func newStdioTransport(in io.Reader, out io.Writer, maxLine int64) *stdioTransport {
	if maxLine <= 0 {
		maxLine = 4 << 20
	}
	return &stdioTransport{in: in, out: out, maxLine: int(maxLine), inflight: map[string]bool{}}
}

func (t *stdioTransport) reader() io.Reader { return stdioReader{t} }
func (t *stdioTransport) writer() io.Writer { return stdioWriter{t} }

type stdioReader struct{ t *stdioTransport }

// Read passes the input through, inspecting each complete line before
// mcp-go sees it, so a cancellation is known before it is acted on.
func (r stdioReader) Read(p []byte) (int, error) {
	n, err := r.t.in.Read(p)
	if n > 0 {
		r.t.scan(p[:n])
	}
	return n, err
}

func (t *stdioTransport) scan(b []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if !t.skipping {
				t.partial = append(t.partial, b...)
				if len(t.partial) > t.maxLine {
					t.partial, t.skipping = nil, true
				}
			}
			return
		}
		if !t.skipping {
			line := b[:i]
			if len(t.partial) > 0 {
				line = append(t.partial, line...)
			}
			t.inspectLocked(line)
		}
		t.partial, t.skipping = t.partial[:0], false
		b = b[i+1:]
	}
}

// wireMessage is what the transports look at in a JSON-RPC message.
type wireMessage struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params struct {
		RequestID     json.RawMessage `json:"requestId"`
		ProgressToken json.RawMessage `json:"progressToken"`
		Progress      *float64        `json:"progress"`
	} `json:"params"`
}

func (t *stdioTransport) inspectLocked(line []byte) {
	if !bytes.Contains(line, []byte(`"method"`)) {
		return // a response to one of our requests (sampling)
	}
	var m wireMessage
	if json.Unmarshal(line, &m) != nil {
		return
	}
	switch {
	case m.Method == "tools/call" && len(m.ID) > 0:
		t.inflight[idKey(m.ID)] = false
	case m.Method == "notifications/cancelled":
		k := idKey(m.Params.RequestID)
		if _, ok := t.inflight[k]; ok {
			t.inflight[k] = true
		}
	}
}

type stdioWriter struct{ t *stdioTransport }

// Write receives one message per call from mcp-go. A response to a
// cancelled request is dropped.
func (w stdioWriter) Write(p []byte) (int, error) {
	t := w.t
	if t.cancelledResponse(p) {
		return len(p), nil
	}
	n := len(p)
	p, _ = t.codes.rewrite(p)
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if _, err := t.out.Write(p); err != nil {
		return 0, err
	}
	t.samples.observe(p)
	return n, nil
}

func (t *stdioTransport) cancelledResponse(p []byte) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.inflight) == 0 || bytes.Contains(p, []byte(`"method"`)) {
		return false
	}
	var m wireMessage
	if json.Unmarshal(p, &m) != nil || len(m.ID) == 0 {
		return false
	}
	k := idKey(m.ID)
	cancelled, ok := t.inflight[k]
	if !ok {
		return false
	}
	delete(t.inflight, k)
	return cancelled
}

// notify writes a notification now, in order with everything else
// written.
func (t *stdioTransport) notify(method string, params map[string]any) error {
	b, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": method, "params": params})
	if err != nil {
		return err
	}
	b = append(b, '\n')
	t.wmu.Lock()
	defer t.wmu.Unlock()
	_, err = t.out.Write(b)
	return err
}

// awaitRead returns when the client has read everything written so far,
// when out is a pipe (at most max), else after gap; or when ctx ends.
func (t *stdioTransport) awaitRead(ctx context.Context, gap, max time.Duration) {
	if _, ok := unreadBytes(t.out); !ok {
		select {
		case <-time.After(gap):
		case <-ctx.Done():
		}
		return
	}
	deadline := time.Now().Add(max)
	for {
		n, ok := unreadBytes(t.out)
		if !ok || n == 0 || time.Now().After(deadline) {
			return
		}
		select {
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
			return
		}
	}
}

// idKey canonicalises a JSON-RPC id: numbers as mcp-go writes them back,
// strings quoted.
func idKey(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return strconv.Quote(s)
		}
		return string(raw)
	}
	var f float64
	if json.Unmarshal(raw, &f) == nil {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return string(raw)
}
