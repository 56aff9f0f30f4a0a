package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// connLimiter caps the HTTP connections open at once
// (server.max_connections), so that a flood of idle or slow connections
// cannot use up the process's file descriptors, which every search, trace
// file, plugin pipe and LLM connection also needs.
//
// A connection beyond the cap first makes room: the connection that has
// waited longest without a request in progress (connected but silent, or
// idle between keep-alive requests) is closed. Such connections cost their
// client nothing to open, so a flood of them takes the places of each
// other, and a real client's new connection, /healthz's included, is
// served. Only when every connection has a request in progress (a solve,
// a stream) is the new one refused: its request is read (for at most a
// second) and answered 503 with Retry-After, or, for /healthz and
// /metrics, served (through the whole handler: /metrics still wants the
// token), so that a probe does not restart a server that is merely full
// and monitoring is not blind exactly when the server is saturated. Refusals
// are answered by at most maxRefusing goroutines at once; beyond that a
// connection is closed unanswered, so a flood cannot turn them into the
// file descriptors they are meant to save.
type connLimiter struct {
	net.Listener
	max     int
	health  http.Handler // answers /healthz and /metrics when full (exempt)
	refused func()       // counts a connection refused (not an exempt request served)
	evicted func()       // counts a connection closed to make room

	mu       sync.Mutex
	conns    map[*limitedConn]struct{}
	refusing int
	wg       sync.WaitGroup // refusals being answered
}

// maxRefusing bounds the refused connections being answered at once.
const maxRefusing = 64

// refuseWait bounds how long a refused connection may take to send its
// request, and to read the answer.
const refuseWait = time.Second

func newConnLimiter(ln net.Listener, max int, health http.Handler, refused, evicted func()) *connLimiter {
	return &connLimiter{Listener: ln, max: max, health: health, refused: refused, evicted: evicted, conns: map[*limitedConn]struct{}{}}
}

// limitedConn is a connection the limiter counts until it is closed.
type limitedConn struct {
	net.Conn
	l       *connLimiter
	waiting bool      // no request in progress (new or idle)
	since   time.Time // when it last became waiting
	once    sync.Once
}

func (c *limitedConn) Close() error {
	c.once.Do(func() { c.l.remove(c) })
	return c.Conn.Close()
}

// Accept returns the next connection within the cap, making room or
// refusing those beyond it.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c := &limitedConn{Conn: nc, l: l, waiting: true, since: time.Now()}
		victim, ok := l.admit(c)
		if victim != nil {
			// Its own goroutine, blocked reading it, sees the close and
			// lets it go.
			_ = victim.Conn.Close()
			l.evicted()
		}
		if ok {
			return c, nil
		}
		l.refuse(nc)
	}
}

// admit counts c in, and returns the connection closed to make room for
// it; ok is false when every place is taken by a request in progress.
func (l *connLimiter) admit(c *limitedConn) (victim *limitedConn, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.conns) >= l.max {
		for o := range l.conns {
			if o.waiting && (victim == nil || o.since.Before(victim.since)) {
				victim = o
			}
		}
		if victim == nil {
			return nil, false
		}
		delete(l.conns, victim)
	}
	l.conns[c] = struct{}{}
	return victim, true
}

func (l *connLimiter) remove(c *limitedConn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// connState is the http.Server's ConnState hook: it tells which
// connections have a request in progress.
func (l *connLimiter) connState(nc net.Conn, st http.ConnState) {
	c, ok := nc.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch st {
	case http.StateNew, http.StateIdle:
		c.waiting, c.since = true, time.Now()
	case http.StateActive, http.StateHijacked:
		c.waiting = false
	case http.StateClosed:
		delete(l.conns, c)
	}
}

// open is the number of connections counted now.
func (l *connLimiter) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// refuse answers a connection beyond the cap, in the background, or
// closes it when maxRefusing are being answered already.
func (l *connLimiter) refuse(nc net.Conn) {
	l.mu.Lock()
	busy := l.refusing >= maxRefusing
	if !busy {
		l.refusing++
		l.wg.Add(1)
	}
	l.mu.Unlock()
	if busy {
		l.refused()
		_ = nc.Close()
		return
	}
	go func() {
		defer func() {
			l.mu.Lock()
			l.refusing--
			l.mu.Unlock()
			l.wg.Done()
		}()
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(refuseWait))
		// The request is read before the answer: closing a connection
		// with unread data resets it, and the client would see "connection
		// reset" instead of the 503.
		req, err := http.ReadRequest(bufio.NewReader(io.LimitReader(nc, 64<<10)))
		if err != nil {
			l.refused()
			return
		}
		rec := &heldResponse{header: http.Header{}}
		if exemptFromCap(req.URL.Path) {
			l.health.ServeHTTP(rec, req)
		} else {
			l.refused()
			msg := fmt.Sprintf("the server has too many connections open (server.max_connections, %d), each with a request in progress: try again shortly", l.max)
			rec.Header().Set("Retry-After", "1")
			if strings.HasPrefix(req.URL.Path, "/v1/") {
				// As a request beyond server.max_searches is told (the
				// OpenAI SDKs retry a 503).
				writeAPIError(rec, &apiError{status: http.StatusServiceUnavailable, typ: "server_error", code: "server_busy", msg: msg})
			} else {
				deny(rec, req, http.StatusServiceUnavailable, "server_busy", msg)
			}
		}
		_ = rec.send(nc, req)
	}()
}

// exemptFromCap reports whether a request for path is served on a
// connection beyond the cap: the health probe, and the metrics that show
// the saturation (ponder_http_connections, the refusals).
func exemptFromCap(path string) bool { return path == "/healthz" || path == "/metrics" }

// heldResponse is a response writer that holds the whole response: a
// refusal's (the request of a refused connection, which no http.Server
// serves: send writes it, closing the connection after it), or one to be
// rewritten before it is sent (maskUI).
type heldResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *heldResponse) Header() http.Header { return w.header }

func (w *heldResponse) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *heldResponse) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

// send writes the answer to req on nc, with Connection: close.
func (w *heldResponse) send(nc io.Writer, req *http.Request) error {
	w.WriteHeader(http.StatusOK)
	resp := &http.Response{StatusCode: w.status, ProtoMajor: 1, ProtoMinor: 1, Request: req,
		Header: w.header, Body: io.NopCloser(&w.body), ContentLength: int64(w.body.Len()), Close: true}
	return resp.Write(nc)
}

// wait waits for the refusals being answered (each within refuseWait).
func (l *connLimiter) wait() { l.wg.Wait() }
