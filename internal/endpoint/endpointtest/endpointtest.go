// Package endpointtest holds what the tests of Ponder's upstream clients
// (llm, retrieval/embed, retrieval/qdrant) share to check that their
// errors never say where the service is: addresses that fail in the
// ways a network does, and the check itself.
package endpointtest

import (
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// ClosedPort is a loopback host:port where nothing listens (a connection
// is refused at once).
func ClosedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// ResetServer is a loopback host:port that reads what a client sends,
// then resets the connection (as a crashing server or a middlebox does).
// It stops when the test ends.
func ResetServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Read(make([]byte, 4096))
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // close sends a reset
			}
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// CheckHidden fails the test when msg shows where the service at base
// (a URL, or host:port) is, its loopback address, or any of secrets. A
// host without a dot or colon ("embed", a compose service) is also a word
// of the messages: only its URL and host:port are checked.
func CheckHidden(t testing.TB, msg, base string, secrets ...string) {
	t.Helper()
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("message %q shows the secret %q", msg, s)
		}
	}
	shown := []string{base, strings.TrimRight(base, "/"), u.Host, u.Hostname(), "127.0.0.1", "[::1]"}
	if p := u.Port(); p != "" {
		shown = append(shown, ":"+p)
	}
	for i, s := range shown {
		if strings.ContainsAny(s, ".:") && !slices.Contains(shown[:i], s) && strings.Contains(msg, s) {
			t.Errorf("message %q shows %q", msg, s)
		}
	}
}
