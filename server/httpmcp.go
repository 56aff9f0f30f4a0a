package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// The streamable HTTP side of what mcp-go leaves to us:
//   - a cancelled request gets no response: the POST carrying
//     notifications/cancelled marks the exchange of the request it names,
//     and that request's response writer then drops the response;
//   - the progress and log notifications a request sends go out on its own
//     POST stream, written by its handler (postStream.notify), before its
//     response: mcp-go would hand them to whichever of the session's
//     streams takes them first (another request's POST stream, which MCP
//     2025-06-18 says should carry only what relates to its request, or
//     the GET stream, which the client reads apart from the response), and
//     one taken by this POST's forwarder as the handler returns is dropped
//     (the response closes the stream first);
//   - the body is read here, capped, before mcp-go (which reads all of it)
//     sees the request.

// mcpHandler wraps mcp-go's streamable HTTP server.
func (s *Server) mcpHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session := r.Header.Get("Mcp-Session-Id")
		if v := r.Header.Get("Mcp-Protocol-Version"); v != "" && !mcp.IsValidProtocolVersion(v) {
			// The spec wants 400 for a version the server does not speak.
			// mcp-go takes any header sorting after 2026-07-28 ("x") for
			// the stateless protocol, and answers a GET or DELETE with it
			// 405 and a POST with an error about _meta.
			unsupportedVersion(w, r, v)
			return
		}
		mw := &mcpWriter{ResponseWriter: w, s: s, session: session}
		if r.Method == http.MethodGet && !mcp.IsModernProtocol(r.Header.Get("Mcp-Protocol-Version")) {
			// mcp-go opens a stream for any GET, making up a session (and
			// taking a place among the capped ones, ending the least
			// recently used real session) when none is named, and
			// registering whatever id is named: the stream is only for
			// sessions that initialize made. (The modern protocol has no
			// GET stream: mcp-go refuses those itself.)
			if session == "" {
				writeRPCError(w, http.StatusBadRequest, -32600,
					"GET /mcp opens the event stream of a session: send the Mcp-Session-Id header that initialize returned")
				return
			}
			if err := s.validateSession(session); err != nil {
				writeRPCError(w, http.StatusNotFound, -32600, err.Error())
				return
			}
			// Open while mcp-go serves it: sampling requests go out on
			// it alone, and wait for one (samplingPolicy.request).
			defer s.getStreams.opened(session)()
		}
		if r.Method == http.MethodPost {
			body, err := readBody(r, s.cfg.MaxBodyBytes)
			if err != nil {
				status := http.StatusBadRequest
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					status = http.StatusRequestEntityTooLarge
					err = errors.New("request body is larger than " + strconv.FormatInt(s.cfg.MaxBodyBytes, 10) +
						" bytes (server.max_body_bytes)")
				}
				writeRPCError(w, status, -32600, err.Error())
				return
			}
			if id, msg := envelopeError(body); msg != "" {
				writeRPCErrorID(w, http.StatusBadRequest, -32600, id, msg)
				return
			}
			var m wireMessage
			parsed := json.Unmarshal(body, &m) == nil
			if parsed && !s.sessionFits(w, r, session, body, m) {
				return
			}
			mw.codes = &rpcCodes{}
			r = r.WithContext(context.WithValue(r.Context(), postStreamKey{}, mw))
			// Only stateful sessions send notifications/cancelled; a
			// stateless (2026-07-28) client cancels by closing its stream,
			// and without a session id its request ids are not unique.
			if session != "" && parsed {
				switch {
				case m.Method == "notifications/cancelled":
					s.exchanges.cancel(session, idKey(m.Params.RequestID))
				case m.Method == "tools/call" && len(m.ID) > 0:
					key := sessionKey(session, idKey(m.ID))
					ex := s.exchanges.add(key)
					defer s.exchanges.remove(key, ex)
					mw.ex = ex
				}
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		if r.Method == http.MethodDelete && !mcp.IsModernProtocol(r.Header.Get("Mcp-Protocol-Version")) {
			// mcp-go answers 200 to a DELETE naming no session, or one
			// that never existed or already ended.
			if session == "" {
				writeRPCError(w, http.StatusBadRequest, -32600,
					"DELETE /mcp ends a session: send the Mcp-Session-Id header that initialize returned")
				return
			}
			if err := s.validateSession(session); err != nil {
				writeRPCError(w, http.StatusNotFound, -32600, err.Error())
				return
			}
			// The session's requests in progress end with it.
			defer s.mcpSess.cancelRequests(session)
		}
		if r.Method == http.MethodPost && session != "" {
			// A session is not idle while a request of its is in progress,
			// and a request ends when its session does (cancelRequests).
			ctx, cancel := context.WithCancel(r.Context())
			defer cancel()
			defer s.mcpSess.enter(session, cancel)()
			r = r.WithContext(ctx)
		}
		s.stream.ServeHTTP(mw, r)
	})
}

// sessionFits checks the session a POST names, as the streamable HTTP
// transport wants: a message other than initialize without an
// Mcp-Session-Id is a bad request (400; mcp-go answers 404, which tells
// the client its session ended, so it initializes again and again), an
// unknown or ended session is 404. Both get a JSON-RPC error saying what
// to do. Stateless (2026-07-28) requests carry no session and pass, and
// so do the client's responses (sampling), which mcp-go checks itself.
//
// An initialize naming a live session is refused here, with 400 and
// -32600 as the TypeScript SDK's server answers ("already initialized"),
// before mcp-go sees it: mcp-go starts a new session for every initialize,
// whatever the header says, and that session, never used, would count
// toward server.max_sessions until the idle sweep (at the cap, ending the
// least recently used real session to make room for it). One naming a
// session that has ended (404) is a client starting over: it gets its new
// session.
// It answers the request and returns false when the session does not fit.
func (s *Server) sessionFits(w http.ResponseWriter, r *http.Request, session string, body []byte, m wireMessage) bool {
	if m.Method == string(mcp.MethodInitialize) {
		if session == "" || modernRequest(r, body) || s.validateSession(session) != nil {
			return true
		}
		id := m.ID
		if len(id) == 0 {
			id = json.RawMessage("null")
		}
		writeRPCErrorID(w, http.StatusBadRequest, -32600, id, "session "+session+" is already initialized: send "+
			"initialize without the Mcp-Session-Id header to start a new session (and DELETE the old one when done with it)")
		return false
	}
	if m.Method == "" || modernRequest(r, body) {
		return true
	}
	if session == "" {
		writeRPCError(w, http.StatusBadRequest, -32600,
			"missing Mcp-Session-Id header: send the session id that initialize returned with every later request")
		return false
	}
	if err := s.validateSession(session); err != nil {
		writeRPCError(w, http.StatusNotFound, -32600, err.Error())
		return false
	}
	return true
}

// modernRequest reports whether a POST speaks protocol 2026-07-28 or later
// (no sessions), by its header or its _meta, as mcp-go decides.
func modernRequest(r *http.Request, body []byte) bool {
	if mcp.IsModernProtocol(r.Header.Get("Mcp-Protocol-Version")) {
		return true
	}
	var w struct {
		Params struct {
			Meta *mcp.Meta `json:"_meta"`
		} `json:"params"`
	}
	return json.Unmarshal(body, &w) == nil && mcp.IsModernProtocol(w.Params.Meta.ProtocolVersion())
}

// unsupportedVersion answers a request whose Mcp-Protocol-Version header
// names a version this server does not speak: 400 with the JSON-RPC error
// the stateless protocol defines (UNSUPPORTED_PROTOCOL_VERSION), which
// lists the versions it does speak, and the request's id where it has one.
func unsupportedVersion(w http.ResponseWriter, r *http.Request, v string) {
	var id json.RawMessage
	if r.Method == http.MethodPost {
		if body, err := readBody(r, 1<<20); err == nil {
			var m wireMessage
			if json.Unmarshal(body, &m) == nil {
				id = m.ID
			}
		}
	}
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	e := mcp.UnsupportedProtocolVersionError{Version: v, Supported: mcp.ValidProtocolVersions}.JSONRPCError()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": id, "error": e.Error})
}

// readBody reads at most limit bytes of r's body.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	return io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
}

// writeRPCError answers with a JSON-RPC error object (id null).
func writeRPCError(w http.ResponseWriter, status, code int, msg string) {
	writeRPCErrorID(w, status, code, json.RawMessage("null"), msg)
}

// writeRPCErrorID answers with a JSON-RPC error object for the request id.
func writeRPCErrorID(w http.ResponseWriter, status, code int, id json.RawMessage, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": id,
		"error": map[string]any{"code": code, "message": msg}})
}

// mcpWriter is the response writer mcp-go gets.
type mcpWriter struct {
	http.ResponseWriter
	s       *Server
	session string
	ex      *exchange
	codes   *rpcCodes // error codes due for this POST's responses

	// wmu serialises writes: mcp-go's notification forwarder writes from
	// its goroutine, notify from the handler's.
	wmu         sync.Mutex
	wroteHeader bool
	dropping    bool
}

type postStreamKey struct{}

// postStream returns the writer of the POST whose request ctx handles.
func postStream(ctx context.Context) *mcpWriter {
	w, _ := ctx.Value(postStreamKey{}).(*mcpWriter)
	return w
}

// notify writes a notification on this POST's stream now, upgrading the
// response to an event stream; mcp-go is told, so the response follows as
// an event too. Only a handler of this POST's request calls it.
func (w *mcpWriter) notify(cs mcpserver.ClientSession, method string, params map[string]any) error {
	b, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": method, "params": params})
	if err != nil {
		return err
	}
	if u, ok := cs.(mcpserver.SessionWithStreamableHTTPConfig); ok {
		u.UpgradeToSSEWhenReceiveNotification()
	}
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if !w.wroteHeader {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.writeHeader(http.StatusOK)
	}
	if _, err := w.write([]byte("event: message\ndata: " + string(b) + "\n\n")); err != nil {
		return err
	}
	w.flush()
	return nil
}

func (w *mcpWriter) WriteHeader(code int) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.writeHeader(code)
}

func (w *mcpWriter) writeHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader = true
	if w.ex != nil && w.ex.cancelled.Load() && w.Header().Get("Content-Type") == "application/json" {
		// The request was cancelled and mcp-go is about to send its JSON
		// response: answer with an empty event stream instead.
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.dropping = true
		w.ResponseWriter.WriteHeader(http.StatusOK)
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *mcpWriter) Write(p []byte) (int, error) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	return w.write(p)
}

func (w *mcpWriter) write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.writeHeader(http.StatusOK)
	}
	if w.dropping {
		return len(p), nil
	}
	if w.ex != nil && w.ex.cancelled.Load() && isResponse(p) {
		return len(p), nil // the response to a cancelled request
	}
	if w.codes != nil {
		if q, changed := w.codes.rewrite(p); changed {
			if _, err := w.ResponseWriter.Write(q); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	n, err := w.ResponseWriter.Write(p)
	if err == nil {
		w.s.sampleWatch.observe(p)
	}
	return n, err
}

// isResponse reports whether an SSE event or JSON body carries a JSON-RPC
// response (no method).
func isResponse(p []byte) bool {
	data := p
	if i := bytes.Index(p, []byte("data: ")); i >= 0 {
		data = p[i+len("data: "):]
	}
	return !bytes.Contains(data, []byte(`"method"`)) && bytes.Contains(data, []byte(`"id"`))
}

func (w *mcpWriter) Flush() {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.flush()
}

func (w *mcpWriter) flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *mcpWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// exchange is one tools/call in flight over HTTP.
type exchange struct{ cancelled atomic.Bool }

type exchanges struct {
	mu sync.Mutex
	m  map[string]*exchange
}

func newExchanges() *exchanges { return &exchanges{m: map[string]*exchange{}} }

// sessionKey keys a request id by its MCP session.
func sessionKey(session, id string) string { return session + "\x00" + id }

func (e *exchanges) add(key string) *exchange {
	ex := &exchange{}
	e.mu.Lock()
	e.m[key] = ex
	e.mu.Unlock()
	return ex
}

func (e *exchanges) remove(key string, ex *exchange) {
	e.mu.Lock()
	if e.m[key] == ex {
		delete(e.m, key)
	}
	e.mu.Unlock()
}

func (e *exchanges) cancel(session, id string) {
	e.mu.Lock()
	if ex, ok := e.m[sessionKey(session, id)]; ok {
		ex.cancelled.Store(true)
	}
	e.mu.Unlock()
}
