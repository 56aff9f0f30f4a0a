package server

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestSessionCaps(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	s := newSessions(2, 3, 100, time.Minute)
	s.now = func() time.Time { return now }

	// Turn cap: the oldest turns go.
	for i := 1; i <= 5; i++ {
		s.Add("a", turn{Problem: fmt.Sprintf("p%d", i), Answer: fmt.Sprintf("a%d", i)})
	}
	info, _ := s.Get("a")
	if len(info.Turns) != 3 || info.Turns[0].Problem != "p3" {
		t.Fatalf("turn cap: %+v", info.Turns)
	}
	ctx := s.Context("a")
	if !strings.Contains(ctx, "Q1: p3\nA1: a3") || strings.Contains(ctx, "p2") {
		t.Fatalf("context: %q", ctx)
	}

	// Byte cap: a session never holds much more than its cap, and one huge
	// turn is clipped.
	s.Add("a", turn{Problem: strings.Repeat("x", 500), Answer: "y"})
	s.Add("a", turn{Problem: strings.Repeat("z", 500), Answer: "y"})
	info, _ = s.Get("a")
	if info.Bytes > 100 || len(info.Turns) != 1 || !strings.HasPrefix(info.Turns[0].Problem, "zzz") ||
		!strings.HasSuffix(info.Turns[0].Problem, "…") {
		t.Fatalf("byte cap: %d bytes, %d turns", info.Bytes, len(info.Turns))
	}

	// Session cap: the least recently used goes.
	now = now.Add(time.Second)
	s.Add("b", turn{Problem: "q", Answer: "r"})
	now = now.Add(time.Second)
	s.Context("a") // a is used again
	now = now.Add(time.Second)
	s.Add("c", turn{Problem: "q", Answer: "r"})
	if _, ok := s.Get("b"); ok {
		t.Fatal("the least recently used session was kept")
	}
	if _, ok := s.Get("a"); !ok {
		t.Fatal("a recently used session was dropped")
	}

	// TTL: idle sessions expire.
	now = now.Add(2 * time.Minute)
	if s.Len() != 0 || s.Context("a") != "" {
		t.Fatal("idle sessions did not expire")
	}

	// Clear.
	s.Add("d", turn{Problem: "q", Answer: "r"})
	if n, ok := s.Clear("d"); !ok || n != 1 {
		t.Fatalf("clear: %d turns, %v", n, ok)
	}
	if _, ok := s.Clear("d"); ok {
		t.Fatal("clear: a cleared session cleared again")
	}
}

// A session a solve is using neither expires nor makes room for others
// while the solve runs, however long, and its idle time starts when the
// solve ends: a solve longer than session_ttl lost the turns before it.
func TestSessionInUseStays(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	s := newSessions(1, 10, 1000, time.Minute)
	s.now = func() time.Time { return now }
	s.Add("long", turn{Problem: "p1", Answer: "a1"})
	release := s.hold("long")
	now = now.Add(time.Hour) // the solve runs an hour
	if s.Context("long") == "" {
		t.Fatal("a session in use expired")
	}
	s.Add("other", turn{Problem: "q", Answer: "r"}) // over the cap of 1
	if _, ok := s.Get("long"); !ok {
		t.Fatal("a session in use was evicted to make room")
	}
	now = now.Add(time.Hour) // and runs on past the TTL of the Context above
	release()
	now = now.Add(30 * time.Second)
	s.Add("long", turn{Problem: "p2", Answer: "a2"})
	if info, _ := s.Get("long"); len(info.Turns) != 2 {
		t.Fatalf("after the solve: %d turns, want the earlier one and the new one", len(info.Turns))
	}
	now = now.Add(2 * time.Minute)
	if _, ok := s.Get("long"); ok {
		t.Fatal("an idle session outlived its TTL once released")
	}
	s.hold("gone")() // holding an unknown session is harmless

	// With every other session in use at the cap, a new session's turn is
	// kept (the cap is passed for a while): it was evicted as it was made.
	s.Add("x", turn{Problem: "q", Answer: "r"})
	busy := s.hold("x")
	defer busy()
	s.Add("new", turn{Problem: "q", Answer: "r"})
	if _, ok := s.Get("new"); !ok {
		t.Fatal("a new session's first turn was dropped to keep the cap")
	}
}

func TestSessionID(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"a", "chat-1", "user.42:thread_7", strings.Repeat("x", 128)} {
		if err := validSessionID(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "ä", "a/b", strings.Repeat("x", 129)} {
		if err := validSessionID(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestClipBytes(t *testing.T) {
	t.Parallel()
	if got := clipBytes("héllo wörld", 6); len(got) > 6 || !strings.HasSuffix(got, "…") {
		t.Fatalf("%q", got)
	}
	if got := clipBytes("short", 10); got != "short" {
		t.Fatal(got)
	}
}

// Beyond max_sessions, the session ended to make room is the least
// recently used one without a request in progress.
func TestMCPSessionCapSparesBusySessions(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	m := newMCPSessions(2, time.Hour)
	m.now = func() time.Time { return now }
	var ended []string
	m.end = func(id string) { ended = append(ended, id) }
	busy := m.Generate()
	leave := m.enter(busy, func() {}) // a long solve
	now = now.Add(time.Second)
	idle := m.Generate()
	now = now.Add(time.Second)
	m.Generate()
	if len(ended) != 1 || ended[0] != idle {
		t.Fatalf("ended %v, want the idle session %s (not the busy %s)", ended, idle, busy)
	}
	leave()
	now = now.Add(2 * time.Hour)
	if _, err := m.Validate(busy); err == nil {
		t.Fatal("a session idle beyond the TTL is still valid")
	}
	m.sweep()
	if m.Len() != 0 || len(ended) != 3 {
		t.Fatalf("after a sweep: %d sessions, ended %v", m.Len(), ended)
	}
}
