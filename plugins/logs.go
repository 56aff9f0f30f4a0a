package plugins

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/internal/text"
)

// maxLogLine bounds one relayed stderr line; longer lines are cut.
const maxLogLine = 16 << 10

// stderrRelay receives a plugin's stderr (go-plugin writes each line, then
// the newline separately) and logs every line into zerolog with the
// plugin's name. JSON lines (zerolog's or hclog's keys) keep their level,
// message and fields; other lines are logged as text. The relay parses
// lines itself and never panics on what a plugin prints: go-plugin's own
// parser type-asserts fields and would crash the host on
// {"@message": 1}.
type stderrRelay struct {
	log    zerolog.Logger
	plugin string
	// stream is set for a stream other than stderr ("stdout": what a
	// plugin printed after the handshake), which is logged at warn level
	// at least.
	stream string

	mu  sync.Mutex
	buf bytes.Buffer
	// tail holds the last lines relayed (their text), for the error of a
	// plugin that exits before its handshake: its reason is there.
	tail []string
	// A Go panic or fatal error is a first line and a stack, written as
	// many lines as the process dies: they are gathered into one error
	// entry (message: the first line; stack: the rest), logged once no
	// line followed for panicQuiet.
	panicMsg   string
	stack      bytes.Buffer
	panicTimer *time.Timer
}

// Bounds of what a relay keeps: lines of tail, bytes of a panic's stack,
// and how long a stack may pause before it is logged.
const (
	tailLines  = 6
	maxStack   = 64 << 10
	panicQuiet = 200 * time.Millisecond
)

// hostKeys are the keys of a relayed entry the host sets: a plugin's own
// fields of these names are renamed field_NAME.
var hostKeys = []string{"level", "message", "plugin", "stream"}

func newStderrRelay(l zerolog.Logger, name string) *stderrRelay {
	return &stderrRelay{log: l, plugin: name}
}

func (r *stderrRelay) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := maxLogLine - r.buf.Len()
			if room > 0 {
				r.buf.Write(p[:min(len(p), room)])
			}
			break
		}
		room := maxLogLine - r.buf.Len()
		if room > 0 {
			r.buf.Write(p[:min(i, room)])
		}
		r.line(r.buf.Bytes())
		r.buf.Reset()
		p = p[i+1:]
	}
	return n, nil
}

func (r *stderrRelay) line(b []byte) {
	b = bytes.TrimRight(b, " \t\r")
	if r.panicMsg != "" && (len(b) == 0 || b[0] != '{') {
		// More of a panic's stack.
		if r.stack.Len()+len(b) < maxStack {
			r.stack.Write(b)
			r.stack.WriteByte('\n')
		}
		r.panicTimer.Reset(panicQuiet)
		return
	}
	r.flushPanicLocked()
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return
	}
	var m map[string]any
	if b[0] == '{' && json.Unmarshal(b, &m) == nil {
		lvl := zerolog.InfoLevel
		msg := ""
		for _, k := range []string{"level", "@level"} {
			if s, ok := m[k].(string); ok {
				if l, err := zerolog.ParseLevel(strings.ToLower(s)); err == nil && l != zerolog.NoLevel {
					lvl = l
				}
				delete(m, k)
			}
		}
		for _, k := range []string{"message", "@message", "msg"} {
			if s, ok := m[k].(string); ok {
				msg = s
				delete(m, k)
			}
		}
		delete(m, "time")
		delete(m, "@timestamp")
		delete(m, "@module")
		// Keys the host writes itself are the plugin's fields under
		// another name: a second "plugin" key would name another plugin
		// (JSON readers keep the last), a second "level" another level.
		for _, k := range hostKeys {
			if v, ok := m[k]; ok {
				delete(m, k)
				m["field_"+k] = v
			}
		}
		if lvl < zerolog.TraceLevel || lvl > zerolog.PanicLevel {
			lvl = zerolog.InfoLevel
		}
		ev := r.event(lvl)
		if len(m) > 0 {
			ev = ev.Fields(m)
		}
		ev.Msg(msg)
		if e, ok := m["error"].(string); ok && e != "" {
			msg += ": " + e
		}
		r.remember(msg)
		return
	}
	s := string(b)
	r.remember(s)
	if strings.HasPrefix(s, "panic:") || strings.HasPrefix(s, "fatal error:") {
		r.panicMsg = s
		r.panicTimer = time.AfterFunc(panicQuiet, r.flushPanic)
		return
	}
	r.event(zerolog.InfoLevel).Msg(s)
}

// remember keeps s among the last lines.
func (r *stderrRelay) remember(s string) {
	if s == "" {
		return
	}
	if len(r.tail) == tailLines {
		r.tail = append(r.tail[:0], r.tail[1:]...)
	}
	r.tail = append(r.tail, text.Clip(s, 300))
}

// lastWords returns the last lines the plugin wrote, joined, for an error
// that says why it exited.
func (r *stderrRelay) lastWords() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flushPanicLocked()
	return strings.Join(r.tail, " / ")
}

func (r *stderrRelay) flushPanic() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flushPanicLocked()
}

// flushPanicLocked logs a gathered panic as one error entry; r.mu is held.
func (r *stderrRelay) flushPanicLocked() {
	if r.panicMsg == "" {
		return
	}
	r.panicTimer.Stop()
	ev := r.event(zerolog.ErrorLevel)
	if st := strings.TrimSpace(r.stack.String()); st != "" {
		ev = ev.Str("stack", st)
	}
	ev.Msg(r.panicMsg)
	r.panicMsg = ""
	r.stack.Reset()
}

func (r *stderrRelay) event(lvl zerolog.Level) *zerolog.Event {
	if r.stream == "" {
		return r.log.WithLevel(lvl).Str("plugin", r.plugin)
	}
	return r.log.WithLevel(max(lvl, zerolog.WarnLevel)).Str("plugin", r.plugin).Str("stream", r.stream)
}

// hcLogger adapts go-plugin's own log messages (start, exit, connection
// errors) into zerolog with the plugin's name: errors as warnings, the
// rest at debug. GetLevel reports Off so go-plugin leaves the parsing of
// the plugin's stderr to stderrRelay.
type hcLogger struct {
	log    zerolog.Logger
	plugin string
	args   []any
}

var _ hclog.Logger = (*hcLogger)(nil)

func (h *hcLogger) Log(level hclog.Level, msg string, args ...any) {
	lvl := zerolog.DebugLevel
	if level >= hclog.Error {
		lvl = zerolog.WarnLevel
	}
	ev := h.log.WithLevel(lvl).Str("plugin", h.plugin)
	all := append(append([]any(nil), h.args...), args...)
	for i := 0; i+1 < len(all); i += 2 {
		k := fmt.Sprint(all[i])
		if k == "plugin" {
			// go-plugin's "plugin" is the binary's path: keep the
			// name's key unique in the JSON line.
			k = "plugin_path"
		}
		ev = ev.Interface(k, all[i+1])
	}
	ev.Msg(msg)
}
func (h *hcLogger) Trace(msg string, args ...any)  { h.Log(hclog.Trace, msg, args...) }
func (h *hcLogger) Debug(msg string, args ...any)  { h.Log(hclog.Debug, msg, args...) }
func (h *hcLogger) Info(msg string, args ...any)   { h.Log(hclog.Info, msg, args...) }
func (h *hcLogger) Warn(msg string, args ...any)   { h.Log(hclog.Warn, msg, args...) }
func (h *hcLogger) Error(msg string, args ...any)  { h.Log(hclog.Error, msg, args...) }
func (h *hcLogger) IsTrace() bool                  { return false }
func (h *hcLogger) IsDebug() bool                  { return h.log.GetLevel() <= zerolog.DebugLevel }
func (h *hcLogger) IsInfo() bool                   { return true }
func (h *hcLogger) IsWarn() bool                   { return true }
func (h *hcLogger) IsError() bool                  { return true }
func (h *hcLogger) ImpliedArgs() []any             { return h.args }
func (h *hcLogger) Name() string                   { return h.plugin }
func (h *hcLogger) Named(string) hclog.Logger      { return h }
func (h *hcLogger) ResetNamed(string) hclog.Logger { return h }
func (h *hcLogger) SetLevel(hclog.Level)           {}
func (h *hcLogger) GetLevel() hclog.Level          { return hclog.Off }
func (h *hcLogger) With(args ...any) hclog.Logger {
	return &hcLogger{log: h.log, plugin: h.plugin, args: append(append([]any(nil), h.args...), args...)}
}
func (h *hcLogger) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(nil), "", 0)
}
func (h *hcLogger) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return newStderrRelay(h.log, h.plugin)
}
