package server

import (
	"strings"
	"testing"
)

// list_strategies' text says what each parameter defaults to, an empty
// string as "" (it read "default ," before).
func TestListStrategiesTextShowsEmptyDefaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	r := result(t, e.rpc(t).call("list_strategies", map[string]any{}, nil))
	text := toolText(r)
	if r["isError"] == true || !strings.Contains(text, `- step_strategy (string, default ""`) || strings.Contains(text, "default ,") ||
		strings.Contains(text, "default )") {
		t.Fatalf("list_strategies:\n%s", text)
	}
}
