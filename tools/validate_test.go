package tools_test

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/tools"
)

// TestValidateArgsMessages pins the exact text a caller reads for each
// kind of mistake: the registry's tools and the MCP server's own tools
// both report through ValidateArgs.
func TestValidateArgsMessages(t *testing.T) {
	t.Parallel()
	schema, err := os.ReadFile("testdata/args.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	sch, err := tools.CompileSchema(schema)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("X", 300)
	tests := []struct {
		name, args string
		want       string // the whole error; "" for valid arguments
	}{
		{"valid", `{"query": "a", "k": 3, "mode": "deep", "budget": {"llm_calls": 1}, "seed": null}`, ""},
		{"missing", `{}`, `argument "query": missing`},
		{"unknown", `{"query": "a", "qeury": "a", "kk": 1}`, `arguments "kk", "qeury": not accepted`},
		{"nested missing and unknown", `{"query": "a", "budget": {"calls": 1}}`,
			`argument "budget.llm_calls": missing; argument "budget.calls": not accepted`},
		{"nested bound", `{"query": "a", "budget": {"llm_calls": -1}}`, `argument "budget.llm_calls": got -1, want at least 1`},
		{"type", `{"query": 5}`, `argument "query": got number, want string`},
		{"integer", `{"query": "a", "k": 1.5}`, `argument "k": got 1.5, want integer`},
		{"bound quoted as written", `{"query": "a", "k": 1e308}`, `argument "k": got 1e308, want at most 1000000`},
		{"long number clipped", `{"query": "a", "k": 1` + strings.Repeat("0", 60) + `}`,
			`argument "k": got 1` + strings.Repeat("0", 39) + `…, want at most 1000000`},
		{"not an object", `[1]`, `arguments: got array, want object`},
		{"not JSON", `{"query": `, `the arguments are not JSON: unexpected EOF`},
		{"maximum written whole", `{"query": "a", "k": 2000000}`, `argument "k": got 2000000, want at most 1000000`},
		{"exclusive minimum", `{"query": "a", "temperature": 0}`, `argument "temperature": got 0, want more than 0`},
		{"exclusive maximum", `{"query": "a", "temperature": 2.5}`, `argument "temperature": got 2.5, want less than 2`},
		{"multiple of", `{"query": "a", "step": 0.7}`, `argument "step": got 0.7, want a multiple of 0.5`},
		{"too short", `{"query": ""}`, `argument "query": got 0 characters, want at least 1`},
		{"too long", `{"query": "abcdef"}`, `argument "query": got 6 characters, want at most 5`},
		{"enum", `{"query": "a", "mode": "fsat"}`, `argument "mode": got "fsat", want one of "fast", "deep"`},
		{"const", `{"query": "a", "version": 2}`, `argument "version": got 2, want 1`},
		{"too few items", `{"query": "a", "tags": []}`, `argument "tags": got 0 items, want at least 1`},
		{"too many items", `{"query": "a", "tags": ["a", "b", "c"]}`, `argument "tags": got 3 items, want at most 2`},
		{"item type", `{"query": "a", "tags": ["a", 2]}`, `argument "tags.1": got number, want string`},
		{"pattern", `{"query": "a", "id": "../x"}`, `argument "id": got "../x", want a string matching ^[a-z]+$`},
		{"long value clipped", `{"query": "a", "id": "` + long + `"}`,
			`argument "id": got "` + long[:199] + `…, want a string matching ^[a-z]+$`},
		// Both branches of the anyOf fail on type; the two are said once each.
		{"any of", `{"query": "a", "seed": "x"}`, `argument "seed": got string, want integer; argument "seed": got string, want null`},
		{"several", `{"k": 0, "mode": 1}`,
			`argument "query": missing; argument "k": got 0, want at least 1; argument "mode": got 1, want one of "fast", "deep"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tools.ValidateArgs(sch, json.RawMessage(tt.args))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("%s: %v", tt.args, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("%s: accepted", tt.args)
			}
			if !errors.Is(err, tools.ErrInvalidArguments) {
				t.Errorf("%v does not wrap ErrInvalidArguments", err)
			}
			if got, want := err.Error(), "invalid arguments: "+tt.want; got != want {
				t.Errorf("%s:\n got %s\nwant %s", tt.args, got, want)
			}
		})
	}
}
