package server

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ponder-rlm/ponder/config"
)

// hostPolicy says which Host and Origin headers are accepted: DNS
// rebinding protection, as the MCP spec requires of local servers. A page
// on evil.example that rebinds its name to 127.0.0.1 sends Host and Origin
// evil.example, which are refused; a page on another local port sends a
// foreign Origin, also refused.
type hostPolicy struct {
	anyHost bool            // bound to a wildcard address with no allowed_hosts
	hosts   map[string]bool // lower-case host names and addresses, no port
	origins map[string]bool // allowed cross origins, scheme://host[:port]
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return strings.Trim(addr, "[]")
	}
	return h
}

func newHostPolicy(cfg config.Server) (*hostPolicy, error) {
	p := &hostPolicy{hosts: map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}, origins: map[string]bool{}}
	bind := strings.ToLower(hostOf(cfg.Addr))
	switch {
	case bind == "" || bind == "0.0.0.0" || bind == "::":
		p.anyHost = len(cfg.AllowedHosts) == 0
	case !config.IsLoopback(bind):
		p.hosts[bind] = true
	}
	for _, h := range cfg.AllowedHosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "*" {
			if cfg.Token == "" {
				// The Origin check cannot stand in: a rebound page's
				// Origin names the same host as its Host.
				return nil, fmt.Errorf("server.allowed_hosts (PONDER_ALLOWED_HOSTS): \"*\" without server.token (PONDER_TOKEN) would let any web page that points its own name at this machine (DNS rebinding) drive Ponder; list the host names, or set a token")
			}
			p.anyHost = true
			continue
		}
		if hh, _, err := net.SplitHostPort(h); err == nil {
			h = hh
		}
		p.hosts[strings.Trim(h, "[]")] = true
	}
	for _, o := range cfg.AllowedOrigins {
		o = strings.TrimSpace(o)
		if o == "*" {
			return nil, fmt.Errorf("server.allowed_origins (PONDER_ALLOWED_ORIGINS): \"*\" would let any web page drive Ponder; list the origins, e.g. http://localhost:3000")
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("server.allowed_origins (PONDER_ALLOWED_ORIGINS): want origins like https://app.example.com, got %q", o)
		}
		p.origins[strings.ToLower(u.Scheme+"://"+u.Host)] = true
	}
	return p, nil
}

func (p *hostPolicy) hostOK(r *http.Request) bool {
	if p.anyHost {
		return true
	}
	return p.hosts[strings.ToLower(strings.Trim(hostOf(r.Host), "[]"))]
}

// originOK accepts requests without Origin (not from a browser), from the
// server's own origin, and from allowed origins.
func (p *hostPolicy) originOK(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false // includes "null"
	}
	if p.origins[strings.ToLower(u.Scheme+"://"+u.Host)] {
		return true
	}
	return strings.EqualFold(u.Host, r.Host)
}

// rateLimiter is a token bucket per client address.
type rateLimiter struct {
	rate  float64
	burst float64
	mu    sync.Mutex
	m     map[string]*bucket
	now   func() time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(rate float64, burst int) *rateLimiter {
	if rate <= 0 {
		return nil
	}
	b := float64(burst)
	if b <= 0 {
		b = math.Max(1, 2*rate)
	}
	return &rateLimiter{rate: rate, burst: b, m: map[string]*bucket{}, now: time.Now}
}

// allow takes a token for client, or says how long until one is free.
func (l *rateLimiter) allow(client string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.m[client]
	if !ok {
		if len(l.m) >= 10000 {
			l.sweepLocked(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.m[client] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// sweepLocked forgets clients whose bucket has refilled.
func (l *rateLimiter) sweepLocked(now time.Time) {
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	for k, b := range l.m {
		if now.Sub(b.last) > full {
			delete(l.m, k)
		}
	}
}

func clientAddr(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}

// TokenCookie is the name of the cookie that holds the token of the
// server at host (the request's Host): ponder_token, then the port.
// Browsers keep cookies by host name, not by port, so two Ponder servers
// (or trace viewers) on one machine with one name each would overwrite
// each other's.
func TokenCookie(host string) string {
	if _, port, err := net.SplitHostPort(host); err == nil && port != "" {
		return "ponder_token_" + port
	}
	return "ponder_token"
}

// authorized checks the bearer token, or the cookie the web viewer got.
func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.Token == "" {
		return true
	}
	want := []byte(s.cfg.Token)
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(h[7:])), want) == 1 {
			return true
		}
	}
	if c, err := r.Cookie(TokenCookie(r.Host)); err == nil && subtle.ConstantTimeCompare([]byte(c.Value), want) == 1 {
		return true
	}
	return false
}

// deny answers a refused request in the format of its route: JSON-RPC
// for /mcp, OpenAI errors for /v1, else {"error": ...}.
func deny(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/mcp"):
		writeRPCError(w, status, -32600, msg)
	case strings.HasPrefix(r.URL.Path, "/v1/"):
		writeAPIError(w, denial(status, code, msg))
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
	}
}

// guard is the middleware every request passes: Host, Origin, rate limit,
// token, body size.
func (s *Server) guard(hosts *hostPolicy, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hosts.hostOK(r) {
			s.metrics.rejected.WithLabelValues("host").Inc()
			deny(w, r, http.StatusForbidden, "forbidden", fmt.Sprintf("forbidden: Host %q is not allowed (DNS rebinding protection; add it to server.allowed_hosts)", r.Host))
			return
		}
		if !hosts.originOK(r) {
			s.metrics.rejected.WithLabelValues("origin").Inc()
			deny(w, r, http.StatusForbidden, "forbidden", fmt.Sprintf("forbidden: Origin %q is not allowed (add it to server.allowed_origins)", r.Header.Get("Origin")))
			return
		}
		if r.URL.Path == "/healthz" {
			next.ServeHTTP(w, r)
			return
		}
		if ok, wait := s.limiter.allow(clientAddr(r)); !ok {
			s.metrics.rejected.WithLabelValues("rate").Inc()
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			deny(w, r, http.StatusTooManyRequests, "rate_limit_exceeded", "too many requests: slow down (server.rate_limit)")
			return
		}
		if s.cfg.Token != "" && (r.URL.Path == "/ui/" || r.URL.Path == "/ui") && r.URL.Query().Has("token") {
			s.tokenLogin(w, r)
			return
		}
		if !s.authorized(r) {
			s.metrics.rejected.WithLabelValues("token").Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="ponder"`)
			msg := "unauthorized: send the server token as \"Authorization: Bearer <token>\" (server.token, PONDER_TOKEN)"
			if r.URL.Path == "/ui" || strings.HasPrefix(r.URL.Path, "/ui/") {
				// A browser cannot send the header: it logs in once.
				msg = "unauthorized: open /ui/?token=<token> in the browser once, with the server token (server.token, PONDER_TOKEN); scripts send \"Authorization: Bearer <token>\""
			}
			deny(w, r, http.StatusUnauthorized, "invalid_api_key", msg)
			return
		}
		if r.ContentLength > s.cfg.MaxBodyBytes {
			s.metrics.rejected.WithLabelValues("body").Inc()
			deny(w, r, http.StatusRequestEntityTooLarge, "request_too_large",
				fmt.Sprintf("request body of %d bytes is larger than the limit of %d (server.max_body_bytes)", r.ContentLength, s.cfg.MaxBodyBytes))
			return
		}
		if r.Body != nil && r.URL.Path != "/mcp" { // /mcp reads its body itself, capped
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		}
		next.ServeHTTP(w, r)
	})
}

// tokenLogin handles /ui/?token=...: a right token becomes an HttpOnly,
// SameSite=Strict cookie, and the browser is sent to the same page without
// the token in its address.
func (s *Server) tokenLogin(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	if subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.Token)) != 1 {
		s.metrics.rejected.WithLabelValues("token").Inc()
		w.Header().Set("WWW-Authenticate", `Bearer realm="ponder"`)
		deny(w, r, http.StatusUnauthorized, "invalid_api_key", "unauthorized: wrong token in /ui/?token=")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: TokenCookie(r.Host), Value: tok, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: 30 * 24 * 3600})
	q := r.URL.Query()
	q.Del("token")
	dest := "/ui/"
	if enc := q.Encode(); enc != "" {
		dest += "?" + enc
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, dest, http.StatusSeeOther)
}
