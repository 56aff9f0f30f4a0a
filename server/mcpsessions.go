package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"sync"
	"time"
)

// mcpSessions issues and tracks MCP session ids (Mcp-Session-Id) over
// streamable HTTP, bounded in number: beyond max, the least recently used
// session is ended the way a client ends one (an internal DELETE), so
// mcp-go frees its state too. Sessions idle for longer than the TTL are
// ended the same way by sweep. A session with a request in progress (a
// long solve) is not idle: it neither expires nor is chosen to make room
// while one is, and its idle time starts when its last request ends.
// (mcp-go's own sweeper counts from the request's start, and so ended
// sessions in the middle of a solve.) Unknown or ended ids get 404, and
// the client starts over with initialize, as the spec says. (mcp-go's own
// stateful manager keeps every ended id forever and has no cap.)
type mcpSessions struct {
	max     int
	ttl     time.Duration
	now     func() time.Time
	end     func(id string) // ends a session in the transport
	mu      sync.Mutex
	lastUse map[string]time.Time
	// requests holds each session's requests in progress, by the cancel
	// func that ends one: while a session has one it is not idle, and
	// when it ends (cancelRequests) they are cancelled, so a solve of a
	// session that no longer exists stops, and its LLM calls with it.
	requests map[string]map[*context.CancelFunc]struct{}
}

func newMCPSessions(max int, ttl time.Duration) *mcpSessions {
	return &mcpSessions{max: max, ttl: ttl, now: time.Now, lastUse: map[string]time.Time{},
		requests: map[string]map[*context.CancelFunc]struct{}{}}
}

// Generate implements mcp-go's SessionIdManager.
func (m *mcpSessions) Generate() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := "mcp-session-" + hex.EncodeToString(b[:])
	m.mu.Lock()
	var victim string
	if len(m.lastUse) >= m.max {
		// The least recently used session, one without a request in
		// progress if there is one.
		var oldest time.Time
		victimBusy := false
		for k, t := range m.lastUse {
			busy := len(m.requests[k]) > 0
			if victim == "" || (victimBusy && !busy) || (busy == victimBusy && t.Before(oldest)) {
				victim, oldest, victimBusy = k, t, busy
			}
		}
		delete(m.lastUse, victim)
	}
	m.lastUse[id] = m.now()
	m.mu.Unlock()
	if victim != "" && m.end != nil {
		m.end(victim)
	}
	return id
}

var errUnknownSession = errors.New("unknown or expired MCP session: initialize a new one")

// errSessionExpired is Validate's error for a session idle beyond the TTL
// that the sweep has not ended yet (it runs every TTL/2): refused all the
// same, or a session would live up to half a TTL longer than configured.
var errSessionExpired = errors.New("MCP session expired: it was idle for longer than server.session_ttl; initialize a new one")

// Validate implements mcp-go's SessionIdManager: known, unexpired ids are
// valid, and each use keeps its session alive.
func (m *mcpSessions) Validate(id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	last, ok := m.lastUse[id]
	if !ok {
		return false, errUnknownSession
	}
	now := m.now()
	if m.expiredLocked(id, last, now) {
		return false, errSessionExpired
	}
	m.lastUse[id] = now
	return false, nil
}

// expiredLocked says whether session id, last used at last, is idle
// beyond the TTL: never while a request of its is in progress.
func (m *mcpSessions) expiredLocked(id string, last, now time.Time) bool {
	return len(m.requests[id]) == 0 && now.Sub(last) > m.ttl
}

// expire ends session id now if it is still expired (Validate refused
// it), rather than at the next sweep: its transport state is freed and the
// session counts no longer. Not called from Validate, which mcp-go calls
// in the middle of its own handling.
func (m *mcpSessions) expire(id string) {
	m.mu.Lock()
	last, ok := m.lastUse[id]
	ended := ok && m.expiredLocked(id, last, m.now())
	if ended {
		delete(m.lastUse, id)
	}
	m.mu.Unlock()
	if ended && m.end != nil {
		m.end(id)
	}
}

// validateSession checks the session a request names, as Validate does, and ends
// it at once when it has expired.
func (s *Server) validateSession(id string) error {
	_, err := s.mcpSess.Validate(id)
	if errors.Is(err, errSessionExpired) {
		s.mcpSess.expire(id)
	}
	return err
}

// enter registers a request of session id in progress, which cancel ends
// if the session ends first. While one is in progress the session is not
// idle; leave, called when the request is done, starts its idle time.
func (m *mcpSessions) enter(id string, cancel context.CancelFunc) (leave func()) {
	key := &cancel
	m.mu.Lock()
	set := m.requests[id]
	if set == nil {
		set = map[*context.CancelFunc]struct{}{}
		m.requests[id] = set
	}
	set[key] = struct{}{}
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if set := m.requests[id]; set != nil {
			delete(set, key)
			if len(set) == 0 {
				delete(m.requests, id)
			}
		}
		if _, ok := m.lastUse[id]; ok {
			m.lastUse[id] = m.now()
		}
	}
}

// cancelRequests ends the requests in progress of session id, which has
// ended (a client's DELETE, idle expiry, eviction). Not at shutdown: there
// the searches are cancelled and each request still gets its answer.
func (m *mcpSessions) cancelRequests(id string) {
	m.mu.Lock()
	set := m.requests[id]
	delete(m.requests, id)
	m.mu.Unlock()
	for cancel := range set {
		(*cancel)()
	}
}

// sweep ends the sessions idle for longer than the TTL.
func (m *mcpSessions) sweep() {
	m.mu.Lock()
	now := m.now()
	var expired []string
	for id, last := range m.lastUse {
		if m.expiredLocked(id, last, now) {
			expired = append(expired, id)
			delete(m.lastUse, id)
		}
	}
	m.mu.Unlock()
	for _, id := range expired {
		if m.end != nil {
			m.end(id)
		}
	}
}

// sweepEvery sweeps until done is closed.
func (m *mcpSessions) sweepEvery(done <-chan struct{}) {
	t := time.NewTicker(max(m.ttl/2, time.Second))
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			m.sweep()
		}
	}
}

// Terminate implements mcp-go's SessionIdManager (DELETE, sweeper).
func (m *mcpSessions) Terminate(id string) (bool, error) {
	m.mu.Lock()
	delete(m.lastUse, id)
	m.mu.Unlock()
	return false, nil
}

// Len is the number of live MCP sessions.
func (m *mcpSessions) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.lastUse)
}

// endSession ends session id in the transport as a client's DELETE would.
func (s *Server) endSession(id string) {
	req, err := http.NewRequest(http.MethodDelete, "http://internal/mcp", nil)
	if err != nil {
		return
	}
	req.Header.Set("Mcp-Session-Id", id)
	s.stream.ServeHTTP(discardWriter{h: http.Header{}}, req)
	s.mcpSess.cancelRequests(id)
	s.log.Debug().Msg("ended an MCP session (idle beyond server.session_ttl, or the least recently used beyond server.max_sessions)")
}

type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d discardWriter) WriteHeader(int)             {}
