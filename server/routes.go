package server

import (
	"context"
	"encoding/json"
	"log"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// routes builds the one handler every listener serves.
func (s *Server) routes(hosts *hostPolicy) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/mcp", s.mcpHandler())
	mux.HandleFunc("/v1/chat/completions", s.handleChat)
	mux.HandleFunc("GET /v1/models", s.handleModels)
	mux.HandleFunc("GET /v1/models/{id...}", s.handleModel)
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeOpenAIError(w, http.StatusNotFound, "not_found",
			"no such endpoint "+r.Method+" "+r.URL.Path+": Ponder serves POST /v1/chat/completions and GET /v1/models")
	})
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{ErrorLog: stdLogFor(s.log)}))
	// The web trace viewer (server/ui) mounts here.
	ui := s.opts.UI
	if ui == nil {
		ui = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			deny(w, r, http.StatusNotFound, "not_found", "the trace viewer is not available in this build")
		})
	}
	mux.Handle("/ui/", s.maskUI(ui))
	mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" && r.Method == http.MethodGet {
			http.Redirect(w, r, "/ui/", http.StatusFound)
			return
		}
		deny(w, r, http.StatusNotFound, "not_found", "no such endpoint: "+r.URL.Path+" (Ponder serves /mcp, /v1/chat/completions, /v1/models, /healthz, /metrics and /ui/)")
	})
	return s.observe(s.guard(hosts, mux))
}

func routeOf(path string) string {
	switch {
	case path == "/mcp":
		return "/mcp"
	case path == "/v1/chat/completions", path == "/healthz", path == "/metrics":
		return path
	case strings.HasPrefix(path, "/v1/models"):
		return "/v1/models"
	case strings.HasPrefix(path, "/ui"):
		return "/ui"
	}
	return "other"
}

// observe counts requests and logs them at debug level: method, route,
// status and time, never bodies, queries or headers.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := routeOf(r.URL.Path)
		d := time.Since(start)
		s.metrics.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
		s.metrics.reqSeconds.WithLabelValues(route).Observe(d.Seconds())
		s.log.Debug().Str("method", r.Method).Str("path", r.URL.Path).Int("status", sw.code).
			Float64("ms", float64(d.Microseconds())/1000).Str("client", clientAddr(r)).Msg("http")
	})
}

type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	s.runMu.Lock()
	active := s.runN
	s.runMu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"status":         "ok",
		"version":        s.opts.Version,
		"llm_configured": s.engine.HasPolicy(),
		"active_solves":  active,
		"sessions":       s.sess.Len(),
		"mcp_sessions":   s.mcpSess.Len(),
	})
}

// stdLogFor adapts zerolog to the standard library's logger (http.Server,
// mcp-go's stdio server), at debug level: these are connection noise.
func stdLogFor(l zerolog.Logger) *log.Logger {
	return log.New(zerologWriter{l}, "", 0)
}

type zerologWriter struct{ l zerolog.Logger }

func (z zerologWriter) Write(p []byte) (int, error) {
	z.l.Debug().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

// slogFor adapts zerolog to slog (mcp-go's HTTP transport): its errors are
// kept at warn, the rest at debug.
func slogFor(l zerolog.Logger) *slog.Logger {
	return slog.New(slogHandler{l: l})
}

type slogHandler struct {
	l     zerolog.Logger
	attrs []slog.Attr
}

func (h slogHandler) Enabled(_ context.Context, lvl slog.Level) bool {
	if lvl >= slog.LevelError {
		return h.l.GetLevel() <= zerolog.WarnLevel
	}
	return h.l.GetLevel() <= zerolog.DebugLevel
}

func (h slogHandler) Handle(_ context.Context, r slog.Record) error {
	ev := h.l.Debug()
	if r.Level >= slog.LevelError {
		ev = h.l.Warn()
	}
	for _, a := range h.attrs {
		ev = ev.Str(a.Key, a.Value.String())
	}
	r.Attrs(func(a slog.Attr) bool {
		ev = ev.Str(a.Key, a.Value.String())
		return true
	})
	ev.Str("component", "mcp-go").Msg(r.Message)
	return nil
}

func (h slogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return slogHandler{l: h.l, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h slogHandler) WithGroup(string) slog.Handler { return h }
