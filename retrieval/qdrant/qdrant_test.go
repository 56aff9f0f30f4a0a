package qdrant

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	qc "github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ponder-rlm/ponder/internal/endpoint/endpointtest"
	"github.com/ponder-rlm/ponder/retrieval"
	"github.com/ponder-rlm/ponder/retrieval/storetest"
)

// TestConformance runs the shared Store suite against a real Qdrant when
// PONDER_QDRANT_URL is set (e.g. http://127.0.0.1:6334 for
// `docker run -p 6334:6334 qdrant/qdrant`).
func TestConformance(t *testing.T) {
	u := os.Getenv("PONDER_QDRANT_URL")
	if u == "" {
		t.Skip("PONDER_QDRANT_URL is not set: no Qdrant server to test against (see docs/retrieval.md)")
	}
	storetest.Run(t, func(t *testing.T) retrieval.Store {
		st, err := Open(t.Context(), Options{URL: u, APIKey: os.Getenv("PONDER_QDRANT_API_KEY")})
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

// A URL Open cannot use is refused saying which setting to fix, but not
// repeating it: on a server the message reaches the MCP client whose
// search opened the store (the start-up check of the configuration shows
// it to the operator).
func TestOpenRefusesBadURLs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, want string }{
		{"qdrant.corp:16334", "want http://host:6334"},
		{"http://10.0.0.5:6333", "REST port 6333"},
		{"http://10.0.0.5:16334?api-key=secret", "no query"},
	} {
		_, err := Open(t.Context(), Options{URL: tc.url})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "PONDER_QDRANT_URL") {
			t.Errorf("Open(%q) = %v, want %q and the setting", tc.url, err, tc.want)
			continue
		}
		endpointtest.CheckHidden(t, err.Error(), tc.url, "secret")
	}
}

// fakeQdrant is a gRPC server that passes the health check and answers
// every List of collections with err.
type fakeQdrant struct {
	qc.UnimplementedQdrantServer
	qc.UnimplementedCollectionsServer
	err error
}

func (f *fakeQdrant) HealthCheck(context.Context, *qc.HealthCheckRequest) (*qc.HealthCheckReply, error) {
	return &qc.HealthCheckReply{Title: "fake qdrant", Version: "1.17.0"}, nil
}

func (f *fakeQdrant) List(context.Context, *qc.ListCollectionsRequest) (*qc.ListCollectionsResponse, error) {
	return nil, f.err
}

// startFake serves a fakeQdrant whose errors are made by errText from its
// own address, until the test ends.
func startFake(t testing.TB, code codes.Code, errText func(addr string) string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeQdrant{err: status.Error(code, errText(ln.Addr().String()))}
	srv := grpc.NewServer()
	qc.RegisterQdrantServer(srv, f)
	qc.RegisterCollectionsServer(srv, f)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

// silentServer accepts connections and never answers (a hung server, or a
// firewall that swallows packets after the handshake).
func silentServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// The Store's errors say what failed and why, naming the server "the
// Qdrant server": they reach MCP clients (search_documents,
// ingest_documents, a grounded solve's trace), and the server may be
// internal infrastructure. Neither its URL, host nor API key shows, even
// where gRPC's or the server's own text names them.
func TestErrorsHideTheServer(t *testing.T) {
	t.Parallel()
	const key = "qdrant-key-secret-123"
	for _, tt := range []struct {
		name     string
		addr     func(t testing.TB) string // host:port of the server
		url      string                    // when not at addr
		sentinel error
		want     []string
	}{
		{name: "connection refused", addr: endpointtest.ClosedPort, sentinel: retrieval.ErrUnavailable,
			want: []string{"the Qdrant server is unreachable (connect): dial tcp: connect: connection refused; start it or fix retrieval.qdrant_url (PONDER_QDRANT_URL)"}},
		{name: "no such host", url: "http://qdrant.corp.invalid:6334", sentinel: retrieval.ErrUnavailable,
			want: []string{"the Qdrant server is unreachable (connect): ", "PONDER_QDRANT_URL"}},
		{name: "no answer", addr: silentServer, sentinel: retrieval.ErrUnavailable,
			want: []string{"the Qdrant server is unreachable (connect): ", "PONDER_QDRANT_URL"}},
		{name: "unavailable naming itself", sentinel: retrieval.ErrUnavailable, addr: func(t testing.TB) string {
			return startFake(t, codes.Unavailable, func(a string) string { return "node http://" + a + " is draining, key " + key })
		}, want: []string{"the Qdrant server is unreachable (list collections): node the Qdrant server is draining, key [redacted]; start it"}},
		{name: "api key refused", sentinel: retrieval.ErrUnavailable, addr: func(t testing.TB) string {
			return startFake(t, codes.Unauthenticated, func(a string) string { return "invalid api-key " + key + " for " + a })
		}, want: []string{"the Qdrant server rejected the API key (list collections): set retrieval.qdrant_api_key (PONDER_QDRANT_API_KEY)"}},
		{name: "other error naming a resolved address", addr: func(t testing.TB) string {
			return startFake(t, codes.Internal, func(string) string { return "proxy: dial tcp 10.20.30.40:6334: connect: no route to host" })
		}, want: []string{"qdrant list collections: ", "dial tcp: connect: no route to host"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url := tt.url
			if url == "" {
				url = "http://" + tt.addr(t)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			st, err := Open(ctx, Options{URL: url, APIKey: key, Timeout: 300 * time.Millisecond})
			if err == nil {
				_, err = st.Collections(ctx)
				st.Close()
			}
			if err == nil {
				t.Fatal("no error")
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("error %v: want %v", err, tt.sentinel)
			}
			// The client's error stays reachable, its text unseen.
			var qe *qc.QdrantError
			if !errors.As(err, &qe) {
				t.Errorf("error %v does not wrap the client's error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			endpointtest.CheckHidden(t, err.Error(), url, key)
			if strings.Contains(err.Error(), "10.20.30.40") {
				t.Errorf("error %q shows the address the server's name resolved to", err)
			}
		})
	}
}
