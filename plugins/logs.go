package plugins

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/rs/zerolog"
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
}

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
		if lvl < zerolog.TraceLevel || lvl > zerolog.PanicLevel {
			lvl = zerolog.InfoLevel
		}
		ev := r.event(lvl)
		if len(m) > 0 {
			ev = ev.Fields(m)
		}
		ev.Msg(msg)
		return
	}
	lvl := zerolog.InfoLevel
	s := string(b)
	if strings.HasPrefix(s, "panic:") || strings.HasPrefix(s, "fatal error:") {
		lvl = zerolog.ErrorLevel
	}
	r.event(lvl).Msg(s)
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
