package server

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/llm/sim"
)

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func newReq(t *testing.T, method, url, body string, hdr map[string]string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	return req
}

const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

func TestHostAndOriginChecks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: func(c *config.Server) { c.AllowedOrigins = []string{"https://app.example.com"} }})
	port := e.ts.URL[strings.LastIndex(e.ts.URL, ":")+1:]
	mcpHdr := map[string]string{"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
	with := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range mcpHdr {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name   string
		method string
		path   string
		hdr    map[string]string
		want   int
	}{
		{"loopback host", "POST", "/mcp", with(nil), 200},
		{"localhost host and its origin", "POST", "/mcp", with(map[string]string{"Host": "localhost:" + port, "Origin": "http://localhost:" + port}), 200},
		{"ipv6 loopback host", "POST", "/mcp", with(map[string]string{"Host": "[::1]:" + port}), 200},
		{"forged host (DNS rebinding)", "POST", "/mcp", with(map[string]string{"Host": "evil.example.com:" + port}), 403},
		{"forged host on the OpenAI API", "GET", "/v1/models", map[string]string{"Host": "evil.example.com"}, 403},
		{"foreign origin", "POST", "/mcp", with(map[string]string{"Origin": "http://evil.example.com"}), 403},
		{"other local page", "POST", "/mcp", with(map[string]string{"Origin": "http://localhost:3000"}), 403},
		{"null origin", "POST", "/mcp", with(map[string]string{"Origin": "null"}), 403},
		{"allowed origin", "POST", "/mcp", with(map[string]string{"Origin": "https://app.example.com"}), 200},
		{"origin on healthz", "GET", "/healthz", map[string]string{"Origin": "http://evil.example.com"}, 403},
		{"healthz", "GET", "/healthz", nil, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := ""
			if tt.method == "POST" {
				body = initBody
			}
			resp, text := do(t, newReq(t, tt.method, e.ts.URL+tt.path, body, tt.hdr))
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, text)
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("no X-Content-Type-Options: nosniff")
			}
			if tt.want == 403 && tt.path == "/mcp" && !strings.Contains(text, `"jsonrpc":"2.0"`) {
				t.Errorf("a refused MCP request should get a JSON-RPC error: %s", text)
			}
			if tt.want == 403 && strings.HasPrefix(tt.path, "/v1/") && !strings.Contains(text, `"error":{`) {
				t.Errorf("a refused OpenAI request should get an OpenAI error: %s", text)
			}
		})
	}
}

func TestTokenRequiredAndCookieLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{
		cfg: func(c *config.Server) { c.Token = "s3cret-token" },
		opts: func(o *Options) {
			o.UI = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "viewer") })
		},
	})
	cases := []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"no token", nil, 401},
		{"wrong token", map[string]string{"Authorization": "Bearer nope"}, 401},
		{"bearer token", map[string]string{"Authorization": "Bearer s3cret-token"}, 200},
		{"lower-case scheme", map[string]string{"Authorization": "bearer s3cret-token"}, 200},
		// Older versions' cookie held the token: it opens nothing now.
		{"the token as a cookie", map[string]string{"Cookie": "ponder_token_" + portOf(e.ts.Listener.Addr().String()) + "=s3cret-token"}, 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, text := do(t, newReq(t, "GET", e.ts.URL+"/v1/models", "", c.hdr))
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.want, text)
			}
			if c.want == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	// healthz needs no token (probes); metrics does.
	if resp, _ := do(t, newReq(t, "GET", e.ts.URL+"/healthz", "", nil)); resp.StatusCode != 200 {
		t.Errorf("healthz: %d", resp.StatusCode)
	}
	if resp, _ := do(t, newReq(t, "GET", e.ts.URL+"/metrics", "", nil)); resp.StatusCode != 401 {
		t.Errorf("metrics without token: %d", resp.StatusCode)
	}
	// Visiting /ui/?token=... sets the viewer's login cookie and drops the
	// token from the address.
	resp, _ := do(t, newReq(t, "GET", e.ts.URL+"/ui/?token=s3cret-token&run=abc", "", nil))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/?run=abc" {
		t.Fatalf("login: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	r, err := browser.Get(e.ts.URL + "/ui/?token=s3cret-token")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 || string(b) != "viewer" {
		t.Fatalf("the browser did not reach the viewer with its cookie: %d %s", r.StatusCode, b)
	}
	// / sends a logged-in browser to the viewer: the cookie is not sent
	// for /.
	if r, err := browser.Get(e.ts.URL + "/"); err != nil || r.StatusCode != 200 || r.Request.URL.Path != "/ui/" {
		t.Errorf("/ did not lead to the viewer: %v %v", r, err)
	}
	// A browser without the cookie (a new profile, an expired cookie) is
	// told how to log in: it cannot send the header.
	for _, p := range []string{"/ui/", "/ui/api/runs"} {
		if resp, text := do(t, newReq(t, "GET", e.ts.URL+p, "", nil)); resp.StatusCode != 401 || !strings.Contains(text, "/ui/?token=") {
			t.Errorf("%s without a token: %d %s; want a 401 saying to open /ui/?token=", p, resp.StatusCode, text)
		}
	}
	// A browser asking for the page reads one, not raw JSON; the API
	// stays JSON whatever it asks for.
	for p, want := range map[string]string{"/ui/": "text/html", "/ui/api/runs": "application/json"} {
		req := newReq(t, "GET", e.ts.URL+p, "", nil)
		req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
		resp, text := do(t, req)
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("Content-Type"), want) || !strings.Contains(text, "/ui/?token=") {
			t.Errorf("%s from a browser without a token: %d %s %s; want a 401 of %s saying to open /ui/?token=", p, resp.StatusCode, resp.Header.Get("Content-Type"), text, want)
		}
	}
	if resp, _ := do(t, newReq(t, "GET", e.ts.URL+"/ui/?token=wrong", "", nil)); resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("wrong token login: %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

// Browsers send a host name's cookies to every port on it, so another
// user's server on localhost:8000 receives the viewer's login cookie: it
// must not be the token, and it must open only the viewer, on this port,
// for a while.
func TestViewerCookieIsNotTheToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{
		cfg: func(c *config.Server) { c.Token = "s3cret-token" },
		opts: func(o *Options) {
			o.UI = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "viewer") })
		},
	})
	host := e.ts.Listener.Addr().String()
	resp, _ := do(t, newReq(t, "GET", e.ts.URL+"/ui/?token=s3cret-token", "", nil))
	var login, legacy *http.Cookie
	for _, c := range resp.Cookies() {
		switch c.Name {
		case UICookie(host):
			login = c
		case "ponder_token_" + portOf(host):
			legacy = c
		}
	}
	if login == nil {
		t.Fatalf("no %s cookie: %v", UICookie(host), resp.Cookies())
	}
	if strings.Contains(login.Value, "s3cret-token") || login.Path != "/ui" || !login.HttpOnly || login.SameSite != http.SameSiteStrictMode ||
		login.MaxAge <= 0 || login.MaxAge > int(UILifetime/time.Second) {
		t.Errorf("login cookie %+v: want no token in it, Path=/ui, HttpOnly, SameSite=Strict, Max-Age up to %v", login, UILifetime)
	}
	if legacy == nil || legacy.MaxAge >= 0 || legacy.Path != "/" {
		t.Errorf("the old cookie, which held the token, is not removed: %+v", legacy)
	}
	with := func(v string) map[string]string { return map[string]string{"Cookie": UICookie(host) + "=" + v} }
	other := NewUISessions() // another server's, or one before a restart
	exp := func(d time.Duration) int64 { return time.Now().Add(d).Unix() }
	for _, tc := range []struct {
		name, path string
		hdr        map[string]string
		want       int
	}{
		{"the viewer", "/ui/", with(login.Value), 200},
		{"the viewer's API", "/ui/api/runs", with(login.Value), 200},
		{"the OpenAI API", "/v1/models", with(login.Value), 401},
		{"metrics", "/metrics", with(login.Value), 401},
		{"MCP", "/mcp", with(login.Value), 401},
		{"another key", "/ui/api/runs", with(other.sign(portOf(host), exp(time.Hour))), 401},
		{"another port", "/ui/api/runs", with(other.sign("1", exp(time.Hour))), 401},
		{"expiry moved", "/ui/api/runs", with(strconv.FormatInt(exp(2*time.Hour), 10) + login.Value[strings.Index(login.Value, "."):]), 401},
		{"another port's cookie", "/ui/api/runs", map[string]string{"Cookie": "ponder_ui_1=" + login.Value}, 401},
	} {
		method, body, hdr := "GET", "", tc.hdr
		if tc.path == "/mcp" {
			method, body = "POST", initBody
			hdr["Content-Type"], hdr["Accept"] = "application/json", "application/json, text/event-stream"
		}
		if resp, text := do(t, newReq(t, method, e.ts.URL+tc.path, body, hdr)); resp.StatusCode != tc.want {
			t.Errorf("%s: %s with the viewer cookie: %d, want %d: %.200s", tc.name, tc.path, resp.StatusCode, tc.want, text)
		}
	}
	// A login expires.
	u := NewUISessions()
	u.now = func() time.Time { return time.Now().Add(-UILifetime - time.Minute) }
	req := newReq(t, "GET", e.ts.URL+"/ui/", "", nil)
	rec := httptest.NewRecorder()
	u.Login(rec, req)
	c := rec.Result().Cookies()[0]
	req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	u.now = time.Now
	if u.Valid(req) {
		t.Error("a login older than UILifetime is still valid")
	}
	u.now = func() time.Time { return time.Now().Add(-UILifetime + time.Minute) }
	if !u.Valid(req) {
		t.Error("a login younger than UILifetime is not valid")
	}
	// A login is good on its port only, under the same key and cookie
	// name: the cases above use another key, or another name.
	u = NewUISessions()
	rec = httptest.NewRecorder()
	u.Login(rec, httptest.NewRequest("GET", "http://localhost:7801/ui/?token=t", nil))
	c = rec.Result().Cookies()[0]
	elsewhere := httptest.NewRequest("GET", "http://localhost:7802/ui/", nil)
	elsewhere.AddCookie(&http.Cookie{Name: UICookie(elsewhere.Host), Value: c.Value})
	if u.Valid(elsewhere) {
		t.Error("a login on port 7801 is valid on port 7802")
	}
}

// The startup log says where the server listens as configured: Go
// reports a listener on 0.0.0.0 as [::].
func TestListenURL(t *testing.T) {
	t.Parallel()
	v6any, v4any, lo := net.IPv6unspecified, net.IPv4zero, net.IPv4(127, 0, 0, 1)
	for _, tc := range []struct {
		configured string
		got        net.IP // what the listener reports
		want       string
	}{
		{"0.0.0.0:0", v6any, "http://0.0.0.0:7801"},
		{"0.0.0.0:7801", v4any, "http://0.0.0.0:7801"},
		{"[::]:0", v6any, "http://[::]:7801"},
		{":0", v6any, "http://0.0.0.0:7801"},
		{"127.0.0.1:0", lo, "http://127.0.0.1:7801"},
	} {
		if got := ListenURL(tc.configured, &net.TCPAddr{IP: tc.got, Port: 7801}); got != tc.want {
			t.Errorf("listening on %s: %q, want %q", tc.configured, got, tc.want)
		}
	}
}

func TestNonLoopbackWithoutTokenIsRefusedByConfig(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Server.Addr = "0.0.0.0:7800"
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "server.token") {
		t.Fatalf("binding 0.0.0.0 without a token must be refused, got %v", err)
	}
	if _, err := newHostPolicy(config.Server{Addr: "127.0.0.1:1", AllowedOrigins: []string{"*"}}); err == nil {
		t.Fatal("allowed_origins * must be refused")
	}
	// Any Host on a server without a token is DNS rebinding: a page on
	// evil.example rebound to 127.0.0.1 sends Host and Origin evil.example.
	if _, err := newHostPolicy(config.Server{Addr: "127.0.0.1:1", AllowedHosts: []string{"*"}}); err == nil || !strings.Contains(err.Error(), "server.token") {
		t.Fatalf("allowed_hosts * without a token must be refused, naming server.token; got %v", err)
	}
	if _, err := newHostPolicy(config.Server{Addr: "127.0.0.1:1", AllowedHosts: []string{"*"}, Token: "t"}); err != nil {
		t.Fatalf("allowed_hosts * with a token: %v", err)
	}
}

// TestBindAddressIsAnAllowedHost: the docs accept the bind address as a
// Host, loopback ones too; a server on 127.0.0.2 refused its own address
// (the URL it logs) with 403.
func TestBindAddressIsAnAllowedHost(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ addr, host string }{
		{"127.0.0.2:7800", "127.0.0.2:7800"},
		{"[::1]:7800", "[::1]:7800"},
		{"10.1.2.3:7800", "10.1.2.3:7800"},
	} {
		p, err := newHostPolicy(config.Server{Addr: tt.addr, Token: "t"})
		if err != nil {
			t.Fatal(err)
		}
		if !p.hostOK(&http.Request{Host: tt.host}) {
			t.Errorf("bound to %s, Host %s was refused", tt.addr, tt.host)
		}
		if p.hostOK(&http.Request{Host: "evil.example:7800"}) {
			t.Errorf("bound to %s, a foreign Host was accepted", tt.addr)
		}
	}
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: func(c *config.Server) { c.MaxBodyBytes = 1 << 20 }})
	big := strings.Repeat("x", 20<<20)
	for _, path := range []string{"/mcp", "/v1/chat/completions"} {
		resp, text := do(t, newReq(t, "POST", e.ts.URL+path, `{"x":"`+big+`"}`, map[string]string{"Content-Type": "application/json"}))
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(text, "max_body_bytes") {
			t.Errorf("%s: %d %.200s", path, resp.StatusCode, text)
		}
	}
	// Chunked (no Content-Length) bodies are capped too.
	for _, path := range []string{"/mcp", "/v1/chat/completions"} {
		req := newReq(t, "POST", e.ts.URL+path, "", map[string]string{"Content-Type": "application/json"})
		req.Body = io.NopCloser(strings.NewReader(`{"model":"` + big + `"}`))
		req.ContentLength = -1
		resp, text := do(t, req)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("chunked %s: %d %.200s", path, resp.StatusCode, text)
		}
	}
	if resp, _ := do(t, newReq(t, "GET", e.ts.URL+"/healthz", "", nil)); resp.StatusCode != 200 {
		t.Fatal("server stopped answering")
	}
}

func TestRateLimitPerClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: func(c *config.Server) { c.RateLimit = 5; c.RateBurst = 3 }})
	var clock atomic.Int64 // a frozen clock: slow machines refill nothing
	clock.Store(time.Now().UnixNano())
	e.srv.limiter.now = func() time.Time { return time.Unix(0, clock.Load()) }
	codes := []int{}
	for i := 0; i < 5; i++ {
		resp, _ := do(t, newReq(t, "GET", e.ts.URL+"/v1/models", "", nil))
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == 429 && resp.Header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	if codes[0] != 200 || codes[2] != 200 || codes[3] != 429 || codes[4] != 429 {
		t.Fatalf("burst of 3 then refused: %v", codes)
	}
	// healthz is never limited; the bucket refills.
	if resp, _ := do(t, newReq(t, "GET", e.ts.URL+"/healthz", "", nil)); resp.StatusCode != 200 {
		t.Fatal("healthz was rate limited")
	}
	clock.Add(int64(250 * time.Millisecond))
	if resp, _ := do(t, newReq(t, "GET", e.ts.URL+"/v1/models", "", nil)); resp.StatusCode != 200 {
		t.Fatalf("bucket did not refill: %d", resp.StatusCode)
	}
}

func TestRateLimiterBucket(t *testing.T) {
	t.Parallel()
	now := time.Unix(0, 0)
	l := newRateLimiter(2, 2)
	l.now = func() time.Time { return now }
	for i, want := range []bool{true, true, false} {
		if ok, _ := l.allow("a"); ok != want {
			t.Fatalf("request %d: %v", i, ok)
		}
	}
	if ok, _ := l.allow("b"); !ok {
		t.Fatal("clients share a bucket")
	}
	_, wait := l.allow("a")
	if wait <= 0 || wait > time.Second {
		t.Fatalf("wait %s", wait)
	}
	now = now.Add(500 * time.Millisecond)
	if ok, _ := l.allow("a"); !ok {
		t.Fatal("no refill after 0.5 s at 2/s")
	}
	if newRateLimiter(0, 0) != nil {
		t.Fatal("rate 0 means no limiter")
	}
}

func TestMetricsAndHealth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.rpc(t)
	c.call("solve", map[string]any{"problem": "What is 2 + 2?"}, nil)
	_, text := do(t, newReq(t, "GET", e.ts.URL+"/metrics", "", nil))
	for _, want := range []string{`ponder_solves_total{stopped="done",strategy="cot",via="mcp"} 1`,
		`ponder_mcp_tool_calls_total{outcome="ok",tool="solve"} 1`, "ponder_http_requests_total", "ponder_llm_calls_total", "process_resident_memory_bytes"} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	_, text = do(t, newReq(t, "GET", e.ts.URL+"/healthz", "", nil))
	var h map[string]any
	if err := json.Unmarshal([]byte(text), &h); err != nil || h["status"] != "ok" || h["llm_configured"] != true {
		t.Fatalf("healthz: %s", text)
	}
	resp, text := do(t, newReq(t, "GET", e.ts.URL+"/nope", "", nil))
	if resp.StatusCode != 404 || !strings.Contains(text, "/mcp") {
		t.Fatalf("unknown path: %d %s", resp.StatusCode, text)
	}
	resp, _ = do(t, newReq(t, "GET", e.ts.URL+"/ui/", "", nil))
	if resp.StatusCode != 404 {
		t.Fatalf("ui placeholder: %d", resp.StatusCode)
	}
}

func TestMCPSessionCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: func(c *config.Server) { c.MaxSessions = 3 }})
	var clients []*rpc
	for i := 0; i < 5; i++ {
		clients = append(clients, e.rpc(t))
	}
	for i, c := range clients {
		msgs, resp := c.post(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "ping"})
		want := 200
		if i < 2 {
			want = 404 // the least recently used sessions were ended
		}
		if resp.StatusCode != want {
			t.Errorf("session %d: status %d, want %d: %v", i, resp.StatusCode, want, msgs)
		}
	}
	if n := e.srv.mcpSess.Len(); n != 3 {
		t.Fatalf("%d MCP sessions live, cap 3", n)
	}
	// An ended session's client starts over.
	again := e.rpc(t)
	if msgs, resp := again.post(map[string]any{"jsonrpc": "2.0", "id": 2, "method": "ping"}); resp.StatusCode != 200 {
		t.Fatalf("a new session after the cap: %d %v", resp.StatusCode, msgs)
	}
}

// A GET /mcp opens the event stream of an initialized session: one
// without a session id, or with an id never issued, must neither open a
// stream nor take a place among the capped sessions (it used to, so
// max_sessions such GETs, from anyone who can reach the port, ended every
// real client's session).
func TestMCPGetStreamNeedsALiveSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: func(c *config.Server) { c.MaxSessions = 2 }})
	a, b := e.rpc(t), e.rpc(t)
	get := func(session string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(ctxTimeout(t, 5*time.Second), http.MethodGet, e.ts.URL+"/mcp", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "text/event-stream")
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	for range 3 {
		if resp := get(""); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("GET /mcp without a session: %d %s, want 400", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	if resp := get("mcp-session-made-up"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /mcp with an unknown session: %d, want 404", resp.StatusCode)
	}
	for i, c := range []*rpc{a, b} {
		if msgs, resp := c.post(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "ping"}); resp.StatusCode != 200 {
			t.Fatalf("client %d lost its session to stray GETs: %d %v", i, resp.StatusCode, msgs)
		}
	}
	if n := e.srv.mcpSess.Len(); n != 2 {
		t.Fatalf("%d MCP sessions, want the 2 initialized ones", n)
	}
	if resp := get(a.session); resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("GET /mcp with a live session: %d %s, want an event stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// A session is idle only between requests: one whose solve runs longer
// than the TTL keeps its session (it used to be ended mid-solve, so the
// client's next request got 404), and idles out after the TTL once the
// solve is over.
func TestMCPSessionIsNotIdleWhileASolveRuns(t *testing.T) {
	t.Parallel()
	const ttl = 200 * time.Millisecond
	e := newEnv(t, envOptions{sim: sim.Options{Latency: 150 * time.Millisecond},
		cfg: func(c *config.Server) { c.SessionTTL = ttl }})
	c := e.rpc(t)
	start := time.Now()
	r := result(t, c.call("solve", slowSolve, nil))
	if r["isError"] == true {
		t.Fatal(toolText(r))
	}
	if d := time.Since(start); d < 2*ttl {
		t.Fatalf("the solve took %s: too short to outlast the TTL of %s", d, ttl)
	}
	if msgs, resp := c.post(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "ping"}); resp.StatusCode != 200 {
		t.Fatalf("the session ended during its solve: %d %v", resp.StatusCode, msgs)
	}
	e.srv.mcpSess.sweep()
	if n := e.srv.mcpSess.Len(); n != 1 {
		t.Fatalf("%d MCP sessions after a sweep, want the one just used", n)
	}
	time.Sleep(ttl + 50*time.Millisecond)
	if msgs, resp := c.post(map[string]any{"jsonrpc": "2.0", "id": 2, "method": "ping"}); resp.StatusCode != 404 {
		t.Fatalf("an idle session did not expire: %d %v", resp.StatusCode, msgs)
	}
	e.srv.mcpSess.sweep()
	if n := e.srv.mcpSess.Len(); n != 0 {
		t.Fatalf("%d MCP sessions after sweeping an idle one", n)
	}
}

// An HTTP/2 client that skips TLS (h2c with prior knowledge) is told h2c is
// not supported (505), not that Host "" is not allowed (403).
func TestH2CPriorKnowledgeIsToldWhy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(conn)
	if !strings.HasPrefix(string(b), "HTTP/1.1 505") || !strings.Contains(string(b), "h2c) is not supported") {
		t.Fatalf("got %q", b)
	}
}

// A session idle beyond server.session_ttl is refused on its next POST
// with 404, so the client initializes again, as the MCP spec says: at
// once, not only after the sweep (every TTL/2) has ended it. The refusal
// ends it (it no longer counts), and the client's new session works.
func TestMCPExpiredSessionIsRefusedOnPost(t *testing.T) {
	t.Parallel()
	// A TTL of an hour: the sweep never runs during the test, and the
	// session's clock is moved on by hand.
	e := newEnv(t, envOptions{cfg: func(c *config.Server) { c.SessionTTL = time.Hour }})
	m := e.srv.mcpSess
	var skew time.Duration
	advance := func(d time.Duration) {
		m.mu.Lock()
		skew += d
		now := time.Now().Add(skew)
		m.now = func() time.Time { return now }
		m.mu.Unlock()
	}
	c := e.rpc(t)
	ping := func(id int) (int, string) {
		t.Helper()
		msgs, resp := c.post(map[string]any{"jsonrpc": "2.0", "id": id, "method": "ping"})
		return resp.StatusCode, mustJSONString(msgs)
	}
	advance(59 * time.Minute)
	if code, msgs := ping(1); code != 200 {
		t.Fatalf("a session used 59 minutes ago (TTL 1h) was refused: %d %s", code, msgs)
	}
	advance(61 * time.Minute) // from that ping
	code, msgs := ping(2)
	if code != http.StatusNotFound || !strings.Contains(msgs, "expired") || !strings.Contains(msgs, "initialize") {
		t.Fatalf("a session idle for 61 minutes (TTL 1h): %d %s, want 404 saying it expired and to initialize", code, msgs)
	}
	if n := m.Len(); n != 0 {
		t.Fatalf("%d MCP sessions after the expired one was refused, want it ended", n)
	}
	if code, msgs := ping(3); code != http.StatusNotFound {
		t.Fatalf("the ended session again: %d %s, want 404", code, msgs)
	}
	again := e.rpc(t)
	if msgs, resp := again.post(map[string]any{"jsonrpc": "2.0", "id": 4, "method": "ping"}); resp.StatusCode != 200 {
		t.Fatalf("the client's new session: %d %v", resp.StatusCode, msgs)
	}
}

// A request with a valid token is limited per token, not per address: two
// clients with their own tokens behind one address (a NAT, a proxy) are
// two buckets, and a token gets no more by connecting from another
// address. A wrong token is limited per address (and refused). Before, one
// bucket per address held every token's requests.
func TestRateLimitPerToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: func(c *config.Server) {
		c.Token, c.Tokens = "operator-token", []string{"alice-token", "bob-token"}
		c.RateLimit, c.RateBurst = 5, 2
	}})
	var clock atomic.Int64 // a frozen clock: slow machines refill nothing
	clock.Store(time.Now().UnixNano())
	e.srv.limiter.now = func() time.Time { return time.Unix(0, clock.Load()) }
	// from sends a request from a local address of its own (127.0.0.0/8
	// is all loopback).
	from := func(addr, token string) int {
		t.Helper()
		tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(addr)}}).DialContext, DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		req := newReq(t, "GET", e.ts.URL+"/v1/models", "", map[string]string{"Authorization": "Bearer " + token})
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	steps := []struct {
		what, addr, token string
		want              int
	}{
		{"alice", "127.0.0.1", "alice-token", 200},
		{"alice again", "127.0.0.1", "alice-token", 200},
		{"alice past her burst", "127.0.0.1", "alice-token", 429},
		{"bob, behind the same address", "127.0.0.1", "bob-token", 200},
		{"alice from another address", "127.0.0.2", "alice-token", 429},
		{"the operator's token, from alice's address", "127.0.0.1", "operator-token", 200},
		{"a wrong token", "127.0.0.3", "guess-1", 401},
		{"a wrong token again", "127.0.0.3", "guess-2", 401},
		{"a wrong token past the address's burst", "127.0.0.3", "guess-3", 429},
		{"bob from the guesser's address", "127.0.0.3", "bob-token", 200},
	}
	for _, st := range steps {
		if got := from(st.addr, st.token); got != st.want {
			t.Errorf("%s: %d, want %d", st.what, got, st.want)
		}
	}
	// Each of the tokens logs a browser in to the viewer.
	resp, _ := do(t, newReq(t, "GET", e.ts.URL+"/ui/?token=bob-token", "", nil))
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("viewer login with one of server.tokens: %d", resp.StatusCode)
	}
}

// The rate limit counts an IPv6 client by its /64, which one host commonly
// has whole (a new address per request would escape a per-address limit),
// and an IPv4 one, mapped or not, by its address.
func TestAddrKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ a, b string }{
		{"[2001:db8:1:2:aaaa::1]:5000", "[2001:db8:1:2:bbbb:cccc:dddd:eeee]:6000"},
		{"[::ffff:10.0.0.1]:1", "10.0.0.1:2"},
		{"[::1]:1", "[::1]:2"},
	} {
		if addrKey(tc.a) != addrKey(tc.b) {
			t.Errorf("%s and %s are counted apart: %s, %s", tc.a, tc.b, addrKey(tc.a), addrKey(tc.b))
		}
	}
	for _, tc := range []struct{ a, b string }{
		{"[2001:db8:1:2::1]:1", "[2001:db8:1:3::1]:1"},
		{"10.0.0.1:1", "10.0.0.2:1"},
	} {
		if addrKey(tc.a) == addrKey(tc.b) {
			t.Errorf("%s and %s are counted together: %s", tc.a, tc.b, addrKey(tc.a))
		}
	}
}
