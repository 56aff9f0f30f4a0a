package plugins

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// A plugin's JSON log line cannot pass for another plugin's, or for
// another level or stream: the keys the host sets keep the host's values
// (JSON readers keep the last of two equal keys), and the plugin's own
// fields of those names are kept as field_NAME.
func TestRelayedFieldsCannotForgeHostKeys(t *testing.T) {
	for _, stream := range []string{"", "stdout"} {
		var buf bytes.Buffer
		r := newStderrRelay(zerolog.New(&buf), "evil")
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
