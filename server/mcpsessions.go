package server

import (
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
// mcp-go frees its state too. Idle sessions are swept by mcp-go after the
// session TTL. Unknown or ended ids get 404, and the client starts over
// with initialize, as the spec says. (mcp-go's own stateful manager keeps
// every ended id forever and has no cap.)
type mcpSessions struct {
	max     int
	ttl     time.Duration
	now     func() time.Time
	end     func(id string) // ends a session in the transport
	mu      sync.Mutex
	lastUse map[string]time.Time
}

func newMCPSessions(max int, ttl time.Duration) *mcpSessions {
	return &mcpSessions{max: max, ttl: ttl, now: time.Now, lastUse: map[string]time.Time{}}
}

// Generate implements mcp-go's SessionIdManager.
func (m *mcpSessions) Generate() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := "mcp-session-" + hex.EncodeToString(b[:])
	m.mu.Lock()
	var victim string
	if len(m.lastUse) >= m.max {
		var oldest time.Time
		for k, t := range m.lastUse {
			if victim == "" || t.Before(oldest) {
				victim, oldest = k, t
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
	if now.Sub(last) > m.ttl {
		delete(m.lastUse, id)
		return false, errUnknownSession
	}
	m.lastUse[id] = now
	return false, nil
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
	s.log.Debug().Msg("ended the least recently used MCP session (server.max_sessions)")
}

type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d discardWriter) WriteHeader(int)             {}
