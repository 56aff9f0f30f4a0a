package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// envelopeError says what is wrong with the shape of a JSON-RPC message
// that parses as JSON, for the transports to answer with -32600 (Invalid
// Request) before mcp-go sees it; "" when its shape is fine or when it is
// not JSON at all (mcp-go answers that with -32700 itself). JSON nested
// deeper than encoding/json reads is answered here too (errTooDeep). id is the
// message's id when it has a usable one, else null.
//
// mcp-go answers a batch, or a message that is JSON but not an object,
// with -32700 (parse error), which tells the client its bytes were broken;
// takes "id": null as a notification, so the client waits forever for an
// answer; accepts objects, booleans and fractions as ids; and silently
// drops an object that is neither a request nor a response. MCP asks for
// string or integer ids, never null, and has no batches from 2025-06-18 on.
func envelopeError(body []byte) (id json.RawMessage, msg string) {
	null := json.RawMessage("null")
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] != '{' {
		switch {
		case !json.Valid(body):
			if tooDeep(json.Unmarshal(body, new(json.RawMessage))) {
				return null, errTooDeep
			}
			return nil, ""
		case body[0] == '[':
			return null, "JSON-RPC batches are not supported (MCP has none from protocol 2025-06-18 on): send each message on its own"
		}
		return null, "a JSON-RPC message is a JSON object"
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil { // it checks the JSON as it goes: no json.Valid first
		if tooDeep(err) {
			return null, errTooDeep
		}
		return nil, ""
	}
	rawID, hasID := m["id"]
	idOK := hasID && validID(rawID)
	if idOK {
		id = rawID
	} else {
		id = null
	}
	method, hasMethod := m["method"]
	_, hasResult := m["result"]
	_, hasError := m["error"]
	switch {
	case hasMethod && (len(method) == 0 || method[0] != '"'):
		return id, "\"method\" must be a string"
	case hasMethod && hasID && !idOK:
		return id, "\"id\" must be a string or an integer (a notification has no \"id\" at all)"
	case hasMethod && idOK && !exactID(rawID):
		// mcp-go reads a number id as a float64: the answer would
		// name another id (9007199254740993 as ...992), or an exponent.
		return id, "\"id\" must be a string or an integer of at most 2^53 (9007199254740992) either way: a larger one cannot be answered with the same id"
	case !hasMethod && !hasResult && !hasError:
		return id, "the message is neither a request (it has no \"method\") nor a response (it has no \"result\" or \"error\")"
	case !hasMethod && !idOK && !(hasError && isNull(rawID)):
		// A response names the request it answers; only an error
		// about a request whose id could not be read has id null.
		return id, "a response's \"id\" must be the string or integer of the request it answers"
	}
	return nil, ""
}

// errTooDeep answers a message nested deeper than encoding/json reads
// (10000 levels), which mcp-go answered -32700 "request body is not valid
// json" although it may well be valid.
const errTooDeep = "the message is nested too deeply: its JSON goes more than 10000 levels deep, deeper than this server " +
	"reads (a JSON-RPC message for MCP needs a few dozen at most)"

// tooDeep reports whether err is encoding/json's refusal of a value nested
// deeper than it reads. It has no error of its own for that, only the
// syntax error's text.
func tooDeep(err error) bool {
	var se *json.SyntaxError
	return errors.As(err, &se) && strings.Contains(se.Error(), "exceeded max depth")
}

// validID reports whether raw is an id MCP allows: a string, or a number
// without a fraction or exponent.
func validID(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return false
	}
	switch c := raw[0]; {
	case c == '"':
		return true
	case c == '-' || (c >= '0' && c <= '9'):
		return !bytes.ContainsAny(raw, ".eE")
	}
	return false
}

// exactID reports whether a valid id reads back as itself: a string, or
// an integer no larger than 2^53 either way, which a float64 holds exactly.
func exactID(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	if raw[0] == '"' {
		return true
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	return err == nil && n <= 1<<53 && n >= -(1<<53)
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }
