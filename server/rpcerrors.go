package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

// rpcCode is the JSON-RPC error code (and data) a response is due.
type rpcCode struct {
	code int
	data any
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
// found as the client's protocol version has it.
func protocolCode(ctx context.Context, msg any, err error) (rpcCode, bool) {
	switch {
	case errors.Is(err, mcp.ErrInvalidParams):
		return rpcCode{code: mcp.INVALID_PARAMS}, true
	case errors.Is(err, mcpserver.ErrResourceNotFound):
		code := rpcCode{code: mcp.RESOURCE_NOT_FOUND}
		if mcp.IsModernProtocol(mcpserver.RequestProtocolVersion(ctx)) {
			code.code = mcp.INVALID_PARAMS
		}
		if req, ok := msg.(*mcp.ReadResourceRequest); ok && req != nil {
			code.data = map[string]any{"uri": req.Params.URI}
		}
		return code, true
	}
	return rpcCode{}, false
}
