// Package endpoint keeps where an upstream service is (its URL, host and
// address) and its API key out of the error messages that name it. Those
// messages reach the clients of `ponder serve` (OpenAI error bodies, MCP
// tool results) and traces, and the service (the LLM endpoint, the
// embedding endpoint, the Qdrant server) may be internal infrastructure
// they should not learn of: messages call it by a name such as "the LLM
// endpoint", and only the log and the command line say where it is.
//
//	ep := endpoint.New("the embedding endpoint", "http://user:pw@10.0.0.5:8000/v1", apiKey)
//	msg := ep.Clean(endpoint.BodyMessage(body)) // "no upstream for the embedding endpoint/embeddings"
//	log.Info().Str("endpoint", ep.URL())        // "http://user:xxxxx@10.0.0.5:8000/v1"
package endpoint

import (
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/ponder-rlm/ponder/internal/text"
)

// maxText bounds the upstream or library text a message quotes.
const maxText = 200

// Endpoint is one upstream service as messages may name it. Its methods
// are safe for concurrent use.
type Endpoint struct {
	name string
	// url is the URL without its password, for the log and the command
	// line.
	url string
	// secrets (API keys) are replaced by "[redacted]".
	secrets []string
	// addrs are what names the service in text, longest first: replaced
	// by name.
	addrs []string
}

// New describes the service at raw (a URL its caller has checked) that
// messages call name; none of secrets (API keys; empty ones are skipped)
// is ever shown.
func New(name, raw string, secrets ...string) *Endpoint {
	e := &Endpoint{name: name}
	for _, s := range secrets {
		if s != "" {
			e.secrets = append(e.secrets, s)
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		// Whatever raw is, it is not shown.
		e.addrs = addrs(raw, nil)
		return e
	}
	e.url = strings.TrimRight(u.Redacted(), "/")
	e.addrs = addrs(raw, u)
	return e
}

// Name is how messages call the service ("the LLM endpoint").
func (e *Endpoint) Name() string { return e.name }

// URL is where the service is, without the URL's password (and without a
// trailing slash): for the log, and for a command line to add to its own
// message. Never for an error message a client may read.
func (e *Endpoint) URL() string { return e.url }

// addrs lists what names the service in text: its URL (as given and
// without credentials), its origin (scheme and host: a proxy may name
// another path on it) and its host with the port. A host alone is listed
// only when it has a dot or a colon (a name like "llm", a compose service,
// is also a word of the messages). Longest first, so a URL is replaced
// whole before its host is.
func addrs(raw string, u *url.URL) []string {
	var out []string
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	add(strings.TrimRight(raw, "/"))
	if u != nil {
		add(strings.TrimRight(u.Redacted(), "/"))
		if u.Scheme != "" && u.Host != "" {
			add(u.Scheme + "://" + u.Host)
		}
		if strings.ContainsAny(u.Host, ".:") {
			add(u.Host)
		}
		if h := u.Hostname(); strings.ContainsAny(h, ".:") {
			add(h)
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// Clean makes server or library text safe for a one-line message: no
// secret, no address of the service (replaced by its name) nor any
// address in Go's network error forms (a proxy's error page quotes the
// dial that failed behind it: "dial tcp 10.0.0.7:8000: connect: ..."),
// no newlines, at most 200 characters.
func (e *Endpoint) Clean(s string) string {
	s = ScrubNetText(s)
	for _, k := range e.secrets {
		s = strings.ReplaceAll(s, k, "[redacted]")
	}
	for _, a := range e.addrs {
		s = strings.ReplaceAll(s, a, e.name)
	}
	return text.Clip(text.OneLine(s), maxText)
}

// NetText is the text of a network error without the addresses in it:
// a *url.Error repeats the whole URL, a *net.OpError names both ends of
// the connection ("dial tcp 10.0.0.5:8000: connect: connection refused"),
// a *net.DNSError the host and the resolver. The address a name resolved
// to is in none of the URL's forms, so Clean alone would not catch it.
func NetText(err error) string {
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

var (
	// opText is a *net.OpError as text: "dial tcp [SRC->]DST: ".
	opText = regexp.MustCompile(`\b(dial|read|write) (tcp[46]?|udp[46]?) \S+: `)
	// dnsText is a *net.DNSError as text: "lookup NAME[ on SERVER]: ".
	dnsText = regexp.MustCompile(`\blookup \S+?(?: on \S+?)?: `)
)

// A quoted name in x509's text: %q writes "name", and a status message
// that quotes the whole error again (gRPC's desc = %q) writes \"name\".
const quoted = `\\?"[^"]*?\\?"`

// certText are the forms of crypto/x509's errors that name hosts: the
// names a certificate is valid for (other hosts of the same operator,
// internal ones among them), the name that was asked for (the service's,
// or one behind a proxy), a candidate authority's name (a self-signed
// certificate's is often its host) and a name constraint's. Each is
// replaced by what it says without the names.
var certText = []struct {
	re   *regexp.Regexp
	with string
}{
	// HostnameError: "valid for a, b, not c"; "valid for 120 names, but
	// none matched c"; "not valid for any names, but wanted to match c";
	// "cannot validate certificate for 10.0.0.5 because ...".
	{regexp.MustCompile(`x509: certificate is valid for [^\s,]+(?:, [^\s,]+)*, not [^\s"\\,;)]+`),
		"x509: certificate is valid for other names, not the one asked for"},
	{regexp.MustCompile(`(x509: certificate is valid for \d+ (?:IP SANs|names)), but none matched [^\s"\\,;)]+`),
		"$1, but none matched the one asked for"},
	{regexp.MustCompile(`(x509: certificate is not valid for any names), but wanted to match [^\s"\\,;)]+`), "$1"},
	{regexp.MustCompile(`x509: cannot validate certificate for \S+ because it doesn't contain any IP SANs`),
		"x509: cannot validate certificate for an IP address because it doesn't contain any IP SANs"},
	// UnknownAuthorityError's hint.
	{regexp.MustCompile(`while trying to verify candidate authority certificate ` + quoted), "while trying to verify a candidate authority certificate"},
	// Name constraints: `DNS name "x" is excluded by constraint "y"`.
	{regexp.MustCompile(`(DNS name|IP address|email address|URI) ` + quoted + ` is not permitted by any constraint`), "$1 is not permitted by any constraint"},
	{regexp.MustCompile(`(DNS name|IP address|email address|URI) ` + quoted + ` is excluded by constraint ` + quoted), "$1 is excluded by a constraint"},
}

// ScrubNetText is NetText for a network error that arrives as text only
// (gRPC puts its dialer's error into a status message): it removes the
// addresses of the forms Go's *net.OpError and *net.DNSError write,
// "dial tcp 10.0.0.5:6334: connect: connection refused" becoming "dial
// tcp: connect: connection refused", and the host names of the forms
// crypto/x509 writes, "x509: certificate is valid for db.corp, vault.corp,
// not llm.corp" becoming "x509: certificate is valid for other names, not
// the one asked for". Clean applies it to all text.
func ScrubNetText(s string) string {
	s = opText.ReplaceAllString(s, "$1 $2: ")
	s = dnsText.ReplaceAllString(s, "lookup: ")
	if strings.Contains(s, "x509: ") {
		for _, c := range certText {
			s = c.re.ReplaceAllString(s, c.with)
		}
	}
	return s
}

// BodyMessage digs the message out of an error body in the shapes servers
// use ({"error":{"message"}}, {"error":"..."}, {"message"}, {"detail"}),
// falling back to the body itself (a proxy's text or HTML page). It does
// not clean it.
func BodyMessage(b []byte) string {
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
