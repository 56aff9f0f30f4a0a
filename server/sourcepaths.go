package server

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"encoding/json"
	"maps"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/retrieval"
)

// A grounded search records the chunks it retrieved under the absolute
// paths they are stored under (node meta "retrieved" and "sources", the
// passages in prompts and retrieval nodes, the retrieve tool's results),
// and the model quotes them back in its steps. A client that is not on
// the server's machine (localClient) is shown each source by its public
// name instead (retrieval.PublicSource, as search_documents shows it): a
// path tells how the server's disk is laid out (user names, mount points).
// What is stored keeps the paths, for the operator and `ponder trace get`;
// a sourceMask rewrites what is sent, at the edge.

// sourceMask replaces the absolute source paths a trace holds with their
// public names. It learns the paths from what it is shown (add*): chunk
// records give a path and its name; a path seen only in a passage's
// citation line ("[1] /srv/docs/guide.md — Guide", the retrieve tool's
// results) gets the name its folder's recorded chunks imply, else its
// file name, as PublicSource names a chunk stored without one. Text the
// model wrote is rewritten only where it quotes a path learnt so.
type sourceMask struct {
	names map[string]string // absolute source -> public name, from chunk records
	cited map[string]bool   // absolute sources seen in citation lines

	dirty     bool
	text, enc *strings.Replacer // nil: nothing to replace
}

func newSourceMask() *sourceMask {
	return &sourceMask{names: map[string]string{}, cited: map[string]bool{}}
}

// citationLine finds the source of a passage as core.FormatPassages lays
// it out: "[n] " then the source, up to the title (" — "), the page, or
// the end of the line.
var citationLine = regexp.MustCompile(`(?m)^\[\d+\] (/.+?)(?: — | \(page [^)\n]*\)|$)`)

// addText learns the sources cited in s.
func (m *sourceMask) addText(s string) {
	if !strings.Contains(s, "] /") {
		return // the cheap test first: most text cites nothing
	}
	for _, sub := range citationLine.FindAllStringSubmatch(s, -1) {
		if p := strings.TrimSpace(sub[1]); filepath.IsAbs(p) && !m.cited[p] {
			m.cited[p] = true
			m.dirty = true
		}
	}
}

// add learns from a value as node meta and event data hold it (in memory
// or read back from JSON): maps with an absolute "source" are chunk
// records (core's chunkMeta), their name under retrieval.MetaName.
func (m *sourceMask) add(v any) {
	switch v := v.(type) {
	case string:
		m.addText(v)
	case []string:
		for _, s := range v {
			m.addText(s)
		}
	case []any:
		for _, x := range v {
			m.add(x)
		}
	case []map[string]any:
		for _, x := range v {
			m.add(x)
		}
	case map[string]any:
		if src, ok := v["source"].(string); ok && filepath.IsAbs(src) {
			name, _ := v[retrieval.MetaName].(string)
			if name == "" {
				name = retrieval.PublicSource(core.Chunk{Source: src})
			}
			if m.names[src] != name {
				m.names[src] = name
				m.dirty = true
			}
		}
		for _, x := range v {
			m.add(x)
		}
	case []core.Message:
		for _, msg := range v {
			m.addText(msg.Content)
		}
	case []core.Chunk:
		for _, c := range v {
			if filepath.IsAbs(c.Source) && m.names[c.Source] != retrieval.PublicSource(c) {
				m.names[c.Source] = retrieval.PublicSource(c)
				m.dirty = true
			}
		}
	}
}

func (m *sourceMask) addNode(n *core.Node) {
	if n == nil {
		return
	}
	m.addText(n.Content)
	m.add(n.Meta)
	m.addStructure(n.Sub)
}

func (m *sourceMask) addStructure(st *core.Structure) {
	if st == nil {
		return
	}
	for _, n := range st.Nodes() {
		m.addNode(&n)
	}
}

func (m *sourceMask) addEvent(e core.Event) {
	m.addNode(e.Node)
	if d, ok := e.Data.(map[string]any); ok {
		m.add(d) // a tool call's result, a retrieval's records
		return
	}
	// Typed data (an llm_call's): only its prompts and responses are text.
	m.add(e.Get("messages"))
	m.add(e.Get("responses"))
}

// addTrace learns from a whole trace.
func (m *sourceMask) addTrace(t *core.Trace) {
	if t == nil {
		return
	}
	m.addText(t.Problem)
	m.addStructure(t.Structure)
	for _, e := range t.Events {
		m.addEvent(e)
	}
}

// addJSON learns from a JSON document (a stored trace, a batch of
// events). Documents that cannot hold an absolute source (no chunk record,
// no citation line) are not decoded: a trace is up to tens of megabytes.
func (m *sourceMask) addJSON(b []byte) {
	if !bytes.Contains(b, []byte(`"source":"/`)) && !bytes.Contains(b, []byte(`] /`)) {
		return
	}
	var v any
	if json.Unmarshal(b, &v) == nil {
		m.add(v)
	}
}

// publicName is the name shown for an absolute source.
func (m *sourceMask) publicName(p string) string {
	if n, ok := m.names[p]; ok {
		return n
	}
	// A source under a folder whose recorded chunks are named relative to
	// it (/srv/docs/handbook/a.md named handbook/a.md) is named the same
	// way: the retrieve tool's results carry no names.
	best := ""
	for src, name := range m.names {
		dir, ok := strings.CutSuffix(src, name)
		if ok && len(dir) > 1 && strings.HasSuffix(dir, "/") && strings.HasPrefix(p, dir) && len(dir) > len(best) {
			best = dir
		}
	}
	if best != "" {
		return p[len(best):]
	}
	return filepath.Base(p)
}

func (m *sourceMask) build() {
	if !m.dirty {
		return
	}
	m.dirty = false
	all := map[string]string{}
	for p := range m.cited {
		all[p] = m.publicName(p)
	}
	maps.Copy(all, m.names)
	// Longest first: of two paths one of which begins the other, the
	// longer is replaced where it stands.
	paths := slices.SortedFunc(maps.Keys(all), func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	var text, enc []string
	for _, p := range paths {
		if p == all[p] {
			continue
		}
		text = append(text, p, all[p])
		// As encoding/json writes a string, HTML-escaped (the trace
		// store's) or not.
		for _, html := range []bool{true, false} {
			enc = append(enc, jsonInner(p, html), jsonInner(all[p], html))
		}
	}
	m.text, m.enc = nil, nil
	if len(text) > 0 {
		m.text, m.enc = strings.NewReplacer(text...), strings.NewReplacer(enc...)
	}
}

// jsonInner is s as a JSON string, without its quotes.
func jsonInner(s string, html bool) string {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(html)
	_ = e.Encode(s)
	return strings.TrimSuffix(strings.TrimSpace(b.String()), `"`)[1:]
}

// Text returns s with the sources learnt replaced by their names, and the
// document store's errors as a remote client reads them (storefaults.go).
// A nil mask (a local client's) replaces nothing.
func (m *sourceMask) Text(s string) string {
	if m == nil {
		return s
	}
	s = publicStoreFaults(s, false)
	m.build()
	if m.text == nil {
		return s
	}
	return m.text.Replace(s)
}

// JSON returns the JSON document b with the sources learnt replaced by
// their names in its strings, and the document store's errors as Text
// does.
func (m *sourceMask) JSON(b []byte) []byte {
	if m == nil {
		return b
	}
	if bytes.Contains(b, []byte("document store is ")) {
		b = []byte(publicStoreFaults(string(b), true))
	}
	m.build()
	if m.enc == nil {
		return b
	}
	return []byte(m.enc.Replace(string(b)))
}

// structured returns v, a tool's structured content, as JSON with the
// sources learnt replaced (v itself for a nil mask).
func (m *sourceMask) structured(v any) any {
	if m == nil {
		return v
	}
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	return json.RawMessage(m.JSON(b))
}

// traceMask is the mask of t for a client not on the server's machine,
// nil for one that is (it is shown the paths, to open the files).
func traceMask(local bool, t *core.Trace) *sourceMask {
	if local {
		return nil
	}
	m := newSourceMask()
	m.addTrace(t)
	return m
}

// loopbackBound reports whether the server listens on loopback only, so
// that its HTTP clients are on its machine (localClient, for requests
// that are not MCP's).
func (s *Server) loopbackBound() bool { return config.IsLoopback(hostOf(s.cfg.Addr)) }

// maskUI has the web viewer show a remote client the sources of a trace
// (GET /ui/api/runs/ID) and of a live run's events (/ui/api/runs/ID/events)
// by their names. A server bound to loopback serves ui as it is.
func (s *Server) maskUI(ui http.Handler) http.Handler {
	if s.loopbackBound() {
		return ui
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, "/ui/api/runs/")
		id, events := strings.CutSuffix(rest, "/events")
		if !ok || rest == "events" || id == "" || strings.Contains(id, "/") || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			ui.ServeHTTP(w, r) // the page, the runs list, errors
			return
		}
		mask := newSourceMask()
		if events {
			// A browser resuming after the events that recorded the
			// chunks still gets their names: learnt from the run so far.
			if s.opts.Traces != nil {
				if _, live := s.opts.Traces.Live(id); live {
					if t, err := s.opts.Traces.Get(id); err == nil {
						mask.addTrace(t)
					}
				}
			}
			ui.ServeHTTP(&maskedEvents{ResponseWriter: w, mask: mask}, r)
			return
		}
		// The trace, held whole (not compressed), learnt from and rewritten.
		r2 := r.Clone(r.Context())
		r2.Method = http.MethodGet
		r2.Header.Del("Accept-Encoding")
		held := &heldResponse{header: http.Header{}}
		ui.ServeHTTP(held, r2)
		held.WriteHeader(http.StatusOK)
		body := held.body.Bytes()
		if held.status == http.StatusOK {
			mask.addJSON(body)
			body = mask.JSON(body)
		}
		maps.Copy(w.Header(), held.header)
		w.Header().Del("Content-Length")
		writeGzipped(w, r, held.status, body)
	})
}

// writeGzipped writes body with status, compressed for a client that
// accepts it when it is large (as the viewer sends traces).
func writeGzipped(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	if len(body) < 16<<10 || !acceptsGzip(r) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			_, _ = w.Write(body)
		}
		return
	}
	w.Header().Set("Content-Encoding", "gzip")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	_, _ = zw.Write(body)
	_ = zw.Close()
}

func acceptsGzip(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.TrimSpace(q) != "q=0" {
			return true
		}
	}
	return false
}

// maskedEvents rewrites a server-sent event stream event by event, the
// mask learning from each before it is rewritten. A response that is not
// an event stream (an error) passes as it is.
type maskedEvents struct {
	http.ResponseWriter
	mask    *sourceMask
	decided bool
	stream  bool
	buf     []byte // the part of an event written so far
}

func (w *maskedEvents) WriteHeader(status int) {
	if !w.decided {
		w.decided = true
		w.stream = strings.HasPrefix(w.Header().Get("Content-Type"), "text/event-stream")
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *maskedEvents) Write(p []byte) (int, error) {
	if !w.decided {
		w.WriteHeader(http.StatusOK)
	}
	if !w.stream {
		return w.ResponseWriter.Write(p)
	}
	w.buf = append(w.buf, p...)
	for {
		i := bytes.Index(w.buf, []byte("\n\n"))
		if i < 0 {
			return len(p), nil
		}
		ev := w.buf[:i+2]
		w.mask.addJSON(ev)
		if _, err := w.ResponseWriter.Write(w.mask.JSON(ev)); err != nil {
			return 0, err
		}
		w.buf = w.buf[i+2:]
	}
}

func (w *maskedEvents) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *maskedEvents) Unwrap() http.ResponseWriter { return w.ResponseWriter }
