package embed

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/ponder-rlm/ponder/internal/text"
)

// endpointName is how messages name the embedding endpoint. Not its URL:
// these messages reach the clients of `ponder serve` (MCP tool results
// of ingest_documents and search_documents, a file's reason) and traces
// (a grounded search that failed), and the endpoint may be internal
// infrastructure they should not learn of. The URL goes to the debug log
// (the "endpoint" field), `ponder serve` logs it at start, and the
// command line adds it to its own message (Endpoint).
const endpointName = "the embedding endpoint"

// settingHint names the settings that say where the endpoint is.
const settingHint = "retrieval.embed_url (PONDER_EMBED_URL; default the LLM's PONDER_LLM_BASE_URL)"

// embedError is a failure of the endpoint: one line saying what failed
// and why, and what to change. It wraps ErrEmbedder and its cause, whose
// text (which names addresses) it does not show.
type embedError struct {
	what     string // what failed, naming the endpoint endpointName
	why      string // the cause, in parentheses with the tries
	attempts int    // tries made, shown when more than one
	detail   string // what the endpoint said (": ..."), after them
	hint     string // what to change
	cause    error
}

// Error reads "WHAT (WHY, N attempts)DETAIL: HINT".
func (e *embedError) Error() string {
	var paren []string
	if e.why != "" {
		paren = append(paren, e.why)
	}
	if e.attempts > 1 {
		paren = append(paren, fmt.Sprintf("%d attempts", e.attempts))
	}
	s := e.what
	if len(paren) > 0 {
		s += " (" + strings.Join(paren, ", ") + ")"
	}
	s += e.detail
	if e.hint != "" {
		s += ": " + e.hint
	}
	return s
}

func (e *embedError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrEmbedder}
	}
	return []error{ErrEmbedder, e.cause}
}

// endpointAddrs lists what names the endpoint in text: its URL (as given
// and without credentials), its origin (scheme and host: a proxy may name
// another path on it) and its host with the port. A host alone is
// listed only when it has a dot or a colon (a name like "embed", a
// compose service, is also a word of the messages). Longest first, so a
// URL is replaced whole before its host is.
func endpointAddrs(raw string, u *url.URL) []string {
	var out []string
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	add(strings.TrimRight(raw, "/"))
	add(strings.TrimRight(u.Redacted(), "/"))
	add(u.Scheme + "://" + u.Host)
	if strings.ContainsAny(u.Host, ".:") {
		add(u.Host)
	}
	if h := u.Hostname(); strings.ContainsAny(h, ".:") {
		add(h)
	}
	slices.SortStableFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// clean makes server or library text safe for a one-line message: no API
// key, no endpoint address, no newlines, bounded length.
func (e *OpenAI) clean(s string) string {
	if e.o.APIKey != "" {
		s = strings.ReplaceAll(s, e.o.APIKey, "[redacted]")
	}
	for _, addr := range e.addrs {
		s = strings.ReplaceAll(s, addr, endpointName)
	}
	return text.Clip(text.OneLine(s), 200)
}

// netText is the text of a network error without the addresses in it:
// a *url.Error repeats the whole URL, a *net.OpError names both ends of
// the connection ("dial tcp 10.0.0.5:8000: connect: connection refused"),
// a *net.DNSError the host and the resolver.
func netText(err error) string {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "lookup: " + dnsErr.Err
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		return strings.TrimSpace(opErr.Op+" "+opErr.Net) + ": " + opErr.Err.Error()
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) && urlErr.Err != nil {
		return urlErr.Err.Error()
	}
	return err.Error()
}

// bodyMessage digs the message out of an error body in the shapes servers
// use ({"error":{"message"}}, {"error":"..."}, {"message"}, {"detail"}),
// falling back to the body itself (a proxy's text or HTML page).
func bodyMessage(b []byte) string {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  any             `json:"detail"`
	}
	if json.Unmarshal(b, &v) == nil {
		var nested struct {
			Message string `json:"message"`
		}
		var s string
		switch {
		case json.Unmarshal(v.Error, &nested) == nil && nested.Message != "":
			return nested.Message
		case json.Unmarshal(v.Error, &s) == nil && s != "":
			return s
		case v.Message != "":
			return v.Message
		case v.Detail != nil:
			if s, ok := v.Detail.(string); ok {
				return s
			}
			d, _ := json.Marshal(v.Detail)
			return string(d)
		}
	}
	return string(b)
}
