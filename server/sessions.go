package server

import (
	"container/list"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Reasoning sessions: a client names a session in solve (or in the OpenAI
// "ponder" field), and each later problem of that session is posed with
// the earlier problems and answers before it, so follow-ups ("now for 12
// items") work. Sessions are bounded every way: idle ones expire after the
// TTL, the least recently used go beyond the session cap, and the oldest
// turns of a session go beyond its turn and byte caps. clear_session drops
// one at once.

// turn is one solved problem of a session.
type turn struct {
	Problem string    `json:"problem"`
	Answer  string    `json:"answer"`
	TraceID string    `json:"trace_id"`
	At      time.Time `json:"at"`
}

func (t turn) size() int { return len(t.Problem) + len(t.Answer) }

type session struct {
	id    string
	turns []turn
	bytes int
	last  time.Time
	elem  *list.Element
	busy  int // solves of the session running (hold)
}

type sessions struct {
	mu       sync.Mutex
	byID     map[string]*session
	lru      *list.List // of *session, most recently used first
	max      int
	maxTurns int
	maxBytes int
	ttl      time.Duration
	now      func() time.Time
}

func newSessions(max, maxTurns, maxBytes int, ttl time.Duration) *sessions {
	return &sessions{byID: map[string]*session{}, lru: list.New(), max: max, maxTurns: maxTurns,
		maxBytes: maxBytes, ttl: ttl, now: time.Now}
}

// validSessionID accepts ids a client may choose: 1 to 128 letters, digits
// and . _ : -.
func validSessionID(id string) error {
	if len(id) == 0 || len(id) > 128 {
		return fmt.Errorf("session id must be 1 to 128 characters, got %d", len(id))
	}
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._:-", r)
		if !ok {
			return fmt.Errorf("session id %q: use only letters, digits and . _ : -", id)
		}
	}
	return nil
}

// expireLocked drops sessions idle longer than the TTL (they sit at the
// back of the LRU list).
func (s *sessions) expireLocked() {
	cut := s.now().Add(-s.ttl)
	for e := s.lru.Back(); e != nil; {
		ss := e.Value.(*session)
		prev := e.Prev()
		if ss.busy > 0 {
			e = prev
			continue
		}
		if ss.last.After(cut) {
			return
		}
		s.lru.Remove(e)
		delete(s.byID, ss.id)
		e = prev
	}
}

// Context returns the earlier turns of session id, formatted to precede a
// new problem ("" when there are none).
func (s *sessions) Context(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	ss, ok := s.byID[id]
	if !ok || len(ss.turns) == 0 {
		return ""
	}
	ss.last = s.now()
	s.lru.MoveToFront(ss.elem)
	var b strings.Builder
	b.WriteString("Earlier in this session (oldest first):")
	for i, t := range ss.turns {
		fmt.Fprintf(&b, "\nQ%d: %s\nA%d: %s", i+1, t.Problem, i+1, t.Answer)
	}
	return b.String()
}

// Add records a solved problem in session id, creating the session and
// evicting what the caps require.
func (s *sessions) Add(id string, t turn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	if half := s.maxBytes / 2; len(t.Problem) > half {
		t.Problem = clipBytes(t.Problem, half)
	}
	if half := s.maxBytes / 2; len(t.Answer) > half {
		t.Answer = clipBytes(t.Answer, half)
	}
	ss, ok := s.byID[id]
	if !ok {
		ss = &session{id: id}
		ss.elem = s.lru.PushFront(ss)
		s.byID[id] = ss
		for e := s.lru.Back(); s.lru.Len() > s.max && e != ss.elem; {
			// The least recently used session no solve is using; with
			// every other one in use, the cap is passed for a while
			// rather than this turn dropped with its new session.
			old, prev := e.Value.(*session), e.Prev()
			if old.busy == 0 {
				s.lru.Remove(e)
				delete(s.byID, old.id)
			}
			e = prev
		}
	} else {
		s.lru.MoveToFront(ss.elem)
	}
	ss.last = s.now()
	ss.turns = append(ss.turns, t)
	ss.bytes += t.size()
	for len(ss.turns) > s.maxTurns || (ss.bytes > s.maxBytes && len(ss.turns) > 1) {
		ss.bytes -= ss.turns[0].size()
		ss.turns = append([]turn(nil), ss.turns[1:]...)
	}
}

// hold marks session id in use by a solve until release is called: a
// session in use neither expires nor makes room for others, and its idle
// time starts when the solve ends (a solve longer than session_ttl lost
// the turns before it, and one could be evicted while it ran).
func (s *sessions) hold(id string) (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	ss, ok := s.byID[id]
	if !ok {
		return func() {}
	}
	ss.busy++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		ss.busy--
		if s.byID[id] == ss { // not cleared meanwhile
			ss.last = s.now()
			s.lru.MoveToFront(ss.elem)
		}
	}
}

// sessionInfo describes a session for clients.
type sessionInfo struct {
	ID    string `json:"id"`
	Turns []turn `json:"turns"`
	Bytes int    `json:"bytes"`
}

// Get returns session id.
func (s *sessions) Get(id string) (sessionInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	ss, ok := s.byID[id]
	if !ok {
		return sessionInfo{}, false
	}
	return sessionInfo{ID: id, Turns: append([]turn(nil), ss.turns...), Bytes: ss.bytes}, true
}

// Clear drops session id and reports whether it existed, and how many
// turns it held.
func (s *sessions) Clear(id string) (turns int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	ss, ok := s.byID[id]
	if !ok {
		return 0, false
	}
	s.lru.Remove(ss.elem)
	delete(s.byID, id)
	return len(ss.turns), true
}

// Len is the number of live sessions.
func (s *sessions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	return len(s.byID)
}

// Close drops every session.
func (s *sessions) Close() {
	s.mu.Lock()
	s.byID = map[string]*session{}
	s.lru.Init()
	s.mu.Unlock()
}

// clipBytes cuts s to at most n bytes on a rune boundary, marking the cut.
func clipBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = " …"
	cut := n - len(mark)
	if cut < 0 {
		cut = 0
	}
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
