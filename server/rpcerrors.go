package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// mcp-go answers every error a prompt or resource handler returns with
// JSON-RPC -32603 (internal error), whatever the error says. The spec asks
// for -32602 (invalid params) when a prompt's required argument is missing
// or an argument is bad, and for -32002 (resource not found, with the URI
// in data) when resources/read names a resource that does not exist; from
// protocol 2026-07-28 on that is -32602 too. A client tells "fix your
// request" from "the server broke" by the code, so Ponder's handlers wrap
// mcp.ErrInvalidParams or mcpserver.ErrResourceNotFound, mcp-go's OnError
// hook records the code due for the request id, and the transport writer
// (HTTP or stdio) puts it in the error response as it goes out.

// rpcCode is the JSON-RPC error code (and data) a response is due, and
// the message to send instead of mcp-go's when it is not "".
type rpcCode struct {
	code    int
	data    any
	message string
}

// rpcCodes holds the codes due for requests whose responses have not been
// written yet: one per HTTP POST, one per stdio connection.
type rpcCodes struct {
	mu sync.Mutex
	m  map[string]rpcCode // idKey(request id) -> code
}

// rpcCodesFrom returns the codes of the transport that carries ctx's
// request: its POST's, or its stdio connection's.
func rpcCodesFrom(ctx context.Context) *rpcCodes {
	if w := postStream(ctx); w != nil {
		return w.codes
	}
	if t := stdioFrom(ctx); t != nil {
		return &t.codes
	}
	return nil
}

func (c *rpcCodes) set(id any, code rpcCode) {
	raw, err := json.Marshal(id)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]rpcCode{}
	}
	c.m[idKey(raw)] = code
}

// take returns and forgets the code due for id.
func (c *rpcCodes) take(id json.RawMessage) (rpcCode, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := idKey(id)
	code, ok := c.m[k]
	if ok {
		delete(c.m, k)
	}
	return code, ok
}

func (c *rpcCodes) pending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m) > 0
}

// rewrite returns p, one message as written by mcp-go (a JSON body or
// line, or an SSE event), with the code due put in its error response, and
// whether it changed p.
func (c *rpcCodes) rewrite(p []byte) ([]byte, bool) {
	if !c.pending() || !bytes.Contains(p, []byte(`"error"`)) {
		return p, false
	}
	if i := bytes.Index(p, []byte("data: ")); i >= 0 {
		start := i + len("data: ")
		end := start + bytes.IndexByte(p[start:], '\n')
		if end < start {
			end = len(p)
		}
		msg, ok := c.rewriteMessage(p[start:end])
		if !ok {
			return p, false
		}
		out := append([]byte{}, p[:start]...)
		out = append(out, msg...)
		return append(out, p[end:]...), true
	}
	body := bytes.TrimRight(p, " \r\n")
	msg, ok := c.rewriteMessage(body)
	if !ok {
		return p, false
	}
	return append(msg, p[len(body):]...), true
}

func (c *rpcCodes) rewriteMessage(b []byte) ([]byte, bool) {
	var m struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   *struct {
			Code    int             `json:"code"`
			Message string          `json:"message"`
			Data    json.RawMessage `json:"data,omitempty"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &m) != nil || m.Error == nil || len(m.ID) == 0 {
		return nil, false
	}
	code, ok := c.take(m.ID)
	if !ok {
		return nil, false
	}
	type rpcError struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    any    `json:"data,omitempty"`
	}
	e := rpcError{Code: code.code, Message: m.Error.Message, Data: code.data}
	if code.message != "" {
		e.Message = code.message
	}
	if e.Data == nil && len(m.Error.Data) > 0 {
		e.Data = m.Error.Data
	}
	out, err := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   rpcError        `json:"error"`
	}{m.JSONRPC, m.ID, e})
	if err != nil {
		return nil, false
	}
	return out, true
}

// protocolCode returns the code a failed request is due when its error says
// the request was at fault: -32602 for invalid params, and resource not
// found as the client's protocol version has it. Where mcp-go's message
// does not say what to change, the code comes with one that does.
func protocolCode(ctx context.Context, msg any, err error) (rpcCode, bool) {
	var unparsable *mcpserver.UnparsableMessageError
	switch {
	case errors.As(err, &unparsable):
		// mcp-go answers params it cannot decode into the method's types
		// (a prompt argument that is not a string, a number for a URI)
		// with -32600, as if the message were no request at all. The
		// envelope was checked before mcp-go saw it (envelope.go), so what
		// failed is the params: -32602.
		return rpcCode{code: mcp.INVALID_PARAMS, message: paramsProblem(unparsable)}, true
	case errors.Is(err, mcp.ErrInvalidParams):
		return rpcCode{code: mcp.INVALID_PARAMS}, true
	case errors.Is(err, mcpserver.ErrPromptNotFound):
		code := rpcCode{code: mcp.INVALID_PARAMS}
		if req, ok := msg.(*mcp.GetPromptRequest); ok && req != nil && req.Params.Name == "" {
			code.message = "prompts/get: params.name is required: the name of a prompt that prompts/list returns"
		}
		return code, true
	case errors.Is(err, mcpserver.ErrResourceNotFound):
		req, _ := msg.(*mcp.ReadResourceRequest)
		if req != nil && req.Params.URI == "" {
			// mcp-go looks the empty URI up, and answers that no
			// resource has it (-32002, data.uri ""): the request lacks
			// a parameter, which is -32602 in every protocol version.
			return rpcCode{code: mcp.INVALID_PARAMS, message: "resources/read: params.uri is required: the URI of a " +
				"resource that resources/list returns, or one made from a template of resources/templates/list " +
				"(such as ponder://traces/<trace id>)"}, true
		}
		code := rpcCode{code: mcp.RESOURCE_NOT_FOUND}
		if mcp.IsModernProtocol(mcpserver.RequestProtocolVersion(ctx)) {
			code.code = mcp.INVALID_PARAMS
		}
		if req != nil {
			code.data = map[string]any{"uri": req.Params.URI}
		}
		return code, true
	}
	return rpcCode{}, false
}

// paramsProblem says which of a request's params could not be decoded
// and what it must be, where mcp-go names Go types ("unparsable
// prompts/get request: json: cannot unmarshal number into Go struct field
// GetPromptParams.params.arguments of type string").
func paramsProblem(e *mcpserver.UnparsableMessageError) string {
	method := string(e.GetMethod())
	if e.GetMethod() == mcp.MethodPromptsGet {
		if name, got, ok := nonStringArgument(e.GetMessage()); ok {
			return fmt.Sprintf("prompts/get: argument %q must be a string, got %s (prompt arguments are all strings: "+
				"send numbers and lists as text)", name, got)
		}
	}
	var te *json.UnmarshalTypeError
	if errors.As(e, &te) && te.Field != "" {
		return fmt.Sprintf("%s: invalid params: %s", method, jsonErrText(te))
	}
	inner := errors.Unwrap(e)
	if inner == nil {
		inner = e
	}
	return fmt.Sprintf("%s: invalid params: %s", method, jsonErrText(inner))
}

// nonStringArgument finds the first (by name) of a prompts/get request's
// arguments that is not a string, and the JSON type it is instead; the
// decoder's error names params.arguments, not the argument.
func nonStringArgument(message json.RawMessage) (name, got string, ok bool) {
	var m struct {
		Params struct {
			Arguments map[string]json.RawMessage `json:"arguments"`
		} `json:"params"`
	}
	if json.Unmarshal(message, &m) != nil {
		return "", "", false
	}
	names := slices.Sorted(maps.Keys(m.Params.Arguments))
	for _, n := range names {
		v := bytes.TrimSpace(m.Params.Arguments[n])
		if len(v) > 0 && v[0] != '"' {
			return n, jsonKind(v), true
		}
	}
	return "", "", false
}

// jsonKind names the JSON type of a value, as a client would.
func jsonKind(v json.RawMessage) string {
	switch v[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "true or false"
	case 'n':
		return "null"
	}
	return "a number"
}

// listMethods are the list requests that take a pagination cursor.
var listMethods = []mcp.MCPMethod{mcp.MethodToolsList, mcp.MethodPromptsList, mcp.MethodResourcesList,
	mcp.MethodResourcesTemplatesList}

// addRefusals has mcp-go refuse the requests refuseRequest names.
func (s *Server) addRefusals(hooks *mcpserver.Hooks) {
	hooks.AddOnRequestInitialization(s.refuseRequest)
	hooks.AddAfterInitialize(func(ctx context.Context, _ any, _ *mcp.InitializeRequest, _ *mcp.InitializeResult) {
		if t := stdioFrom(ctx); t != nil {
			t.initialized.Store(true)
		}
	})
}

// refuseRequest is mcp-go's OnRequestInitialization hook: it refuses,
// before mcp-go handles them, requests mcp-go would wrongly accept:
//
//   - a second initialize on a session (on stdio the connection; over HTTP
//     sessionFits refuses one naming a live Mcp-Session-Id): mcp-go
//     initializes again, replacing the client's capabilities (sampling
//     among them) midway. The answer is -32600, as the TypeScript SDK's
//     server gives ("Invalid Request: Server already initialized");
//   - a list request with a cursor: Ponder's lists come whole, with no
//     nextCursor (newMCPServer sets no pagination limit), so a cursor was
//     never issued by this server. mcp-go answered one that is not base64
//     with "illegal base64 data at input byte 0", and listed the items
//     after any other as if it were a name: a cursor from another server
//     or a stale listing got part of the list, or none. -32602, which the
//     spec gives an invalid cursor.
//
// mcp-go answers the error returned with -32600; a -32602 is put in by
// the transport's writer (rpcCodes).
func (s *Server) refuseRequest(ctx context.Context, id any, message any) error {
	raw, ok := message.(json.RawMessage)
	if !ok || !(bytes.Contains(raw, []byte(`"initialize"`)) || bytes.Contains(raw, []byte(`"cursor"`))) {
		return nil // the cheap test first: this runs for every request
	}
	var m struct {
		Method mcp.MCPMethod `json:"method"`
		Params struct {
			Cursor json.RawMessage `json:"cursor"`
		} `json:"params"`
	}
	if json.Unmarshal(raw, &m) != nil {
		return nil // mcp-go answers what it cannot read
	}
	switch {
	case m.Method == mcp.MethodInitialize:
		return s.refuseReinitialize(ctx)
	case slices.Contains(listMethods, m.Method) && len(m.Params.Cursor) > 0:
		var cursor string
		if json.Unmarshal(m.Params.Cursor, &cursor) != nil || cursor == "" {
			return nil // not a string: mcp-go's decoder refuses it (protocolCode); "": no cursor
		}
		msg := fmt.Sprintf("%s: invalid cursor %q: this server did not issue it (its lists come whole, with no "+
			"nextCursor); list again without a cursor", m.Method, clipBytes(cursor, 64))
		if c := rpcCodesFrom(ctx); c != nil {
			c.set(id, rpcCode{code: mcp.INVALID_PARAMS})
		}
		return errors.New(msg)
	}
	return nil
}

// refuseReinitialize refuses an initialize on a session that has had one.
func (s *Server) refuseReinitialize(ctx context.Context) error {
	if postStream(ctx) != nil {
		// Over HTTP, an initialize naming a live session was refused
		// before mcp-go saw it (sessionFits), or mcp-go would have made a
		// session for it already.
		return nil
	}
	already := "this connection is already initialized: initialize is sent once, first; to start over, " +
		"close the connection (stdin) and start the server again"
	if t := stdioFrom(ctx); t != nil {
		// Known by the connection: mcp-go has one stdio session for the
		// whole process, whose Initialized() outlives the connection
		// (ServeStdio can be called again).
		if t.initialized.Load() {
			return errors.New(already)
		}
		return nil
	}
	if cs := mcpserver.ClientSessionFromContext(ctx); cs != nil && cs.Initialized() {
		return errors.New(already) // in process
	}
	return nil
}
