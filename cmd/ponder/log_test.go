package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/config"
)

// The console log prints upstream text (an LLM endpoint's error, a
// plugin's relayed log line) inert: no escape sequence, control or bidi
// override reaches the terminal, from the message, a field's value or a
// nested value's key. JSON mode keeps the text, escaped by its encoder.
func TestConsoleLogIsInert(t *testing.T) {
	t.Setenv("NO_COLOR", "1") // the writer's own colours are escapes too
	for _, tc := range []struct {
		name   string
		format string
		log    func(l zerolog.Logger)
		want   string
	}{
		{"message", "console", func(l zerolog.Logger) { l.Warn().Msg("llm said " + hostile) },
			"llm said RED\nhiddenevil"},
		{"error field", "console", func(l zerolog.Logger) {
			l.Error().Err(errors.New("status 502: \x1b]8;;http://x\x07link\x1b]8;;\x07\u009b2J")).Msg("call failed")
		}, "error=\"status 502: link\""},
		{"string field", "console", func(l zerolog.Logger) { l.Info().Str("line", "ok\u202eevil\x08\x7f").Msg("plugin") },
			"line=okevil"},
		{"nested value and key", "console", func(l zerolog.Logger) {
			l.Info().Interface("reply", map[string]any{"k\x1b[1m": []any{"v\u009b2J\u2066"}}).Msg("")
		}, `reply={"k":["v"]}`},
		{"plain text unchanged", "console", func(l zerolog.Logger) { l.Info().Str("path", "/tmp/a b").Msg("naïve ünïcode\ttab") },
			"naïve ünïcode\ttab path=\"/tmp/a b\""},
		{"json escapes it itself", "json", func(l zerolog.Logger) { l.Info().Msg("\x1b[2Jx") },
			`"message":"\u001b[2Jx"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			tc.log(newLogger(config.Log{Level: "debug", Format: tc.format}, &b))
			got := b.String()
			if !strings.Contains(got, tc.want) {
				t.Errorf("logged %q, want it to hold %q", got, tc.want)
			}
			if c, ok := terminalControl(got); ok {
				t.Errorf("logged %q, which holds %U", got, c)
			}
		})
	}
}
