package tools_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/tools"
	"github.com/ponder-rlm/ponder/tools/calc"
	"github.com/ponder-rlm/ponder/tools/sandbox"
)

func newSandbox(t *testing.T) *sandbox.Sandbox {
	t.Helper()
	sb, err := sandbox.New(&sandbox.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("sandbox unavailable (run scripts/deps.sh): %v", err)
	}
	t.Cleanup(func() { sb.Close() })
	return sb
}

func TestValidation(t *testing.T) {
	t.Parallel()
	reg := tools.NewRegistry(nil)
	if err := reg.Register(calc.New(nil), nil); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(newSandbox(t).Tool(), nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		tool, args string
		want       string // the error result's whole text
	}{
		{"calc", `{}`, `calc: invalid arguments: argument "expression": missing`},
		{"calc", `{"expression": 42}`, `calc: invalid arguments: argument "expression": got number, want string`},
		{"calc", `{"expression": ""}`, `calc: invalid arguments: argument "expression": got 0 characters, want at least 1`},
		{"calc", `{"expression": "1", "precision": 3}`, `calc: invalid arguments: argument "precision": not accepted`},
		{"calc", `[1]`, `calc: invalid arguments: arguments: got array, want object`},
		{"calc", `{"expression": `, `calc: invalid arguments: the arguments are not JSON: unexpected EOF`},
		{"python", `{"code": "print(1)", "timeout": "soon"}`, `python: invalid arguments: argument "timeout": got string, want number`},
		{"python", `{"code": "print(1)", "timeout": -1}`, `python: invalid arguments: argument "timeout": got -1, want more than 0`},
		{"python", `{"cod": "print(1)"}`, `python: invalid arguments: argument "code": missing; argument "cod": not accepted`},
	}
	for _, tt := range tests {
		res, err := reg.Call(context.Background(), tt.tool, json.RawMessage(tt.args))
		if err != nil {
			t.Fatalf("%s %s: %v", tt.tool, tt.args, err)
		}
		if !res.IsError || res.Text != tt.want {
			t.Errorf("%s %s: got %q (error %v), want the error %q", tt.tool, tt.args, res.Text, res.IsError, tt.want)
		}
	}
	// Valid arguments pass; empty arguments are an empty object.
	res, err := reg.Call(context.Background(), "calc", json.RawMessage(`{"expression":"2^10"}`))
	if err != nil || res.Text != "1024" {
		t.Errorf("calc 2^10: %+v, %v", res, err)
	}
}

func TestRegistry(t *testing.T) {
	t.Parallel()
	reg := tools.NewRegistry(&tools.Options{Timeout: 300 * time.Millisecond, MaxOutput: 100})
	sb := newSandbox(t)
	if err := reg.Register(sb.Tool(), nil); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(calc.New(nil), &tools.ToolOptions{MaxOutput: 10}); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(calc.New(nil), nil); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Errorf("duplicate: %v", err)
	}
	for _, name := range []string{"h.\u202eevil", "a\x1b[2Jb", "bad\xffutf8"} {
		if err := reg.Register(tools.Func{ToolSpec: core.ToolSpec{Name: name}}, nil); err == nil || !strings.Contains(err.Error(), "control or bidi") {
			t.Errorf("name %q: %v", name, err)
		}
	}
	bad := tools.Func{ToolSpec: core.ToolSpec{Name: "bad", Schema: json.RawMessage(`{"type": 7}`)}}
	if err := reg.Register(bad, nil); err == nil {
		t.Error("a schema that does not compile was accepted")
	}
	if got := fmt.Sprint(reg.Names()); got != "[calc python]" {
		t.Errorf("names = %s", got)
	}
	if specs := reg.Specs(); len(specs) != 2 || specs[0].Name != "calc" {
		t.Errorf("specs = %+v", specs)
	}
	if _, err := reg.Call(context.Background(), "nope", nil); !errors.Is(err, tools.ErrUnknownTool) || !strings.Contains(err.Error(), "known: calc, python") {
		t.Errorf("unknown tool: %v", err)
	}

	// The registry's timeout stops a tool that runs longer.
	start := time.Now()
	res, err := reg.Call(context.Background(), "python", json.RawMessage(`{"code":"import time; time.sleep(30)"}`))
	if err != nil || !res.IsError || !strings.Contains(res.Text, "timed out after 300ms") {
		t.Errorf("timeout: %+v, %v", res, err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("the timeout took %s", el)
	}
	// Output is capped per tool.
	res, err = reg.Call(context.Background(), "calc", json.RawMessage(`{"expression":"2^200"}`))
	if err != nil || !strings.HasPrefix(res.Text, "1606938044\n[output truncated: 51 more bytes]") {
		t.Errorf("cap: %q, %v", res.Text, err)
	}
	res, err = reg.Call(context.Background(), "python", json.RawMessage(`{"code":"print('é' * 200)"}`))
	if err != nil || !strings.Contains(res.Text, "[output truncated") || strings.ContainsRune(res.Text, '\uFFFD') {
		t.Errorf("cap on a rune boundary: %q, %v", res.Text, err)
	}
	// A cancelled context is an error, not a result.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := reg.Call(ctx, "calc", json.RawMessage(`{"expression":"1"}`)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if err := reg.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

func TestCapText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 0, "hello"},
		{"hello world", 5, "hello\n[output truncated: 6 more bytes]"},
		{"ééé", 3, "é\n[output truncated: 4 more bytes]"},
	}
	for _, tt := range tests {
		if got := tools.CapText(tt.in, tt.max); got != tt.want {
			t.Errorf("CapText(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

func ExampleRegistry() {
	reg := tools.NewRegistry(nil)
	if err := reg.Register(calc.New(nil), nil); err != nil {
		panic(err)
	}
	res, err := reg.Call(context.Background(), "calc", json.RawMessage(`{"expression":"2^100"}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Text)
	res, _ = reg.Call(context.Background(), "calc", json.RawMessage(`{"expr":"2^100"}`))
	fmt.Println(res.Text)
	// Output:
	// 1267650600228229401496703205376
	// calc: invalid arguments: argument "expression": missing; argument "expr": not accepted
}
