package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// stdioTransport sits between mcp-go's stdio server and the real stdin and
// stdout. It does what mcp-go leaves to us on stdio:
//   - it caps one message at server.max_body_bytes, as HTTP caps a body:
//     mcp-go reads a line whole (bufio.Reader.ReadString), so a client
//     sending a 1 GB line would make it hold 1 GB. Lines reach mcp-go only
//     once complete and within the cap; a longer one is discarded as it
//     arrives (what it shows of itself, its id, kept in bounded memory)
//     and answered with an error (see overLong);
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
	log     zerolog.Logger

	wmu sync.Mutex // serialises writes to out

	codes rpcCodes // error codes due for responses not yet written

	samples *sampleWatch // learns the ids of sampling requests written

	// onEOF, when set, is called once as the reader meets the end of in,
	// before mcp-go is told and cancels the requests in flight.
	onEOF func()

	initialized atomic.Bool // an initialize succeeded: another is refused (refuseRequest)

	mu       sync.Mutex
	inflight map[string]bool // request id -> cancelled

	// The reader's state; only mcp-go's one reading goroutine touches it.
	buf      []byte     // what one Read of in returned
	line     []byte     // the current line so far, at most maxLine (+ one read)
	ready    []byte     // complete lines not yet handed to mcp-go
	skipping bool       // the current line is over the cap: its bytes are dropped
	members  memberScan // what the line being skipped shows of itself (its id)
	rerr     error      // what ended in
}

// stdioReadChunk is how much one Read of stdin asks for.
const stdioReadChunk = 64 << 10

type stdioKey struct{}

func stdioFrom(ctx context.Context) *stdioTransport {
	t, _ := ctx.Value(stdioKey{}).(*stdioTransport)
	return t
}

func newStdioTransport(in io.Reader, out io.Writer, maxLine int64) *stdioTransport {
	if maxLine <= 0 {
		maxLine = 4 << 20
	}
	return &stdioTransport{in: in, out: out, maxLine: int(maxLine), log: zerolog.Nop(), inflight: map[string]bool{}}
}

func (t *stdioTransport) reader() io.Reader { return stdioReader{t} }
func (t *stdioTransport) writer() io.Writer { return stdioWriter{t} }

type stdioReader struct{ t *stdioTransport }

// Read hands mcp-go complete lines only, each inspected first, so a
// cancellation is known before it is acted on and a line over the cap never
// reaches it.
func (r stdioReader) Read(p []byte) (int, error) {
	t := r.t
	for len(t.ready) == 0 {
		if t.rerr != nil {
			// mcp-go drops an unterminated last line; give it what
			// there is (within the cap) all the same.
			if len(t.line) > 0 && !t.skipping {
				t.ready, t.line = t.line, nil
				break
			}
			if t.onEOF != nil && errors.Is(t.rerr, io.EOF) {
				t.onEOF()
				t.onEOF = nil
			}
			return 0, t.rerr
		}
		if t.buf == nil {
			t.buf = make([]byte, stdioReadChunk)
		}
		n, err := t.in.Read(t.buf)
		t.scan(t.buf[:n])
		if err != nil {
			t.rerr = err
		}
	}
	n := copy(p, t.ready)
	t.ready = t.ready[n:]
	if len(t.ready) == 0 {
		t.ready = t.ready[:0:0] // let a drained line's memory go
	}
	return n, nil
}

// scan splits what was read into lines: complete ones within the cap go to
// ready, an over-long one is dropped as it arrives.
func (t *stdioTransport) scan(b []byte) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		seg := b
		if i >= 0 {
			seg = b[:i]
		}
		if !t.skipping {
			t.line = append(t.line, seg...)
			if len(t.line) > t.maxLine {
				// Its bytes are scanned as they pass, for an id that
				// may stand anywhere, even after a long "result".
				t.members = memberScan{}
				t.members.feed(t.line)
				t.line, t.skipping = nil, true
			}
		} else {
			t.members.feed(seg)
		}
		if i < 0 {
			return
		}
		b = b[i+1:]
		if t.skipping {
			t.skipping = false
			t.overLong()
			continue
		}
		if id, msg := envelopeError(t.line); msg != "" {
			t.refuse(id, msg)
			t.line = t.line[:0]
			continue
		}
		t.mu.Lock()
		t.inspectLocked(t.line)
		t.mu.Unlock()
		t.ready = append(append(t.ready, t.line...), '\n')
		t.line = t.line[:0]
	}
}

// overLong answers a line longer than the cap once all of it was read,
// from what memberScan saw in it. A request gets a -32600 error (JSON-RPC's
// Invalid Request, the code HTTP's 413 carries too) with its id, or id null
// where it shows none, after the line as a response follows its request. A
// response (a client's answer to a sampling request) cannot be answered:
// mcp-go is handed an error response with its id instead, so the waiting
// sampling call fails now, naming the setting, rather than at the solve's
// deadline.
func (t *stdioTransport) overLong() {
	id, isResponse := t.members.outcome()
	t.members = memberScan{}
	t.log.Warn().Int("limit", t.maxLine).Bool("response", isResponse).Str("id", string(id)).
		Msg("stdio: discarded a message longer than server.max_body_bytes")
	if isResponse {
		if len(id) == 0 {
			return
		}
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "error": map[string]any{
			"code": -32600, "message": "the client's response is larger than the limit of " +
				strconv.Itoa(t.maxLine) + " bytes (server.max_body_bytes)"}})
		t.ready = append(append(t.ready, b...), '\n')
		return
	}
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	t.refuse(id, "message is larger than the limit of "+strconv.Itoa(t.maxLine)+
		" bytes (server.max_body_bytes); it was discarded")
}

// refuse answers a message mcp-go is not handed with a -32600 error
// (JSON-RPC's Invalid Request).
func (t *stdioTransport) refuse(id json.RawMessage, msg string) {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "error": map[string]any{"code": -32600, "message": msg}})
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if _, err := t.out.Write(append(b, '\n')); err != nil {
		t.log.Debug().Err(err).Msg("stdio: write the refusal of a message")
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
