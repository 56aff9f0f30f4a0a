package server

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// Messages that are JSON but not JSON-RPC requests MCP allows are answered
// with -32600 (Invalid Request) naming what is wrong, over HTTP and stdio
// alike; mcp-go said -32700 (parse error) to a batch, waited silently on
// "id": null (a request it took for a notification) and on an object that
// is neither a request nor a response, and answered object and fraction ids.
var badEnvelopes = []struct {
	name, body string
	id         any // the id the error answers with
	want       string
}{
	{"batch", `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, nil, "batches are not supported"},
	{"empty batch", `[]`, nil, "batches are not supported"},
	{"not an object", `"ping"`, nil, "is a JSON object"},
	{"null id", `{"jsonrpc":"2.0","id":null,"method":"ping"}`, nil, `"id" must be a string or an integer`},
	{"object id", `{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}`, nil, `"id" must be a string or an integer`},
	{"boolean id", `{"jsonrpc":"2.0","id":true,"method":"ping"}`, nil, `"id" must be a string or an integer`},
	{"fraction id", `{"jsonrpc":"2.0","id":1.5,"method":"ping"}`, nil, `"id" must be a string or an integer`},
	{"method not a string", `{"jsonrpc":"2.0","id":6,"method":5}`, float64(6), `"method" must be a string`},
	{"no method, result or error", `{"jsonrpc":"2.0","id":5}`, float64(5), "neither a request"},
	// mcp-go reads number ids as float64s: it answered 9007199254740993
	// as 9007199254740992 and a longer one in exponent form, ids the
	// client never sent. The error names the id as the client wrote it.
	{"id beyond 2^53", `{"jsonrpc":"2.0","id":9007199254740993,"method":"ping"}`, float64(9007199254740993), "at most 2^53"},
	{"id beyond int64", `{"jsonrpc":"2.0","id":-12345678901234567890123,"method":"ping"}`, float64(-12345678901234567890123), "at most 2^53"},
	{"response with null id", `{"jsonrpc":"2.0","id":null,"result":{}}`, nil, `a response's "id"`},
	// Valid JSON deeper than Go's decoder reads (10000 levels) was
	// answered -32700 "request body is not valid json".
	{"nested too deeply", `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":` + deep + `}}`, nil, "nested too deeply"},
	{"nested too deeply, not an object", deep, nil, "nested too deeply"},
}

// deep is valid JSON 100,000 levels deep.
var deep = strings.Repeat("[", 100000) + strings.Repeat("]", 100000)

func TestBadEnvelopesHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.rpc(t)
	for _, tc := range badEnvelopes {
		t.Run(tc.name, func(t *testing.T) {
			msgs, resp := c.postRaw([]byte(tc.body))
			if resp.StatusCode != http.StatusBadRequest || len(msgs) != 1 {
				t.Fatalf("want one 400 error response, got %d %v", resp.StatusCode, msgs)
			}
			checkInvalidRequest(t, msgs[0], tc.id, tc.want)
		})
	}
	// Requests MCP allows still pass: string and integer ids, and a
	// notification (no id).
	for _, body := range []string{`{"jsonrpc":"2.0","id":"a-1","method":"ping"}`, `{"jsonrpc":"2.0","id":-7,"method":"ping"}`, `{"jsonrpc":"2.0","id":-9007199254740992,"method":"ping"}`} {
		if msgs, resp := c.postRaw([]byte(body)); resp.StatusCode != http.StatusOK || len(msgs) != 1 || msgs[0]["result"] == nil {
			t.Errorf("%s: got %d %v", body, resp.StatusCode, msgs)
		}
	}
	if _, resp := c.postRaw([]byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)); resp.StatusCode != http.StatusAccepted {
		t.Errorf("notification: got %d", resp.StatusCode)
	}
}

func TestBadEnvelopesStdio(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := startStdio(t, e)
	for _, tc := range badEnvelopes {
		c.sendRaw(tc.body)
		select {
		case m := <-c.lines:
			t.Run(tc.name, func(t *testing.T) { checkInvalidRequest(t, m, tc.id, tc.want) })
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no answer", tc.name)
		}
	}
	// Still answering.
	c.send(map[string]any{"jsonrpc": "2.0", "id": 99, "method": "ping"})
	c.until(99)
}

func checkInvalidRequest(t *testing.T, m map[string]any, id any, want string) {
	t.Helper()
	errObj, _ := m["error"].(map[string]any)
	msg, _ := errObj["message"].(string)
	if errObj == nil || errObj["code"] != float64(-32600) || !strings.Contains(msg, want) || m["id"] != id {
		t.Errorf("want -32600 containing %q with id %v, got %v", want, id, m)
	}
}

// An id too large to read back exactly is refused with the id as the
// client wrote it, so the client can match the error to its request.
func TestTooLargeIDAnsweredAsWritten(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"9007199254740993", "-9007199254740993", "12345678901234567890123"} {
		id, msg := envelopeError([]byte(`{"jsonrpc":"2.0","id":` + raw + `,"method":"ping"}`))
		if msg == "" || string(id) != raw {
			t.Errorf("id %s: answered as %s, %q", raw, id, msg)
		}
	}
	for _, raw := range []string{"9007199254740992", "-9007199254740992", "0", `"9007199254740993"`} {
		if _, msg := envelopeError([]byte(`{"jsonrpc":"2.0","id":` + raw + `,"method":"ping"}`)); msg != "" {
			t.Errorf("id %s refused: %s", raw, msg)
		}
	}
}
