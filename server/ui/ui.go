// Package ui is Ponder's web trace viewer: one page, embedded in the binary,
// that lists reasoning runs, draws each run's structure (nested searches
// included) and follows running searches live through server-sent events.
//
// The handler serves the page and its JSON/SSE API under the prefix it is
// mounted at (default /ui):
//
//	GET /ui/                          the page (HTML, JS and CSS, no CDN)
//	GET /ui/api/runs                  runs, newest first ([]traces.Summary)
//	GET /ui/api/runs/events           SSE: event "runs" with the list whenever it changes
//	GET /ui/api/runs/{id}             one trace (core.Trace; a running one rebuilt from its events)
//	GET /ui/api/runs/{id}/events      SSE: event "events" with batches of trace events after
//	                                  ?after=SEQ or Last-Event-ID, then event "end"
//
// Usage, behind the server's own Host/Origin and token checks:
//
//	mux.Handle("/ui/", ui.Handler(store, &ui.Options{Logger: log, Done: ctx.Done()}))
//	mux.Handle("/ui", ui.Handler(store, nil)) // redirects to /ui/
//
// Everything in a trace is model output: the page only ever sets it as text
// (textContent), and every response carries a Content-Security-Policy that
// allows no inline script.
package ui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/text"
	"github.com/ponder-rlm/ponder/traces"
)

//go:embed assets
var assets embed.FS

// Options configure Handler. The zero value is valid.
type Options struct {
	Logger zerolog.Logger
	// Prefix is the path the handler is mounted at (default "/ui"). Requests
	// under it are served with the prefix removed; requests already stripped
	// (http.StripPrefix) are served as they are.
	Prefix string
	// Done, when closed, ends open event streams (server shutdown, which
	// otherwise waits for them).
	Done <-chan struct{}
	// Heartbeat is how often an idle event stream sends a comment, so
	// proxies keep it open (default 15s).
	Heartbeat time.Duration
	// MaxStreams bounds concurrent event streams (default 64); beyond it
	// the API answers 503.
	MaxStreams int
}

// CSP is the Content-Security-Policy of every response: the page's own
// script and style only, no inline script, no framing.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

type handler struct {
	store   *traces.Store
	log     zerolog.Logger
	prefix  string
	done    <-chan struct{}
	beat    time.Duration
	max     int64
	streams atomic.Int64
	mux     *http.ServeMux
	files   map[string]asset
}

type asset struct {
	body  []byte
	ctype string
	etag  string
}

// Handler returns the viewer for store.
func Handler(store *traces.Store, opts *Options) http.Handler {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Prefix == "" {
		o.Prefix = "/ui"
	}
	o.Prefix = "/" + strings.Trim(o.Prefix, "/")
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = 64
	}
	if store == nil {
		store, _ = traces.Open("", 1, nil) // no store: an empty runs list
	}
	h := &handler{store: store, log: o.Logger, prefix: o.Prefix, done: o.Done, beat: o.Heartbeat,
		max: int64(o.MaxStreams), files: loadAssets()}
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", h.page)
	m.HandleFunc("GET /{file}", h.asset)
	m.HandleFunc("GET /api/runs", h.runs)
	m.HandleFunc("GET /api/runs/events", h.runsEvents)
	m.HandleFunc("GET /api/runs/{id}", h.trace)
	m.HandleFunc("GET /api/runs/{id}/events", h.traceEvents)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			apiError(w, http.StatusMethodNotAllowed, "the trace viewer is read-only: use GET")
			return
		}
		apiError(w, http.StatusNotFound, fmt.Sprintf("no such page: %s", r.URL.Path))
	})
	h.mux = m
	return h
}

func loadAssets() map[string]asset {
	out := map[string]asset{}
	_ = fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ctype := map[string]string{
			".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
			".css": "text/css; charset=utf-8", ".svg": "image/svg+xml",
		}[path.Ext(p)]
		out[path.Base(p)] = asset{body: b, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	return out
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	p := r.URL.Path
	switch {
	case p == h.prefix:
		// /ui → /ui/ so the page's relative URLs resolve under the prefix.
		u := *r.URL
		u.Path = h.prefix + "/"
		http.Redirect(w, r, u.RequestURI(), http.StatusMovedPermanently)
		return
	case strings.HasPrefix(p, h.prefix+"/"):
		r2 := new(http.Request)
		*r2 = *r
		u := *r.URL
		u.Path = p[len(h.prefix):]
		u.RawPath = ""
		r2.URL = &u
		r = r2
	}
	// Dot segments never name anything here; the inner mux would redirect
	// them to a path outside the prefix.
	if cp := path.Clean(r.URL.Path); cp != r.URL.Path && cp+"/" != r.URL.Path {
		apiError(w, http.StatusNotFound, fmt.Sprintf("no such page: %s", text.Clip(r.URL.Path, 80)))
		return
	}
	h.mux.ServeHTTP(w, r)
}

func (h *handler) page(w http.ResponseWriter, r *http.Request) {
	h.serveAsset(w, r, "index.html")
}

func (h *handler) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if _, ok := h.files[name]; !ok || name == "index.html" {
		apiError(w, http.StatusNotFound, fmt.Sprintf("no such page: %s", r.URL.Path))
		return
	}
	h.serveAsset(w, r, name)
}

func (h *handler) serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	a := h.files[name]
	w.Header().Set("Content-Type", a.ctype)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", a.etag)
	if r.Header.Get("If-None-Match") == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeMaybeGzip(w, r, a.body)
}

// runs answers the runs list.
func (h *handler) runs(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, r, h.store.List())
}

// trace answers one run's trace document: a finished one as stored (not
// decoded and encoded again: a 10,000-node trace is 15 MB of JSON), a
// running one rebuilt from its events so far.
func (h *handler) trace(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, live := h.store.Live(id); !live {
		b, err := h.store.Raw(id)
		if err == nil {
			// Served as stored, so checked first: a file damaged on disk
			// (truncated, overwritten) is an error, not a 200 the page
			// cannot read.
			if err := checkTrace(b); err != nil {
				h.unreadable(w, id, err)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			writeMaybeGzip(w, r, b)
			return
		}
		if !errors.Is(err, traces.ErrNotFound) {
			h.unreadable(w, id, err)
			return
		}
	}
	t, err := h.store.Get(id)
	switch serr := h.store.SaveError(id); {
	case serr != nil:
		// Its result handed out the id: say why it is not here.
		apiError(w, http.StatusNotFound, fmt.Sprintf("trace %q was not saved: %s", id, traces.UnsavedReason(serr)))
	case errors.Is(err, traces.ErrNotFound):
		apiError(w, http.StatusNotFound, fmt.Sprintf("trace %q not found: pick a run from the list (it may have been evicted)", text.Clip(id, 40)))
	case err != nil:
		h.unreadable(w, id, err)
	default:
		writeJSON(w, r, t)
	}
}

// checkTrace says why a stored trace document is not one: not JSON
// (truncated), not a Ponder trace, or one whose structure has no nodes or
// no root, which the page would draw as an empty tree without a word.
// Validating is half the cost of decoding: the rest is read only as far
// as needed ("schema" and "structure" come before the events in every
// trace written, and the root first among the nodes).
func checkTrace(b []byte) error {
	if !json.Valid(b) {
		var v any
		err := json.Unmarshal(b, &v) // only to say where it breaks
		return fmt.Errorf("the stored file is damaged (%d bytes, truncated?): %v", len(b), err)
	}
	schema := ""
	_ = findKey(b, "schema", func(dec *json.Decoder) error { return dec.Decode(&schema) })
	if schema != core.TraceSchema {
		return fmt.Errorf("the stored file is not a Ponder trace: schema %q, want %q", text.Clip(schema, 40), core.TraceSchema)
	}
	nodes, root := 0, false
	_ = findKey(b, "structure", func(dec *json.Decoder) error {
		return findKeyIn(dec, "nodes", func(dec *json.Decoder) error {
			if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
				return err // null, or not a list: no nodes
			}
			for dec.More() && !root {
				var n struct {
					ID *int64 `json:"id"`
				}
				if err := dec.Decode(&n); err != nil {
					return err
				}
				nodes++
				root = n.ID != nil && *n.ID == 0
			}
			return nil
		})
	})
	switch {
	case nodes == 0:
		return errors.New("the stored file is damaged: its structure has no nodes, not even the problem at its root")
	case !root:
		return fmt.Errorf("the stored file is damaged: its structure's %d nodes have no root (node 0, the problem)", nodes)
	}
	return nil
}

// findKey calls read with a decoder at the value of the top-level key of
// the JSON object b, if it has one.
func findKey(b []byte, key string, read func(*json.Decoder) error) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	return findKeyIn(dec, key, read)
}

// findKeyIn is findKey for the object that dec is at.
func findKeyIn(dec *json.Decoder, key string, read func(*json.Decoder) error) error {
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return err
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return err
		}
		if k == key {
			return read(dec)
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}

// unreadable answers a stored trace that cannot be served. The log keeps
// the whole error; the client's names the file without the data directory
// (a remote client has no business knowing the server's paths).
func (h *handler) unreadable(w http.ResponseWriter, id string, err error) {
	h.log.Warn().Err(err).Str("trace", id).Msg("trace unreadable")
	msg := oneLine(err)
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path != "" {
		msg = strings.ReplaceAll(msg, pe.Path, filepath.Base(pe.Path))
	}
	apiError(w, http.StatusInternalServerError, "trace "+id+" could not be read: "+msg)
}

func writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		apiError(w, http.StatusInternalServerError, "encode response: "+oneLine(err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	writeMaybeGzip(w, r, b)
}

// writeMaybeGzip compresses large bodies for clients that accept it: a
// 10,000-node trace is tens of megabytes of repetitive JSON.
func writeMaybeGzip(w http.ResponseWriter, r *http.Request, b []byte) {
	w.Header().Add("Vary", "Accept-Encoding")
	if len(b) < 16<<10 || !acceptsGzip(r) {
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		if r.Method != http.MethodHead {
			_, _ = w.Write(b)
		}
		return
	}
	w.Header().Set("Content-Encoding", "gzip")
	if r.Method == http.MethodHead {
		return
	}
	zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	_, _ = zw.Write(b)
	_ = zw.Close()
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.TrimSpace(q) != "q=0" {
			return true
		}
	}
	return false
}

// apiError writes {"error": msg} with status.
func apiError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func oneLine(err error) string {
	return strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
}

// sse is one server-sent event stream.
type sse struct {
	w  io.Writer
	rc *http.ResponseController
}

func (h *handler) openStream(w http.ResponseWriter) (*sse, func(), bool) {
	if h.streams.Add(1) > h.max {
		h.streams.Add(-1)
		w.Header().Set("Retry-After", "5")
		apiError(w, http.StatusServiceUnavailable, fmt.Sprintf("too many open viewers (%d): close some tabs", h.max))
		return nil, nil, false
	}
	rc := http.NewResponseController(w)
	// A stream outlives the server's write timeout by design.
	_ = rc.SetWriteDeadline(time.Time{})
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s := &sse{w: w, rc: rc}
	// Tell the browser how long to wait before reconnecting.
	if _, err := io.WriteString(w, "retry: 2000\n\n"); err != nil {
		h.streams.Add(-1)
		return nil, nil, false
	}
	_ = rc.Flush()
	return s, func() { h.streams.Add(-1) }, true
}

func (s *sse) send(event, id string, data []byte) error {
	var b strings.Builder
	b.Grow(len(data) + 64)
	if id != "" {
		b.WriteString("id: " + id + "\n")
	}
	b.WriteString("event: " + event + "\ndata: ")
	b.Write(data) // JSON: no raw newlines
	b.WriteString("\n\n")
	if _, err := io.WriteString(s.w, b.String()); err != nil {
		return err
	}
	return s.rc.Flush()
}

func (s *sse) comment(text string) error {
	if _, err := io.WriteString(s.w, ": "+text+"\n\n"); err != nil {
		return err
	}
	return s.rc.Flush()
}

// runsEvents streams the runs list: once at once, then whenever a run
// starts or finishes, and every 2s while runs are live (node counts).
func (h *handler) runsEvents(w http.ResponseWriter, r *http.Request) {
	s, closeStream, ok := h.openStream(w)
	if !ok {
		return
	}
	defer closeStream()
	beat := time.NewTicker(h.beat)
	defer beat.Stop()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	var last []byte
	for {
		changed := h.store.Changed()
		list := h.store.List()
		b, err := json.Marshal(list)
		if err != nil {
			return
		}
		if string(b) != string(last) {
			if err := s.send("runs", "", b); err != nil {
				return
			}
			last = b
		}
		live := false
		for _, sum := range list {
			live = live || sum.Status == core.StopRunning
		}
		for waiting := true; waiting; {
			select {
			case <-r.Context().Done():
				return
			case <-h.done:
				return
			case <-changed:
				waiting = false
			case <-tick.C:
				waiting = !live
			case <-beat.C:
				if err := s.comment("ping"); err != nil {
					return
				}
			}
		}
	}
}

// batch bounds the events sent in one SSE message.
const batch = 500

// traceEvents streams a live run's events after ?after=SEQ (or the
// Last-Event-ID a reconnecting browser sends), in batches whose id is the
// last seq, then "end" once the run is finished and stored. A finished or
// stored run gets "end" at once: the client then fetches the final trace.
func (h *handler) traceEvents(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	after, err := resumePoint(r)
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	tr, live := h.store.Live(id)
	if !live && !h.known(id) {
		if serr := h.store.SaveError(id); serr != nil {
			apiError(w, http.StatusNotFound, fmt.Sprintf("trace %q was not saved: %s", id, traces.UnsavedReason(serr)))
			return
		}
		apiError(w, http.StatusNotFound, fmt.Sprintf("trace %q not found: pick a run from the list", text.Clip(id, 40)))
		return
	}
	s, closeStream, ok := h.openStream(w)
	if !ok {
		return
	}
	defer closeStream()
	if live {
		if !h.follow(r, s, tr, after) {
			return
		}
		h.awaitStored(r, id)
	}
	_ = s.send("end", "", []byte(`{}`))
}

// follow sends tr's events until the run ends; false when the client or
// server went away first.
func (h *handler) follow(r *http.Request, s *sse, tr *core.Tracer, after int64) bool {
	beat := time.NewTicker(h.beat)
	defer beat.Stop()
	for {
		changed := tr.Changed()
		done := tr.Done()
		evs := tr.Since(after)
		for len(evs) > 0 {
			n := min(len(evs), batch)
			b, err := json.Marshal(evs[:n])
			if err != nil {
				return false
			}
			after = evs[n-1].Seq
			if err := s.send("events", strconv.FormatInt(after, 10), b); err != nil {
				return false
			}
			evs = evs[n:]
		}
		if done {
			return true
		}
		for waiting := true; waiting; {
			select {
			case <-r.Context().Done():
				return false
			case <-h.done:
				return false
			case <-changed:
				waiting = false
			case <-beat.C:
				if err := s.comment("ping"); err != nil {
					return false
				}
			}
		}
	}
}

// awaitStored waits (briefly) until the store has the run's final trace,
// so the client's next fetch gets it and not the live rebuild.
func (h *handler) awaitStored(r *http.Request, id string) {
	limit := time.NewTimer(5 * time.Second)
	defer limit.Stop()
	for {
		changed := h.store.Changed()
		if _, live := h.store.Live(id); !live {
			return
		}
		select {
		case <-changed:
		case <-limit.C:
			return
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		}
	}
}

func (h *handler) known(id string) bool {
	for _, s := range h.store.List() {
		if s.ID == id {
			return true
		}
	}
	return false
}

func resumePoint(r *http.Request) (int64, error) {
	v, name := r.Header.Get("Last-Event-ID"), "Last-Event-ID"
	if v == "" {
		v, name = r.URL.Query().Get("after"), "after"
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if errors.Is(err, strconv.ErrRange) && !strings.HasPrefix(v, "-") {
		return 0, fmt.Errorf("%s %q is too large: want the seq of the last event seen (at most %d)", name, text.Clip(v, 40), int64(math.MaxInt64))
	}
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s %q: want the seq of the last event seen (a number >= 0)", name, text.Clip(v, 40))
	}
	return n, nil
}
