package plugins

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/internal/testutil"
	"github.com/ponder-rlm/ponder/sdk"
)

// A plugin's JSON log line cannot pass for another plugin's, or for
// another level or stream: the keys the host sets keep the host's values
// (JSON readers keep the last of two equal keys), and the plugin's own
// fields of those names are kept as field_NAME.
func TestRelayedFieldsCannotForgeHostKeys(t *testing.T) {
	for _, stream := range []string{"", "stdout"} {
		var buf bytes.Buffer
		r := newStderrRelay(zerolog.New(&buf), "evil", nil)
		r.stream = stream
		r.Write([]byte(`{"level":"error","plugin":"calc","stream":"stderr","message":"forged"}` + "\n"))
		r.Write([]byte(`{"level":7,"message":{"x":1},"msg":"odd types"}` + "\n"))
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(lines) != 2 {
			t.Fatalf("stream %q: want 2 entries, got %q", stream, buf.String())
		}
		for _, line := range lines {
			for _, k := range []string{"level", "message", "plugin", "stream"} {
				if n := strings.Count(line, `"`+k+`":`); n > 1 {
					t.Errorf("stream %q: %d %q keys in %s", stream, n, k, line)
				}
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			if m["plugin"] != "evil" {
				t.Errorf("stream %q: entry attributed to %v: %s", stream, m["plugin"], line)
			}
			if stream != "" && m["stream"] != stream {
				t.Errorf("stream %q: entry says stream %v: %s", stream, m["stream"], line)
			}
		}
		var first, second map[string]any
		json.Unmarshal([]byte(lines[0]), &first)
		json.Unmarshal([]byte(lines[1]), &second)
		if first["field_plugin"] != "calc" || first["field_stream"] != "stderr" || first["message"] != "forged" {
			t.Errorf("the plugin's own fields are lost: %s", lines[0])
		}
		if second["message"] != "odd types" || second["field_level"] != float64(7) || second["field_message"] == nil {
			t.Errorf("odd-typed level and message: %s", lines[1])
		}
	}
}

// The limiter lets a burst through, then lines at the rate of each bucket,
// and counts the rest; the count is logged once per interval at most, and
// what is left when it closes.
func TestLogLimiter(t *testing.T) {
	t.Parallel()
	type step struct {
		after time.Duration // since the previous step
		lines int
		bytes int // each
		want  int // allowed
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"burst of lines", []step{{0, 15, 1, 10}, {0, 1, 1, 0}}},
		{"lines refill at the rate", []step{{0, 10, 1, 10}, {time.Second, 10, 1, 5}, {100 * time.Millisecond, 1, 1, 0}, {200 * time.Millisecond, 2, 1, 1}}},
		{"refill stops at the burst", []step{{0, 10, 1, 10}, {time.Hour, 20, 1, 10}}},
		{"burst of bytes", []step{{0, 3, 400, 2}, {time.Second, 3, 400, 1}}},
		{"a line larger than what is left", []step{{0, 1, 900, 1}, {0, 1, 200, 0}, {0, 1, 100, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			l := newLogLimiter(zerolog.New(&buf), "chatty")
			now := time.Unix(1000, 0)
			l.now = func() time.Time { return now }
			l.lineRate, l.lineBurst, l.lines = 5, 10, 10
			l.byteRate, l.byteBurst, l.bytes = 500, 1000, 1000
			l.every = time.Hour // reported by close only
			dropped := 0
			for i, s := range tt.steps {
				now = now.Add(s.after)
				got := 0
				for range s.lines {
					if l.allow(s.bytes) {
						got++
					}
				}
				if got != s.want {
					t.Errorf("step %d: %d of %d lines allowed, want %d", i, got, s.lines, s.want)
				}
				dropped += s.lines - got
			}
			l.close()
			if dropped == 0 {
				if buf.Len() != 0 {
					t.Errorf("a report with nothing dropped: %s", buf.String())
				}
				return
			}
			var m map[string]any
			if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
				t.Fatalf("one report when closed: %v: %s", err, buf.String())
			}
			if m["plugin"] != "chatty" || m["dropped_lines"] != float64(dropped) || !strings.Contains(m["message"].(string), "plugin chatty printed more than 5 lines") {
				t.Errorf("report %s, want %d lines dropped by chatty", buf.String(), dropped)
			}
		})
	}
}

// The report comes from a timer, once per interval however many lines
// are dropped, and again after a later flood.
func TestLogLimiterReportsOncePerInterval(t *testing.T) {
	t.Parallel()
	logs := new(testutil.LockedBuffer)
	l := newLogLimiter(zerolog.New(logs), "chatty")
	l.lineRate, l.lineBurst, l.lines = 1, 1, 1
	l.every = 100 * time.Millisecond
	for range 50 {
		l.allow(1)
	}
	time.Sleep(250 * time.Millisecond)
	if n := strings.Count(logs.String(), "\n"); n != 1 || !strings.Contains(logs.String(), `"dropped_lines":49`) {
		t.Fatalf("after one flood: %d reports: %s", n, logs.String())
	}
	for range 3 {
		l.allow(1)
	}
	l.close()
	if n := strings.Count(logs.String(), "\n"); n != 2 {
		t.Fatalf("after a second flood and close: %d reports: %s", n, logs.String())
	}
}

// A tool plugin that prints 5,000 lines in one call has at most the
// limiter's burst (and what its rate refilled meanwhile) relayed into
// Ponder's log, and one warning that counts the rest: without a limit,
// 100,000 lines of 1 KB put 109 MB there.
func TestPluginLogFloodIsLimited(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	installMode(t, dir, "echo", sdk.KindTool, "tool")
	m, logs := loggedManager(t, Options{Dirs: []string{dir}, HealthInterval: -1})
	const n = 5000
	start := time.Now()
	if res, err := callEcho(t, m, "echo", `{"spam": 5000, "spam_bytes": 100, "text": "done"}`); err != nil || res.Text != "done" {
		t.Fatalf("call: %+v, %v", res, err)
	}
	m.Close() // reports what was dropped
	took := time.Since(start)
	relayed, dropped := 0, 0
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) != nil {
			continue
		}
		msg, _ := e["message"].(string)
		switch {
		case e["plugin"] == "echo" && strings.HasPrefix(msg, "sss"):
			relayed++
		case e["dropped_lines"] != nil:
			dropped += int(e["dropped_lines"].(float64))
			if e["plugin"] != "echo" || e["level"] != "warn" {
				t.Errorf("report: %s", line)
			}
		}
	}
	if most := LogLineBurst + int(took.Seconds()*LogLinesPerSecond) + 1; relayed > most || relayed == 0 {
		t.Errorf("%d of %d lines relayed in %s; want 1 to %d", relayed, n, took, most)
	}
	// What was dropped is said. (Not how much: lines still in the pipe
	// when Close stops the relay are neither relayed nor counted, and how
	// many that is depends on how far the relay lags under load.)
	if dropped == 0 {
		t.Errorf("%d lines relayed and none reported dropped, of %d", relayed, n)
	}
}
