package server

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
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

// ListenURL is the http:// address to print for a listener opened on the
// configured address: the listener's own, except that a wildcard bind
// reads as configured (Go reports 0.0.0.0 as [::]), with the port it got.
func ListenURL(configured string, addr net.Addr) string {
	a := addr.String()
	if ta, ok := addr.(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
		host := hostOf(configured)
		if host == "" { // ":7800": every interface
			host = "0.0.0.0"
		}
		a = net.JoinHostPort(host, strconv.Itoa(ta.Port))
	}
	return "http://" + a
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
	default:
		// The bind address itself, loopback ones included: a server on
		// 127.0.0.2 (one per user or service) is reached as 127.0.0.2.
		p.hosts[strings.Trim(bind, "[]")] = true
	}
	for _, h := range cfg.AllowedHosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "*" {
			if cfg.Token == "" && len(cfg.Tokens) == 0 {
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

// rateLimiter is a token bucket per client: per bearer token for
// requests that carry a valid one, else per address (rateKey).
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

// rateKey is the bucket r's requests are counted in. A valid bearer token
// names its client wherever it connects from: two clients with their own
// tokens behind one NAT or proxy are two buckets, and one token gets no
// more by using more addresses. Without one (no token configured, a wrong
// one, the viewer's login cookie) the client is its address, an IPv6 one
// by its /64, which one host commonly has whole. X-Forwarded-For is not
// read: any client can send it, and a limit keyed by it would be escaped
// with a made-up address per request.
func rateKey(r *http.Request, token int) string {
	if token >= 0 {
		return "token " + strconv.Itoa(token)
	}
	return "addr " + addrKey(r.RemoteAddr)
}

// addrKey is a client address as the rate limit counts it: an IPv4
// address, or an IPv6 address's /64.
func addrKey(remote string) string {
	h, _, err := net.SplitHostPort(remote)
	if err != nil {
		h = remote
	}
	ip := net.ParseIP(h)
	if ip == nil {
		return h
	}
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

func clientAddr(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}

// UILifetime is how long a browser stays logged in to the web viewer
// after opening /ui/?token=. The login cookie can reach other servers on
// the same host name (cookies ignore ports): what it holds expires.
const UILifetime = 12 * time.Hour

// UICookie is the name of the web viewer's login cookie for the server at
// host (the request's Host): ponder_ui, then the port, so that two servers
// on one host name keep their own.
func UICookie(host string) string {
	if p := portOf(host); p != "" {
		return "ponder_ui_" + p
	}
	return "ponder_ui"
}

func portOf(host string) string {
	if _, port, err := net.SplitHostPort(host); err == nil {
		return port
	}
	return ""
}

// UISessions issues and checks the web viewer's login cookie. The cookie
// never holds the server token: browsers send a host's cookies to every
// port on it, so another local server (another user's page on
// localhost:8000) receives it. It holds an expiry and an HMAC of it and
// the port under a key made at start: good only for the viewer (/ui, never
// /v1, /mcp or /metrics), on that port, until it expires or the server
// restarts. Nothing is kept per login.
type UISessions struct {
	key [32]byte
	ttl time.Duration
	now func() time.Time
}

// NewUISessions returns logins that last UILifetime under a fresh key.
func NewUISessions() *UISessions {
	u := &UISessions{ttl: UILifetime, now: time.Now}
	_, _ = rand.Read(u.key[:]) // never fails (crypto/rand)
	return u
}

func (u *UISessions) sign(port string, exp int64) string {
	m := hmac.New(sha256.New, u.key[:])
	fmt.Fprintf(m, "ponder viewer login\x00%s\x00%d", port, exp)
	return strconv.FormatInt(exp, 10) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Login answers a right ?token= with the viewer's cookie, scoped to /ui,
// HttpOnly and SameSite=Strict, and removes the cookie of older versions,
// which held the token itself.
func (u *UISessions) Login(w http.ResponseWriter, r *http.Request) {
	exp := u.now().Add(u.ttl).Unix()
	http.SetCookie(w, &http.Cookie{Name: UICookie(r.Host), Value: u.sign(portOf(r.Host), exp), Path: "/ui",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: int(u.ttl / time.Second)})
	if p := portOf(r.Host); p != "" {
		http.SetCookie(w, &http.Cookie{Name: "ponder_token_" + p, Value: "", Path: "/", MaxAge: -1})
	}
}

// Valid says whether r carries an unexpired viewer cookie made by u for
// the port r reached.
func (u *UISessions) Valid(r *http.Request) bool {
	name, port, now := UICookie(r.Host), portOf(r.Host), u.now().Unix()
	for _, c := range r.CookiesNamed(name) {
		exp, _, ok := strings.Cut(c.Value, ".")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(exp, 10, 64)
		if err != nil || n <= now || n > now+int64(u.ttl/time.Second) {
			continue
		}
		if hmac.Equal([]byte(c.Value), []byte(u.sign(port, n))) {
			return true
		}
	}
	return false
}

// isUI says whether a path is the web viewer's, the only one its login
// cookie opens.
func isUI(path string) bool {
	return path == "/ui" || strings.HasPrefix(path, "/ui/")
}

// bearerTokens are the tokens a request may carry: server.token, then
// server.tokens.
func bearerTokens(cfg config.Server) [][]byte {
	var out [][]byte
	for _, t := range append([]string{cfg.Token}, cfg.Tokens...) {
		if t != "" {
			out = append(out, []byte(t))
		}
	}
	return out
}

// tokenOf returns which of the configured tokens r's Authorization header
// carries (its index), or -1.
func (s *Server) tokenOf(r *http.Request) int {
	h := r.Header.Get("Authorization")
	if len(s.tokens) == 0 || len(h) <= 7 || !strings.EqualFold(h[:7], "bearer ") {
		return -1
	}
	return s.matchToken(strings.TrimSpace(h[7:]))
}

// matchToken returns the index of the configured token tok is, or -1. Each
// is compared in constant time, all of them, so that the time taken tells
// nothing of which matched.
func (s *Server) matchToken(tok string) int {
	found := -1
	for i, t := range s.tokens {
		if subtle.ConstantTimeCompare([]byte(tok), t) == 1 && found < 0 {
			found = i
		}
	}
	return found
}

// authorized says whether r may pass: no token is configured, it carries
// one (token, from tokenOf), or on the viewer's paths the login cookie.
func (s *Server) authorized(r *http.Request, ui *UISessions, token int) bool {
	if len(s.tokens) == 0 || token >= 0 {
		return true
	}
	return isUI(r.URL.Path) && ui.Valid(r)
}

// deny answers a refused request in the format of its route: JSON-RPC
// for /mcp, OpenAI errors for /v1, else {"error": ...}.
func deny(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	if r.ContentLength != 0 {
		// The body is not wanted, but net/http reads what is left of a
		// small one before it answers (so the connection can serve the
		// next request): a client that sends it slowly, or not at all,
		// gets its answer a second later, and loses the connection.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(time.Second))
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/mcp"):
		writeRPCError(w, status, -32600, msg)
	case strings.HasPrefix(r.URL.Path, "/v1/"):
		writeAPIError(w, denial(status, code, msg))
	case isUI(r.URL.Path) && !strings.HasPrefix(r.URL.Path, "/ui/api/") && strings.Contains(r.Header.Get("Accept"), "text/html"):
		// A browser opening the viewer reads a page, not raw JSON.
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<!doctype html>\n<meta charset=\"utf-8\">\n<title>Ponder: %d %s</title>\n<h1>%d %s</h1>\n<p>%s</p>\n",
			status, http.StatusText(status), status, http.StatusText(status), html.EscapeString(msg))
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
	}
}

// guard is the middleware every request passes: Host, Origin, rate limit,
// token, body size.
func (s *Server) guard(hosts *hostPolicy, next http.Handler) http.Handler {
	ui := NewUISessions()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tw, r := s.timed(w, r)
		// net/http sends what is buffered once the handler returns.
		defer tw.renew()
		w = tw
		// Every answer, JSON-RPC, OpenAI or event stream, is what its
		// Content-Type says.
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.Method == "PRI" && r.ProtoMajor == 2 {
			// An HTTP/2 client that skips TLS (h2c, prior knowledge): its
			// preface has no Host, and it was told that Host "" is not
			// allowed.
			http.Error(w, "HTTP/2 without TLS (h2c) is not supported: speak HTTP/1.1 to this address, or put a TLS proxy in front for HTTP/2",
				http.StatusHTTPVersionNotSupported)
			return
		}
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
		if r.URL.Path == "/healthz" || (r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead)) {
			// Probes; and / only redirects to /ui/, whose login cookie a
			// browser does not send for /.
			next.ServeHTTP(w, r)
			return
		}
		token := s.tokenOf(r)
		if ok, wait := s.limiter.allow(rateKey(r, token)); !ok {
			s.metrics.rejected.WithLabelValues("rate").Inc()
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			deny(w, r, http.StatusTooManyRequests, "rate_limit_exceeded", "too many requests: slow down (server.rate_limit)")
			return
		}
		if len(s.tokens) > 0 && (r.URL.Path == "/ui/" || r.URL.Path == "/ui") && r.URL.Query().Has("token") {
			s.tokenLogin(w, r, ui)
			return
		}
		if !s.authorized(r, ui, token) {
			s.metrics.rejected.WithLabelValues("token").Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="ponder"`)
			msg := "unauthorized: send the server token as \"Authorization: Bearer <token>\" (server.token, PONDER_TOKEN)"
			if isUI(r.URL.Path) {
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

// tokenLogin handles /ui/?token=...: a right token becomes the viewer's
// login cookie (not the token), and the browser is sent to the same page
// without the token in its address.
func (s *Server) tokenLogin(w http.ResponseWriter, r *http.Request, ui *UISessions) {
	tok := r.URL.Query().Get("token")
	if s.matchToken(tok) < 0 {
		s.metrics.rejected.WithLabelValues("token").Inc()
		w.Header().Set("WWW-Authenticate", `Bearer realm="ponder"`)
		deny(w, r, http.StatusUnauthorized, "invalid_api_key", "unauthorized: wrong token in /ui/?token=")
		return
	}
	ui.Login(w, r)
	q := r.URL.Query()
	q.Del("token")
	dest := "/ui/"
	if enc := q.Encode(); enc != "" {
		dest += "?" + enc
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, dest, http.StatusSeeOther)
}

// bodyTimeout bounds how long a client may take to send a request's body
// (http.Server's ReadHeaderTimeout bounds its headers); writeTimeout
// bounds one write of a response, so a client that stops reading (a
// stream it never reads) loses its connection, and its searches, instead
// of holding them for ever. Neither bounds a whole request: a solve, and
// the streams following it, may take as long as they need.
const (
	bodyTimeout  = time.Minute
	writeTimeout = time.Minute
)

// timed puts r's body under the server's body timeout and every write of
// w under its write timeout. (http.Server's ReadTimeout and WriteTimeout
// would bound whole requests: a long solve, or an event stream.)
func (s *Server) timed(w http.ResponseWriter, r *http.Request) (*timedWriter, *http.Request) {
	rc := http.NewResponseController(w)
	tw := &timedWriter{ResponseWriter: w, rc: rc, d: s.writeTimeout}
	tw.renew()
	if r.Body != nil && r.Body != http.NoBody && s.bodyTimeout > 0 {
		// A body not sent in time fails its read; one never read (a
		// refused request) is still bounded: net/http reads what is left
		// of a small body before it answers.
		if rc.SetReadDeadline(time.Now().Add(s.bodyTimeout)) == nil {
			r.Body = &timedBody{ReadCloser: r.Body, rc: rc, d: s.bodyTimeout}
		}
	}
	return tw, r
}

// timedBody lifts the read deadline once the body has been read: net/http
// then reads the connection to learn that the client went away, and a
// deadline there would cancel the request.
type timedBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	d    time.Duration
	done bool
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// Not "read tcp 10.0.0.5:7800->...: i/o timeout".
		err = fmt.Errorf("the request body did not all arrive within %v", b.d)
	}
	return n, err
}

// timedWriter gives each write, header and flush writeTimeout to reach the
// client.
type timedWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *timedWriter) renew() {
	if w.d > 0 {
		_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	}
}

func (w *timedWriter) WriteHeader(code int) {
	w.renew()
	w.ResponseWriter.WriteHeader(code)
}

func (w *timedWriter) Write(p []byte) (int, error) {
	w.renew()
	return w.ResponseWriter.Write(p)
}

func (w *timedWriter) Flush() {
	w.renew()
	_ = w.rc.Flush()
}

func (w *timedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
