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

// Bounds of what the host relays of one plugin's output (stderr, and
// stdout once it serves), all its processes together, restarts included:
// a token bucket of lines and one of bytes, each with a burst. A plugin
// that prints past them loses lines, and the host logs how many, at most
// once per LogDropReport. A plugin that logs each call (even at debug, when
// Ponder logs debug) stays far below: they bound a plugin stuck in a loop
// that prints, which put 109 MB into Ponder's log in one call, to
// LogBytesPerSecond (about 5 GB a day at worst, with a warning every
// LogDropReport that says which plugin). Lines below Ponder's log level
// are not relayed and not counted.
const (
	LogLinesPerSecond = 100
	LogLineBurst      = 1000
	LogBytesPerSecond = 64 << 10
	LogByteBurst      = 1 << 20
	LogDropReport     = 10 * time.Second
)

// logLimiter meters the lines relayed of one plugin (LogLinesPerSecond,
// LogBytesPerSecond) and reports the lines it dropped, once per
// LogDropReport at most: from a timer set at the first line dropped after
// a report, so that a plugin that falls silent after a flood still has its
// count logged. close reports what is left and stops the timer.
type logLimiter struct {
	log    zerolog.Logger
	plugin string
	now    func() time.Time
	// Rates, bursts and report interval: the constants above; tests set
	// their own.
	lineRate, lineBurst float64
	byteRate, byteBurst float64
	every               time.Duration

	mu           sync.Mutex
	lines, bytes float64 // tokens left
	last         time.Time
	dropped      int64
	droppedBytes int64
	timer        *time.Timer
	closed       bool
}

func newLogLimiter(l zerolog.Logger, plugin string) *logLimiter {
	return &logLimiter{log: l, plugin: plugin, now: time.Now,
		lineRate: LogLinesPerSecond, lineBurst: LogLineBurst, byteRate: LogBytesPerSecond, byteBurst: LogByteBurst,
		every: LogDropReport, lines: LogLineBurst, bytes: LogByteBurst}
}

// allow takes one line of n bytes from the buckets, or counts it dropped.
// A nil limiter allows everything.
func (l *logLimiter) allow(n int) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if !l.last.IsZero() {
		el := now.Sub(l.last).Seconds()
		l.lines = min(l.lineBurst, l.lines+el*l.lineRate)
		l.bytes = min(l.byteBurst, l.bytes+el*l.byteRate)
	}
	l.last = now
	if l.lines >= 1 && l.bytes >= float64(n) {
		l.lines--
		l.bytes -= float64(n)
		return true
	}
	l.dropped++
	l.droppedBytes += int64(n)
	if l.timer == nil && !l.closed {
		l.timer = time.AfterFunc(l.every, l.report)
	}
	return false
}

// report logs the lines dropped since the last report.
func (l *logLimiter) report() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.timer = nil
	l.reportLocked()
}

func (l *logLimiter) reportLocked() {
	if l.dropped == 0 {
		return
	}
	l.log.Warn().Str("plugin", l.plugin).Int64("dropped_lines", l.dropped).Int64("dropped_bytes", l.droppedBytes).
		Msgf("plugin %s printed more than %d lines or %d KiB a second: %d of its log lines were dropped",
			l.plugin, int(l.lineRate), int(l.byteRate)>>10, l.dropped)
	l.dropped, l.droppedBytes = 0, 0
}

// close reports the lines dropped and not yet reported, and stops the
// timer. Lines dropped later are counted and never reported.
func (l *logLimiter) close() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	l.reportLocked()
}

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
	// limit meters the lines relayed (nil: no limit), shared by the
	// relays of all the plugin's processes.
	limit *logLimiter
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

func newStderrRelay(l zerolog.Logger, name string, limit *logLimiter) *stderrRelay {
	return &stderrRelay{log: l, plugin: name, limit: limit}
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
		said := msg
		if e, ok := m["error"].(string); ok && e != "" {
			said += ": " + e
		}
		r.remember(said)
		if !r.admit(lvl, len(b)) {
			return
		}
		ev := r.event(lvl)
		if len(m) > 0 {
			ev = ev.Fields(m)
		}
		ev.Msg(msg)
		return
	}
	s := string(b)
	r.remember(s)
	if strings.HasPrefix(s, "panic:") || strings.HasPrefix(s, "fatal error:") {
		// Metered when it is logged, stack and all (flushPanicLocked).
		r.panicMsg = s
		r.panicTimer = time.AfterFunc(panicQuiet, r.flushPanic)
		return
	}
	if r.admit(zerolog.InfoLevel, len(b)) {
		r.event(zerolog.InfoLevel).Msg(s)
	}
}

// admit says whether a line of n bytes at lvl is to be logged: Ponder
// logs that level, and the plugin's limit allows it. A line Ponder would
// not log anyway costs the plugin nothing.
func (r *stderrRelay) admit(lvl zerolog.Level, n int) bool {
	if r.stream != "" {
		lvl = max(lvl, zerolog.WarnLevel)
	}
	if lvl < r.log.GetLevel() || lvl < zerolog.GlobalLevel() {
		return false
	}
	return r.limit.allow(n)
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
	msg := r.panicMsg
	r.panicMsg = ""
	defer r.stack.Reset()
	if !r.admit(zerolog.ErrorLevel, len(msg)+r.stack.Len()) {
		return
	}
	ev := r.event(zerolog.ErrorLevel)
	if st := strings.TrimSpace(r.stack.String()); st != "" {
		ev = ev.Str("stack", st)
	}
	ev.Msg(msg)
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
	// limit meters its messages too: go-plugin logs the pieces of a
	// stderr line longer than its buffer (64 KiB) at debug itself.
	limit *logLimiter
}

var _ hclog.Logger = (*hcLogger)(nil)

func (h *hcLogger) Log(level hclog.Level, msg string, args ...any) {
	lvl := zerolog.DebugLevel
	if level >= hclog.Error {
		lvl = zerolog.WarnLevel
	}
	if lvl < h.log.GetLevel() || lvl < zerolog.GlobalLevel() {
		return
	}
	msg = text.Clip(msg, maxLogLine)
	if !h.limit.allow(len(msg)) {
		return
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
	return &hcLogger{log: h.log, plugin: h.plugin, args: append(append([]any(nil), h.args...), args...), limit: h.limit}
}
func (h *hcLogger) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(nil), "", 0)
}
func (h *hcLogger) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return newStderrRelay(h.log, h.plugin, h.limit)
}
