package endpoint_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/internal/endpoint"
	"github.com/ponder-rlm/ponder/internal/endpoint/endpointtest"
)

const name = "the test endpoint"

func TestClean(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 300)
	for _, tt := range []struct {
		name, raw, key, in, want string
	}{
		{"url whole, before its host", "http://10.0.0.5:8000/v1/", "",
			"POST http://10.0.0.5:8000/v1/embeddings failed", "POST the test endpoint/embeddings failed"},
		{"url with a password, as given and redacted", "http://user:s3cret@10.0.0.5:8000/v1", "",
			"at http://user:s3cret@10.0.0.5:8000/v1 and http://user:xxxxx@10.0.0.5:8000/v1", "at the test endpoint and the test endpoint"},
		{"origin: another path on the host", "https://llm.corp.example/v1", "",
			"no route https://llm.corp.example/healthz", "no route the test endpoint/healthz"},
		{"host with port", "http://10.0.0.5:8000/v1", "", "upstream 10.0.0.5:8000 down", "upstream the test endpoint down"},
		{"host name alone", "https://llm.corp.example:8443/v1", "", "llm.corp.example is down", "the test endpoint is down"},
		{"ipv6", "http://[fd00::5]:8000/v1", "", "dial [fd00::5]:8000 and fd00::5", "dial the test endpoint and the test endpoint"},
		// "llm" is also a word of the messages: only host:port goes.
		{"host without a dot", "http://llm:8000/v1", "", "the llm at llm:8000 failed", "the llm at the test endpoint failed"},
		{"api key", "http://10.0.0.5/v1", "sk-123", "bad key sk-123", "bad key [redacted]"},
		// An empty key must not be "replaced" between every character.
		{"no api key", "http://10.0.0.5/v1", "", "bad key", "bad key"},
		{"one line", "http://10.0.0.5/v1", "", "<html>\n  <body>busy</body>\n</html>", "<html> <body>busy</body> </html>"},
		{"clipped", "http://10.0.0.5/v1", "", long, strings.Repeat("x", 200) + "…"},
		// Addresses behind the endpoint, as a proxy's error page quotes them.
		{"a dial behind a proxy", "http://10.0.0.5/v1", "", "upstream connect error: dial tcp 10.9.8.7:9000: connect: connection refused",
			"upstream connect error: dial tcp: connect: connection refused"},
		{"a lookup behind a proxy", "http://10.0.0.5/v1", "", "lookup llm.internal.svc on 10.0.0.2:53: no such host", "lookup: no such host"},
		{"the endpoint's own dial", "http://10.0.0.5:8000/v1", "", "dial tcp 10.0.0.5:8000: connect: connection refused", "dial tcp: connect: connection refused"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := endpoint.New(name, tt.raw, tt.key).Clean(tt.in)
			if got != tt.want {
				t.Errorf("Clean(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestURLAndName(t *testing.T) {
	t.Parallel()
	e := endpoint.New(name, "http://user:s3cret@10.0.0.5:8000/v1/", "k")
	if e.URL() != "http://user:xxxxx@10.0.0.5:8000/v1" || e.Name() != name {
		t.Errorf("URL() = %q, Name() = %q", e.URL(), e.Name())
	}
	// An unparsable URL is not shown either.
	bad := "http://10.0.0.5:80%zz/v1"
	if got := endpoint.New(name, bad).Clean("at " + bad); got != "at "+name {
		t.Errorf("Clean of an unparsable URL = %q", got)
	}
}

// The network errors Go returns, as the clients get them (wrapped in a
// *url.Error by net/http), and as gRPC passes them on (as text).
func netErrors() []struct {
	name     string
	err      error
	want     string // NetText; ScrubNetText of the text too, unless scrubbed is set
	scrubbed string
} {
	refused := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.ParseIP("10.0.0.5"), Port: 6334},
		Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	reset := &net.OpError{Op: "read", Net: "tcp", Source: &net.TCPAddr{IP: net.ParseIP("10.0.0.9"), Port: 50123},
		Addr: &net.TCPAddr{IP: net.ParseIP("fd00::5"), Port: 8000}, Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	dns := &net.DNSError{Err: "no such host", Name: "llm.corp.invalid", Server: "10.0.0.2:53", IsNotFound: true}
	dnsNoServer := &net.DNSError{Err: "server misbehaving", Name: "llm.corp.invalid"}
	return []struct {
		name     string
		err      error
		want     string
		scrubbed string
	}{
		{"refused", refused, "dial tcp: connect: connection refused", ""},
		{"reset, both ends", reset, "read tcp: read: connection reset by peer", ""},
		{"no such host", dns, "lookup: no such host", ""},
		{"resolver without server", dnsNoServer, "lookup: server misbehaving", ""},
		{"dial failing to resolve", &net.OpError{Op: "dial", Net: "tcp", Err: dns}, "lookup: no such host", "dial tcp: lookup: no such host"},
	}
}

func TestNetText(t *testing.T) {
	t.Parallel()
	for _, tt := range netErrors() {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wrapped := &url.Error{Op: "Post", URL: "http://llm.corp.invalid:8000/v1/chat/completions", Err: tt.err}
			for _, err := range []error{tt.err, wrapped, fmt.Errorf("send: %w", wrapped)} {
				if got := endpoint.NetText(err); got != tt.want {
					t.Errorf("NetText(%v) = %q, want %q", err, got, tt.want)
				}
			}
		})
	}
	// Not a network error: the inner text of a *url.Error, else the text.
	if got := endpoint.NetText(&url.Error{Op: "Post", URL: "http://10.0.0.5/v1", Err: errors.New("EOF")}); got != "EOF" {
		t.Errorf("NetText of a url.Error = %q", got)
	}
	if got := endpoint.NetText(errors.New("tls: bad certificate")); got != "tls: bad certificate" {
		t.Errorf("NetText of a plain error = %q", got)
	}
}

// The text of an error scrubs to what NetText makes of the error itself.
func TestScrubNetText(t *testing.T) {
	t.Parallel()
	for _, tt := range netErrors() {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := `connection error: desc = "transport: Error while dialing: ` + tt.err.Error() + `"`
			scrubbed := tt.want
			if tt.scrubbed != "" {
				scrubbed = tt.scrubbed
			}
			want := `connection error: desc = "transport: Error while dialing: ` + scrubbed + `"`
			if got := endpoint.ScrubNetText(in); got != want {
				t.Errorf("ScrubNetText(%q) = %q, want %q", in, got, want)
			}
			for _, addr := range []string{"10.0.0.5", "10.0.0.9", "fd00::5", "10.0.0.2", "llm.corp.invalid"} {
				if strings.Contains(endpoint.ScrubNetText(in), addr) {
					t.Errorf("ScrubNetText(%q) shows %s", in, addr)
				}
			}
		})
	}
	for _, s := range []string{"dial tcp: connect: connection refused", "read tcp: i/o timeout", "Not found: Collection `docs` doesn't exist!"} {
		if got := endpoint.ScrubNetText(s); got != s {
			t.Errorf("ScrubNetText(%q) = %q: text without an address changed", s, got)
		}
	}
}

func TestBodyMessage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ body, want string }{
		{`{"error":{"message":"model not found","type":"invalid_request_error"}}`, "model not found"},
		{`{"error":"rate limited"}`, "rate limited"},
		{`{"message":"overloaded"}`, "overloaded"},
		{`{"detail":"Not Found"}`, "Not Found"},
		{`{"detail":[{"loc":["body","input"],"msg":"field required"}]}`, `[{"loc":["body","input"],"msg":"field required"}]`},
		{`{"error":{"code":500}}`, `{"error":{"code":500}}`},
		{"<html><body>502 Bad Gateway</body></html>", "<html><body>502 Bad Gateway</body></html>"},
		{"", ""},
	} {
		if got := endpoint.BodyMessage([]byte(tt.body)); got != tt.want {
			t.Errorf("BodyMessage(%s) = %q, want %q", tt.body, got, tt.want)
		}
	}
}

// The helpers the clients' tests use fail the way they say they do.
func TestEndpointtest(t *testing.T) {
	t.Parallel()
	if _, err := net.Dial("tcp", endpointtest.ClosedPort(t)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial of ClosedPort: %v, want connection refused", err)
	}
	c, err := net.Dial("tcp", endpointtest.ResetServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read from ResetServer: %v, want connection reset", err)
	}
	for _, tt := range []struct {
		msg  string
		fail bool
	}{
		{"cannot connect to the test endpoint (connection refused)", false},
		{"cannot connect to http://10.0.0.5:8000/v1", true},
		{"upstream 10.0.0.5 down", true},
		{"port :8000 closed", true},
		{"key sk-1 refused", true},
		{"dial tcp 127.0.0.1:41234: refused", true},
	} {
		ft := &fakeT{}
		endpointtest.CheckHidden(ft, tt.msg, "http://10.0.0.5:8000/v1", "sk-1")
		if ft.failed != tt.fail {
			t.Errorf("CheckHidden(%q) failed %v, want %v", tt.msg, ft.failed, tt.fail)
		}
	}
}

// fakeT records whether a check failed.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper()               {}
func (f *fakeT) Errorf(string, ...any) { f.failed = true }

// tlsServer serves HTTPS with a certificate for names and ips, signed by a
// CA of its own; the returned pool trusts that CA.
func tlsServer(t *testing.T, names []string, ips []net.IP) (*httptest.Server, *x509.CertPool) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca.corp.internal"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: names, IPAddresses: ips,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshakes fail by design
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return srv, pool
}

// A TLS failure names no host: neither those the server's certificate is
// valid for (other hosts of its operator) nor the one asked for, nor the
// certificate's issuer, in what a client makes of the error (Clean of
// NetText) or of its text alone (as gRPC passes it on).
func TestCleanTLSErrors(t *testing.T) {
	t.Parallel()
	hidden := []string{"db.corp.internal", "vault.corp.internal", "llm.corp.example", "10.1.2.3", "10.1.2.4", "ca.corp.internal", "127.0.0.1"}
	for _, tt := range []struct {
		name  string
		names []string
		ips   []net.IP
		host  string // the URL's host, dialed at the server
		trust bool
		want  string
	}{
		{"names other hosts", []string{"db.corp.internal", "vault.corp.internal"}, nil, "llm.corp.example", true,
			"tls: failed to verify certificate: x509: certificate is valid for other names, not the one asked for"},
		{"names other addresses", nil, []net.IP{net.ParseIP("10.1.2.3"), net.ParseIP("10.1.2.4")}, "127.0.0.1", true,
			"tls: failed to verify certificate: x509: certificate is valid for other names, not the one asked for"},
		{"names no address", []string{"db.corp.internal"}, nil, "127.0.0.1", true,
			"tls: failed to verify certificate: x509: cannot validate certificate for an IP address because it doesn't contain any IP SANs"},
		{"unknown authority", []string{"llm.corp.example"}, nil, "llm.corp.example", false,
			"tls: failed to verify certificate: x509: certificate signed by unknown authority"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, pool := tlsServer(t, tt.names, tt.ips)
			tlsConf := &tls.Config{}
			if tt.trust {
				tlsConf.RootCAs = pool
			}
			addr := srv.Listener.Addr().String()
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf,
				DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, network, addr)
				}}}
			raw := "https://" + tt.host + ":8443/v1"
			resp, err := client.Get(raw + "/models")
			if err == nil {
				resp.Body.Close()
				t.Fatal("the request succeeded; want a certificate error")
			}
			ep := endpoint.New(name, raw)
			for _, got := range []string{ep.Clean(endpoint.NetText(err)), endpoint.ScrubNetText(endpoint.NetText(err))} {
				if got != tt.want {
					t.Errorf("from %q: got %q, want %q", err, got, tt.want)
				}
			}
			// As gRPC quotes it: `desc = "...: \"name\""`.
			grpc := fmt.Sprintf("connection error: desc = %q", "transport: authentication handshake failed: "+endpoint.NetText(err))
			got := ep.Clean(grpc)
			if !strings.Contains(got, "x509: ") {
				t.Errorf("gRPC text %q cleaned to %q, which lost the certificate's fault", grpc, got)
			}
			for _, h := range hidden {
				if strings.Contains(got, h) {
					t.Errorf("gRPC text %q cleaned to %q, which shows %s", grpc, got, h)
				}
			}
		})
	}
}

// The x509 forms no real server of the test above produces: too many
// names to list, none at all, a rejected candidate authority, a name
// constraint; in Go's text and as gRPC quotes it.
func TestScrubNetTextCertificates(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"x509: certificate is valid for 120 names, but none matched llm.corp.example",
			"x509: certificate is valid for 120 names, but none matched the one asked for"},
		{"x509: certificate is valid for 100 IP SANs, but none matched 10.1.2.3",
			"x509: certificate is valid for 100 IP SANs, but none matched the one asked for"},
		{"x509: certificate is not valid for any names, but wanted to match llm.corp.example",
			"x509: certificate is not valid for any names"},
		{"x509: certificate is valid for db.corp.internal, not llm.corp.example; retrying",
			"x509: certificate is valid for other names, not the one asked for; retrying"},
		{`x509: certificate signed by unknown authority (possibly because of "crypto/rsa: verification error" while trying to verify candidate authority certificate "ca.corp.internal")`,
			`x509: certificate signed by unknown authority (possibly because of "crypto/rsa: verification error" while trying to verify a candidate authority certificate)`},
		{`desc = "x509: certificate signed by unknown authority (possibly because of \"x\" while trying to verify candidate authority certificate \"ca.corp.internal\")"`,
			`desc = "x509: certificate signed by unknown authority (possibly because of \"x\" while trying to verify a candidate authority certificate)"`},
		{`x509: a root or intermediate certificate is not authorized to sign for this name: DNS name "db.corp.internal" is excluded by constraint "corp.internal"`,
			`x509: a root or intermediate certificate is not authorized to sign for this name: DNS name is excluded by a constraint`},
		{`x509: a root or intermediate certificate is not authorized to sign for this name: IP address "10.1.2.3" is not permitted by any constraint`,
			`x509: a root or intermediate certificate is not authorized to sign for this name: IP address is not permitted by any constraint`},
		{"x509: certificate has expired or is not yet valid: current time 2026-01-02T00:00:00Z is after 2026-01-01T00:00:00Z",
			"x509: certificate has expired or is not yet valid: current time 2026-01-02T00:00:00Z is after 2026-01-01T00:00:00Z"},
	} {
		if got := endpoint.ScrubNetText(tt.in); got != tt.want {
			t.Errorf("ScrubNetText(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}
