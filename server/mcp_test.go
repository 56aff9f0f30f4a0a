package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/llm/sim"
)

const gsm8kProblem = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?"

func compileSchema(t *testing.T, name string, raw any) *jsonschema.Schema {
	t.Helper()
	b, _ := json.Marshal(raw)
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(name, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(name)
	if err != nil {
		t.Fatalf("schema %s does not compile: %v", name, err)
	}
	return s
}

func TestToolsListSchemasAndAnnotations(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.rpc(t)
	msgs, _ := c.post(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
	tools := result(t, msgs)["tools"].([]any)
	type hints struct{ ReadOnly, Destructive, Idempotent, OpenWorld bool }
	want := map[string]hints{
		"solve":            {false, false, false, true},
		"list_strategies":  {true, false, true, false},
		"search_documents": {true, false, true, false},
		"ingest_documents": {false, true, true, false},
		"get_trace":        {true, false, true, false},
		"clear_session":    {false, true, true, false},
	}
	got := map[string]hints{}
	for _, raw := range tools {
		tool := raw.(map[string]any)
		name := tool["name"].(string)
		if d, _ := tool["description"].(string); len(d) < 40 {
			t.Errorf("%s: description too short for a model to use: %q", name, d)
		}
		in := tool["inputSchema"].(map[string]any)
		if in["$schema"] != schemaDialect || in["additionalProperties"] != false || in["type"] != "object" {
			t.Errorf("%s: input schema lost $schema/additionalProperties/type: %v", name, in)
		}
		compileSchema(t, name+"-in", in)
		out, ok := tool["outputSchema"].(map[string]any)
		if !ok {
			t.Errorf("%s: no output schema", name)
		} else {
			compileSchema(t, name+"-out", out)
		}
		a := tool["annotations"].(map[string]any)
		got[name] = hints{a["readOnlyHint"] == true, a["destructiveHint"] == true, a["idempotentHint"] == true, a["openWorldHint"] == true}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	// solve's schema keeps $defs (JSON Schema 2020-12, SEP-1613).
	for _, raw := range tools {
		tool := raw.(map[string]any)
		if tool["name"] == "solve" {
			defs, _ := tool["inputSchema"].(map[string]any)["$defs"].(map[string]any)
			if defs["budget"] == nil {
				t.Errorf("solve schema lost $defs.budget: %v", tool["inputSchema"])
			}
		}
	}
}

func TestSolveStreamsProgressBeforeResult(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sim: sim.Options{Seed: 3}})
	c := e.rpc(t)
	var outSchema map[string]any
	_ = json.Unmarshal(solveOutputSchema(), &outSchema)
	schema := compileSchema(t, "solve-out", outSchema)
	for i := 0; i < 5; i++ { // the ordering must hold every time
		msgs := c.call("solve", map[string]any{"problem": gsm8kProblem, "strategy": "self-consistency",
			"params": map[string]any{"k": 6}, "budget": map[string]any{"llm_calls": 10}}, map[string]any{"progressToken": "tok-1"})
		if len(msgs) < 2 {
			t.Fatalf("want progress notifications then the result, got %v", msgs)
		}
		var last float64 = -1
		for _, m := range msgs[:len(msgs)-1] {
			if m["method"] != "notifications/progress" {
				t.Fatalf("unexpected message before the result: %v", m)
			}
			p := m["params"].(map[string]any)
			if p["progressToken"] != "tok-1" {
				t.Fatalf("wrong token: %v", p)
			}
			v := p["progress"].(float64)
			if v <= last {
				t.Fatalf("progress must increase: %v after %v", v, last)
			}
			last = v
			if !regexp.MustCompile(`\b\d+ nodes?\b`).MatchString(p["message"].(string)) {
				t.Errorf("progress message lacks nodes: %v", p["message"])
			}
		}
		final := msgs[len(msgs)-2]["params"].(map[string]any)
		if final["progress"] != final["total"] || final["total"] != float64(10) {
			t.Fatalf("last progress should report the search complete (10 of 10): %v", final)
		}
		r := result(t, msgs)
		if r["isError"] == true {
			t.Fatalf("solve failed: %s", toolText(r))
		}
		sc := r["structuredContent"]
		if err := schema.Validate(jsonRoundTrip(sc)); err != nil {
			t.Fatalf("structuredContent does not match the output schema: %v", err)
		}
		st := sc.(map[string]any)
		if st["stopped_reason"] != "done" || st["trace_id"] == "" || st["policy"] != "endpoint" {
			t.Fatalf("bad result: %v", st)
		}
		if u := st["usage"].(map[string]any); u["llm_calls"] != float64(6) {
			t.Fatalf("self-consistency k=6 should use 6 calls, used %v", u["llm_calls"])
		}
		if !strings.Contains(toolText(r), "Answer: ") {
			t.Fatalf("text result lacks the answer: %q", toolText(r))
		}
	}
}

func jsonRoundTrip(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func TestBadInputKeepsServing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.rpc(t)
	toolErr := func(args any, want string) func(t *testing.T) {
		return func(t *testing.T) {
			r := result(t, c.call("solve", args, nil))
			if r["isError"] != true || !strings.Contains(toolText(r), want) {
				t.Fatalf("want a tool error containing %q, got %v", want, r)
			}
		}
	}
	t.Run("problem of wrong type", toolErr(map[string]any{"problem": 5}, "problem"))
	t.Run("unknown argument", toolErr(map[string]any{"problem": "x", "strategi": "cot"}, "strategi"))
	t.Run("unknown strategy", toolErr(map[string]any{"problem": "2+2?", "strategy": "nope"}, "strategy"))
	t.Run("unknown parameter", toolErr(map[string]any{"problem": "2+2?", "strategy": "self-consistency", "params": map[string]any{"kk": 3}}, `unknown parameter "kk"`))
	t.Run("parameter out of range", toolErr(map[string]any{"problem": "2+2?", "strategy": "self-consistency", "params": map[string]any{"k": -3}}, "k"))
	t.Run("budget of wrong type", toolErr(map[string]any{"problem": "2+2?", "budget": map[string]any{"llm_calls": "many"}}, "llm_calls"))
	t.Run("empty problem", toolErr(map[string]any{"problem": "   "}, "empty"))
	t.Run("unknown tool", func(t *testing.T) {
		msgs := c.call("no_such_tool", map[string]any{}, nil)
		errObj, _ := msgs[len(msgs)-1]["error"].(map[string]any)
		if errObj == nil || errObj["code"] != float64(-32602) {
			t.Fatalf("want -32602, got %v", msgs)
		}
	})
	t.Run("unknown method", func(t *testing.T) {
		msgs, _ := c.post(map[string]any{"jsonrpc": "2.0", "id": 7, "method": "no/such"})
		errObj, _ := msgs[0]["error"].(map[string]any)
		if errObj == nil || errObj["code"] != float64(-32601) {
			t.Fatalf("want -32601, got %v", msgs)
		}
	})
	t.Run("malformed JSON", func(t *testing.T) {
		msgs, resp := c.postRaw([]byte(`{"jsonrpc":"2.0","id":1,"method":`))
		errObj, _ := msgs[0]["error"].(map[string]any)
		if resp.StatusCode != http.StatusBadRequest || errObj == nil || errObj["code"] != float64(-32700) {
			t.Fatalf("want 400 with -32700, got %d %v", resp.StatusCode, msgs)
		}
	})
	t.Run("20 MB body", func(t *testing.T) {
		big := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"solve","arguments":{"problem":"` + strings.Repeat("a", 20<<20) + `"}}}`
		msgs, resp := c.postRaw([]byte(big))
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(mustJSONString(msgs), "max_body_bytes") {
			t.Fatalf("want 413 naming max_body_bytes, got %d %v", resp.StatusCode, msgs)
		}
	})
	// Still answering.
	msgs, _ := c.post(map[string]any{"jsonrpc": "2.0", "id": 9, "method": "ping"})
	if _, ok := msgs[0]["result"]; !ok {
		t.Fatalf("ping after bad input: %v", msgs)
	}
}

// Arguments that break a tool's schema get a message naming the argument
// and what it must be, in words: mcp-go's validator printed Go structs
// ("/budget/llm_calls: &{Got:-1/1 Want:1/1}", "<root>: &{Missing:[problem]}").
// The text is tools.ValidateArgs's, the same a tool called during a
// search gives; it is checked whole, as the model reads it.
func TestSchemaErrorsSayWhatToChange(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.rpc(t)
	for _, tc := range []struct {
		tool string
		args any
		want string
	}{
		{"solve", map[string]any{}, `solve: invalid arguments: argument "problem": missing`},
		{"solve", map[string]any{"problem": 5}, `solve: invalid arguments: argument "problem": got number, want string`},
		{"solve", map[string]any{"problem": "x", "strategi": "cot"}, `solve: invalid arguments: argument "strategi": not accepted`},
		{"solve", map[string]any{"problem": "x", "budget": map[string]any{"llm_calls": -1}}, `solve: invalid arguments: argument "budget.llm_calls": got -1, want at least 1`},
		{"solve", map[string]any{"problem": "x", "budget": map[string]any{"timeout_seconds": 100000}}, `solve: invalid arguments: argument "budget.timeout_seconds": got 100000, want at most 86400`},
		{"solve", map[string]any{"problem": "x", "pack": "zzz", "seed": 1.5}, `solve: invalid arguments: argument "pack": got "zzz", want one of "auto", "game24", "generic", "gsm8k", "math"; argument "seed": got 1.5, want integer`},
		// Numbers are quoted as written, short: 1e308 was a 309-digit
		// integer, and a seed of 1.5 was "got number"; one too large for
		// its Go integer reads as the schema's bounds do.
		{"solve", map[string]any{"problem": "x", "budget": json.RawMessage(`{"timeout_seconds": 1e308}`)}, `solve: invalid arguments: argument "budget.timeout_seconds": got 1e308, want at most 86400`},
		{"solve", map[string]any{"problem": "x", "seed": json.RawMessage(`1e30`)}, `solve: invalid arguments: argument "seed": got 1e30, want at most 9223372036854775807`},
		{"solve", map[string]any{"problem": "x", "seed": json.RawMessage(`-1E30`)}, `solve: invalid arguments: argument "seed": got -1E30, want at least -9223372036854775808`},
		{"solve", map[string]any{"problem": "x", "budget": json.RawMessage(`{"tokens": 100000000000000000000}`)}, `solve: invalid arguments: argument "budget.tokens": got 100000000000000000000, want at most 9223372036854775807`},
		{"solve", map[string]any{"problem": "x", "session": "../x"}, `solve: invalid arguments: argument "session": got "../x", want a string matching ^[A-Za-z0-9._:-]{1,128}$`},
		{"get_trace", map[string]any{"trace_id": "../../etc/passwd"}, `get_trace: invalid arguments: argument "trace_id": got "../../etc/passwd", want a string matching ^[0-9a-f]{16}$`},
	} {
		r := result(t, c.call(tc.tool, tc.args, nil))
		if text := toolText(r); r["isError"] != true || text != tc.want {
			t.Errorf("%s %v: got %q (isError %v), want the tool error %q", tc.tool, tc.args, text, r["isError"], tc.want)
		}
	}
}

// streamCall posts a tools/call and delivers the answer's messages as they
// arrive; the channel closes when the response ends.
func (c *rpc) streamCall(ctx context.Context, id int, name string, args any, token string) <-chan map[string]any {
	c.t.Helper()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": "tools/call",
		"params": map[string]any{"name": name, "arguments": args, "_meta": map[string]any{"progressToken": token}}})
	req := c.request(body).WithContext(ctx)
	out := make(chan map[string]any, 64)
	go func() {
		defer close(out)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var m map[string]any
				if json.Unmarshal([]byte(d), &m) == nil {
					out <- m
				}
			} else if strings.HasPrefix(sc.Text(), "{") {
				var m map[string]any
				if json.Unmarshal(sc.Bytes(), &m) == nil {
					out <- m
				}
			}
		}
	}()
	return out
}

// slowSolve is a search that takes seconds against a simulator with
// latency: 40 sequential samples.
var slowSolve = map[string]any{"problem": gsm8kProblem, "strategy": "self-consistency",
	"params": map[string]any{"k": 40}, "budget": map[string]any{"llm_calls": 40}}

func latestTrace(t *testing.T, e *env) (string, core.StopReason, int64) {
	t.Helper()
	l := e.traces.List()
	if len(l) == 0 {
		return "", "", 0
	}
	tr, err := e.traces.Get(l[0].ID)
	if err != nil {
		return l[0].ID, l[0].Status, 0
	}
	return tr.ID, tr.Status, tr.Usage.LLMCalls
}

func TestCancelledNotificationStopsSearchAndSendsNoResponse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sim: sim.Options{Latency: 100 * time.Millisecond}, cfg: func(c *config.Server) {}})
	c := e.rpc(t)
	msgs := c.streamCall(ctxTimeout(t, 30*time.Second), 4242, "solve", slowSolve, "slow")
	first, ok := <-msgs
	if !ok || first["method"] != "notifications/progress" {
		t.Fatalf("want a progress notification first, got %v", first)
	}
	start := time.Now()
	c.post(map[string]any{"jsonrpc": "2.0", "method": "notifications/cancelled",
		"params": map[string]any{"requestId": 4242, "reason": "user pressed stop"}})
	for m := range msgs {
		if m["id"] != nil {
			t.Fatalf("a cancelled request got a response: %v", m)
		}
	}
	waitFor(t, 5*time.Second, "the trace to end", func() bool {
		_, st, _ := latestTrace(t, e)
		return st == core.StopCancelled
	})
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancellation took %s", d)
	}
	_, _, calls := latestTrace(t, e)
	if calls >= 40 {
		t.Errorf("the search went on after cancellation: %d calls", calls)
	}
	// The session still works.
	r := result(t, c.call("list_strategies", map[string]any{}, nil))
	if r["isError"] == true {
		t.Fatal(toolText(r))
	}
}

// A solve the client cancelled adds no turn to its session: the client
// never got that answer, and the next follow-up was posed with it.
func TestCancelledSolveLeavesItsSessionAlone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sim: sim.Options{Latency: 100 * time.Millisecond}})
	c := e.rpc(t)
	args := map[string]any{"session": "c1"}
	for k, v := range slowSolve {
		args[k] = v
	}
	msgs := c.streamCall(ctxTimeout(t, 30*time.Second), 4343, "solve", args, "slow")
	if m := <-msgs; m["method"] != "notifications/progress" {
		t.Fatalf("want progress first, got %v", m)
	}
	c.post(map[string]any{"jsonrpc": "2.0", "method": "notifications/cancelled", "params": map[string]any{"requestId": 4343}})
	for range msgs {
	}
	waitFor(t, 5*time.Second, "the search to be cancelled", func() bool {
		e.srv.runMu.Lock()
		defer e.srv.runMu.Unlock()
		_, st, _ := latestTrace(t, e)
		return st == core.StopCancelled && e.srv.runN == 0
	})
	if info, ok := e.srv.sess.Get("c1"); ok {
		t.Fatalf("the cancelled solve's answer entered the session: %+v", info.Turns)
	}
}

func TestClientDisconnectCancelsSearch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sim: sim.Options{Latency: 100 * time.Millisecond}})
	c := e.rpc(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs := c.streamCall(ctx, 77, "solve", slowSolve, "gone")
	if m := <-msgs; m["method"] != "notifications/progress" {
		t.Fatalf("want progress first, got %v", m)
	}
	cancel() // the client goes away mid-solve
	for range msgs {
	}
	waitFor(t, 5*time.Second, "the search to be cancelled", func() bool {
		_, st, _ := latestTrace(t, e)
		return st == core.StopCancelled
	})
}

func TestSessionsCarryEarlierTurnsUntilCleared(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.rpc(t)
	solve := func(problem string) map[string]any {
		r := result(t, c.call("solve", map[string]any{"problem": problem, "session": "chat-1"}, nil))
		if r["isError"] == true {
			t.Fatal(toolText(r))
		}
		return r["structuredContent"].(map[string]any)
	}
	first := solve("What is 17 * 23?")
	second := solve("And what is that plus 9?")
	tr, err := e.traces.Get(second["trace_id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(tr.Problem, "Q1: What is 17 * 23?") || !strings.Contains(tr.Problem, "A1: "+first["answer"].(string)) ||
		!strings.HasSuffix(tr.Problem, "Problem: And what is that plus 9?") {
		t.Fatalf("the follow-up was not posed with the session's first turn:\n%s", tr.Problem)
	}
	r := result(t, c.call("clear_session", map[string]any{"session": "chat-1"}, nil))
	if sc := r["structuredContent"].(map[string]any); sc["cleared"] != true || sc["turns"] != float64(2) {
		t.Fatalf("clear_session: %v", sc)
	}
	third := solve("What is 2 + 2?")
	tr, _ = e.traces.Get(third["trace_id"].(string))
	if tr.Problem != "What is 2 + 2?" {
		t.Fatalf("a cleared session still carried context: %q", tr.Problem)
	}
	r = result(t, c.call("clear_session", map[string]any{"session": "bad id!"}, nil))
	if r["isError"] != true {
		t.Fatalf("a malformed session id was accepted: %v", r)
	}
	// A Game of 24 puzzle is posed alone, in a session too: the pack reads
	// its four numbers from the problem, and earlier turns before them
	// made it unsolvable ("No answer was found" after 2 calls).
	puzzle := solve("4 9 10 13")
	tr, _ = e.traces.Get(puzzle["trace_id"].(string))
	if tr.Problem != "4 9 10 13" || tr.Pack != "game24" {
		t.Fatalf("a Game of 24 puzzle in a session was posed as %q (pack %s)", tr.Problem, tr.Pack)
	}
}

func TestGetTraceResourcesAndPrompts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.rpc(t)
	sc := result(t, c.call("solve", map[string]any{"problem": "What is 17 * 23?", "strategy": "self-consistency",
		"params": map[string]any{"k": 3}}, nil))["structuredContent"].(map[string]any)
	id := sc["trace_id"].(string)

	r := result(t, c.call("get_trace", map[string]any{"trace_id": id}, nil))
	st := r["structuredContent"].(map[string]any)
	if st["trace_id"] != id || st["status"] != "done" || st["answer"] != sc["answer"] || st["best_path"] == nil {
		t.Fatalf("get_trace: %v", st)
	}
	r = result(t, c.call("get_trace", map[string]any{"trace_id": id, "detail": "full"}, nil))
	if full := r["structuredContent"].(map[string]any)["trace"].(map[string]any); full["schema"] != core.TraceSchema {
		t.Fatalf("full trace: %v", full["schema"])
	}
	r = result(t, c.call("get_trace", map[string]any{"trace_id": "0123456789abcdef"}, nil))
	if r["isError"] != true || !strings.Contains(toolText(r), "no trace") {
		t.Fatalf("unknown trace: %v", r)
	}

	msgs, _ := c.post(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "resources/list"})
	var uris []string
	for _, res := range result(t, msgs)["resources"].([]any) {
		uris = append(uris, res.(map[string]any)["uri"].(string))
	}
	if diff := cmp.Diff([]string{"ponder://strategies", "ponder://traces"}, uris); diff != "" {
		t.Errorf("resources (-want +got):\n%s", diff)
	}
	msgs, _ = c.post(map[string]any{"jsonrpc": "2.0", "id": 2, "method": "resources/templates/list"})
	if tpl := result(t, msgs)["resourceTemplates"].([]any); len(tpl) != 1 || tpl[0].(map[string]any)["uriTemplate"] != "ponder://traces/{id}" {
		t.Fatalf("templates: %v", tpl)
	}
	msgs, _ = c.post(map[string]any{"jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": map[string]any{"uri": "ponder://traces/" + id}})
	contents := result(t, msgs)["contents"].([]any)[0].(map[string]any)
	var doc core.Trace
	if err := json.Unmarshal([]byte(contents["text"].(string)), &doc); err != nil || doc.ID != id || contents["mimeType"] != "application/json" {
		t.Fatalf("trace resource: %v %v", err, contents["mimeType"])
	}
	msgs, _ = c.post(map[string]any{"jsonrpc": "2.0", "id": 4, "method": "resources/read", "params": map[string]any{"uri": "ponder://strategies"}})
	if !strings.Contains(mustJSONString(msgs), "self-consistency") {
		t.Fatalf("strategies resource: %v", msgs)
	}
	msgs, _ = c.post(map[string]any{"jsonrpc": "2.0", "id": 5, "method": "resources/read", "params": map[string]any{"uri": "ponder://traces/ffffffffffffffff"}})
	if msgs[0]["error"] == nil {
		t.Fatalf("unknown trace resource: %v", msgs)
	}

	msgs, _ = c.post(map[string]any{"jsonrpc": "2.0", "id": 51, "method": "completion/complete", "params": map[string]any{
		"ref": map[string]any{"type": "ref/prompt", "name": "solve_step_by_step"}, "argument": map[string]any{"name": "strategy", "value": "self"}}})
	if got := result(t, msgs)["completion"].(map[string]any)["values"]; mustJSONString(got) != `["self-consistency"]` {
		t.Fatalf("strategy completion: %v", got)
	}
	msgs, _ = c.post(map[string]any{"jsonrpc": "2.0", "id": 52, "method": "completion/complete", "params": map[string]any{
		"ref": map[string]any{"type": "ref/resource", "uri": "ponder://traces/{id}"}, "argument": map[string]any{"name": "id", "value": id[:3]}}})
	if got := mustJSONString(result(t, msgs)["completion"].(map[string]any)["values"]); !strings.Contains(got, id) {
		t.Fatalf("trace id completion: %v", got)
	}
	msgs, _ = c.post(map[string]any{"jsonrpc": "2.0", "id": 6, "method": "prompts/list"})
	var names []string
	for _, p := range result(t, msgs)["prompts"].([]any) {
		names = append(names, p.(map[string]any)["name"].(string))
	}
	if diff := cmp.Diff([]string{"answer_from_documents", "solve_step_by_step"}, names); diff != "" {
		t.Errorf("prompts (-want +got):\n%s", diff)
	}
	msgs, _ = c.post(map[string]any{"jsonrpc": "2.0", "id": 7, "method": "prompts/get", "params": map[string]any{
		"name": "solve_step_by_step", "arguments": map[string]any{"problem": "What is 6 * 7?", "strategy": "best-of-n"}}})
	if text := mustJSONString(result(t, msgs)); !strings.Contains(text, "What is 6 * 7?") || !strings.Contains(text, `strategy \"best-of-n\"`) {
		t.Fatalf("prompt: %s", text)
	}
	msgs, _ = c.post(map[string]any{"jsonrpc": "2.0", "id": 8, "method": "prompts/get", "params": map[string]any{
		"name": "solve_step_by_step", "arguments": map[string]any{}}})
	if msgs[0]["error"] == nil {
		t.Fatalf("a prompt without its required argument: %v", msgs)
	}
}

func TestLoggingSetLevel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.rpc(t)
	msgs, _ := c.post(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "logging/setLevel", "params": map[string]any{"level": "info"}})
	if r := result(t, msgs); len(r) != 0 {
		t.Fatalf("setLevel result: %v", r)
	}
	msgs = c.call("solve", map[string]any{"problem": "What is 2 + 2?"}, nil)
	var logs []map[string]any
	for _, m := range msgs {
		if m["method"] == "notifications/message" {
			logs = append(logs, m["params"].(map[string]any))
		}
	}
	if len(logs) == 0 || logs[0]["level"] != "info" || logs[0]["logger"] != "ponder" {
		t.Fatalf("want info log notifications, got %v", msgs)
	}
	if strings.Contains(mustJSONString(logs), "2 + 2") {
		t.Fatal("log notifications must not carry the problem")
	}
	c.post(map[string]any{"jsonrpc": "2.0", "id": 2, "method": "logging/setLevel", "params": map[string]any{"level": "error"}})
	for _, m := range c.call("solve", map[string]any{"problem": "What is 3 + 3?"}, nil) {
		if m["method"] == "notifications/message" {
			t.Fatalf("info log sent at level error: %v", m)
		}
	}
}

// Without an LLM endpoint or sampling, a solve says what to do, by
// transport: a stdio client started the server, so it is told how to
// configure one (PONDER_LLM_BASE_URL in its env block); a client over HTTP
// cannot set the server's environment, so it is sent to the operator (as
// the OpenAI API's 503 does) and told what it can do itself, sample.
func TestNoLLMAndNoSamplingSaysHowToConfigure(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noLLM: true})
	// connect opens a session over a transport; its solve calls the tool.
	connect := map[string]func(t *testing.T) func(args map[string]any) map[string]any{
		"http": func(t *testing.T) func(args map[string]any) map[string]any {
			c := e.rpc(t)
			return func(args map[string]any) map[string]any { return result(t, c.call("solve", args, nil)) }
		},
		"stdio": func(t *testing.T) func(args map[string]any) map[string]any {
			c := startStdio(t, e)
			var id float64
			return func(args map[string]any) map[string]any {
				id++
				c.send(map[string]any{"jsonrpc": "2.0", "id": id, "method": "tools/call",
					"params": map[string]any{"name": "solve", "arguments": args}})
				return result(t, c.until(id))
			}
		},
	}
	for _, tc := range []struct {
		transport string
		says      []string
		not       []string
	}{
		{"http", []string{"has no LLM endpoint configured", "use an MCP client that supports sampling",
			"contact the server's operator (its log says how to set an endpoint)"}, []string{"PONDER_", "restart"}},
		{"stdio", []string{"has no LLM endpoint configured", "Set PONDER_LLM_BASE_URL", "env block",
			"use an MCP client that supports sampling"}, []string{"operator"}},
	} {
		t.Run(tc.transport, func(t *testing.T) {
			solve := connect[tc.transport](t)
			r := solve(map[string]any{"problem": "What is 2 + 2?"})
			text := toolText(r)
			if r["isError"] != true {
				t.Fatalf("want an error, got %v", r)
			}
			for _, s := range tc.says {
				if !strings.Contains(text, s) {
					t.Errorf("lacks %q: %s", s, text)
				}
			}
			for _, s := range tc.not {
				if strings.Contains(text, s) {
					t.Errorf("has %q: %s", s, text)
				}
			}
			// A bad argument is still reported first.
			r = solve(map[string]any{"problem": "2?", "strategy": "nope"})
			if !strings.Contains(toolText(r), "nope") {
				t.Fatalf("%v", r)
			}
		})
	}
}

func TestDocumentToolsWithoutStore(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.rpc(t)
	for _, call := range []struct {
		name string
		args map[string]any
	}{
		{"search_documents", map[string]any{"query": "refund policy"}},
		{"ingest_documents", map[string]any{"texts": []any{map[string]any{"text": "hello"}}}},
	} {
		r := result(t, c.call(call.name, call.args, nil))
		if r["isError"] != true || !strings.Contains(toolText(r), "no document store is configured") {
			t.Errorf("%s: %v", call.name, r)
		}
	}
	r := result(t, c.call("ingest_documents", map[string]any{}, nil))
	if r["isError"] != true {
		t.Errorf("ingest with nothing: %v", r)
	}
}

type fakeRetriever struct{}

func (fakeRetriever) Retrieve(_ context.Context, req core.RetrieveRequest) ([]core.Chunk, error) {
	return []core.Chunk{{ID: "c1", Text: "Refunds are issued within 14 days.", Source: "policy.md", Score: 0.9}}, nil
}

type recordingIngester struct {
	mu  sync.Mutex
	got []IngestRequest
}

func (r *recordingIngester) Ingest(_ context.Context, req IngestRequest) (IngestResult, error) {
	r.mu.Lock()
	r.got = append(r.got, req)
	r.mu.Unlock()
	return IngestResult{Collection: "docs", Added: len(req.Texts), Documents: []IngestedDoc{{Source: "a.md", Status: "added", Chunks: 1}}}, nil
}

func TestDocumentTools(t *testing.T) {
	t.Parallel()
	ing := &recordingIngester{}
	e := newEnv(t, envOptions{opts: func(o *Options) { o.Retriever = fakeRetriever{}; o.Ingester = ing }})
	c := e.rpc(t)
	r := result(t, c.call("search_documents", map[string]any{"query": "refunds", "k": 3}, nil))
	ps := r["structuredContent"].(map[string]any)["passages"].([]any)
	if len(ps) != 1 || !strings.Contains(toolText(r), "policy.md") {
		t.Fatalf("search: %v", r)
	}
	r = result(t, c.call("ingest_documents", map[string]any{"texts": []any{map[string]any{"name": "a.md", "text": "# A"}}, "collection": "notes"}, nil))
	if r["isError"] == true || len(ing.got) != 1 || ing.got[0].Collection != "notes" || ing.got[0].Texts[0].Name != "a.md" {
		t.Fatalf("ingest: %v %+v", r, ing.got)
	}
	r = result(t, c.call("search_documents", map[string]any{"query": "x", "k": 500}, nil))
	if r["isError"] != true {
		t.Fatalf("k above the schema's maximum was accepted: %v", r)
	}
}

// TestSamplingIsThePolicyWithoutAnEndpoint runs a search with the MCP
// client's own model: a real mcp-go client answering sampling requests.
func TestSamplingIsThePolicyWithoutAnEndpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noLLM: true, cfg: func(c *config.Server) { c.SamplingConcurrency = 2 }})
	var inFlight, maxInFlight, total atomic.Int32
	handler := samplingFunc(func(ctx context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		total.Add(1)
		time.Sleep(20 * time.Millisecond)
		return &mcp.CreateMessageResult{SamplingMessage: mcp.SamplingMessage{Role: mcp.RoleAssistant,
			Content: mcp.NewTextContent("17 * 23 = 391. The answer is \\boxed{391}.")}, Model: "client-model", StopReason: "endTurn"}, nil
	})
	ctx := ctxTimeout(t, 30*time.Second)
	c := samplingClient(ctx, t, e, handler)
	call := func(args map[string]any) *mcp.CallToolResult {
		req := mcp.CallToolRequest{}
		req.Params.Name = "solve"
		req.Params.Arguments = args
		res, err := c.CallTool(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := call(map[string]any{"problem": "What is 17 * 23?", "strategy": "self-consistency", "params": map[string]any{"k": 6}})
	sc, _ := res.StructuredContent.(map[string]any)
	if res.IsError || sc["answer"] != "391" || sc["policy"] != "sampling" {
		t.Fatalf("solve with sampling: %+v", res)
	}
	if total.Load() != 6 || maxInFlight.Load() > 2 {
		t.Fatalf("want 6 sampling requests at most 2 at a time, got %d, max %d at once", total.Load(), maxInFlight.Load())
	}
	total.Store(0)
	res = call(map[string]any{"problem": "What is 17 * 23?", "strategy": "self-consistency", "params": map[string]any{"k": 6},
		"budget": map[string]any{"llm_calls": 3}})
	if total.Load() != 3 {
		t.Fatalf("the budget of 3 calls was not honoured: %d sampling requests", total.Load())
	}
}

type samplingFunc func(ctx context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error)

// samplingClient is an mcp-go client over HTTP, initialised with the
// sampling capability, whose model is handler; it closes with the test.
func samplingClient(ctx context.Context, t *testing.T, e *env, handler samplingFunc) *client.Client {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(e.ts.URL+"/mcp", transport.WithContinuousListening())
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr, client.WithSamplingHandler(handler))
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = "2025-06-18"
	init.Params.ClientInfo = mcp.Implementation{Name: "sampler", Version: "1"}
	init.Params.Capabilities.Sampling = &mcp.SamplingCapability{}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	return c
}

func (f samplingFunc) CreateMessage(ctx context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	return f(ctx, req)
}

// TestMCPGoClient checks a stock mcp-go client, on the current protocol
// and on 2025-06-18: tools, and a solve with progress.
func TestMCPGoClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	for _, version := range []string{"", "2025-06-18"} {
		t.Run("protocol "+version, func(t *testing.T) {
			c, err := client.NewStreamableHttpClient(e.ts.URL + "/mcp")
			if err != nil {
				t.Fatal(err)
			}
			ctx := ctxTimeout(t, 30*time.Second)
			if err := c.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var mu sync.Mutex
			var progress []float64
			c.OnNotification(func(n mcp.JSONRPCNotification) {
				if n.Method == "notifications/progress" {
					mu.Lock()
					progress = append(progress, n.Params.AdditionalFields["progress"].(float64))
					mu.Unlock()
				}
			})
			init := mcp.InitializeRequest{}
			init.Params.ProtocolVersion = version
			init.Params.ClientInfo = mcp.Implementation{Name: "go", Version: "1"}
			if _, err := c.Initialize(ctx, init); err != nil {
				t.Fatal(err)
			}
			tools, err := c.ListTools(ctx, mcp.ListToolsRequest{})
			if err != nil || len(tools.Tools) != 6 {
				t.Fatalf("list tools: %v %v", err, tools)
			}
			req := mcp.CallToolRequest{}
			req.Params.Name = "solve"
			req.Params.Arguments = map[string]any{"problem": "What is 17 * 23?", "strategy": "best-of-n", "params": map[string]any{"n": 3}}
			req.Params.Meta = &mcp.Meta{ProgressToken: "p"}
			res, err := c.CallTool(ctx, req)
			if err != nil || res.IsError {
				t.Fatalf("solve: %v %+v", err, res)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(progress) == 0 || progress[len(progress)-1] != 64 {
				t.Fatalf("progress before the result: %v", progress)
			}
		})
	}
}

// A client that ends its session (DELETE) ends the session's work: a solve
// in progress stops and its LLM calls with it, rather than running to its
// budget for a session that no longer exists.
func TestSessionDeleteCancelsItsSearch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sim: sim.Options{Latency: 100 * time.Millisecond}})
	c := e.rpc(t)
	msgs := c.streamCall(ctxTimeout(t, 30*time.Second), 91, "solve", slowSolve, "ended")
	if m := <-msgs; m["method"] != "notifications/progress" {
		t.Fatalf("want progress first, got %v", m)
	}
	start := time.Now()
	req, err := http.NewRequest(http.MethodDelete, c.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Mcp-Session-Id", c.session)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	for range msgs {
	}
	waitFor(t, 5*time.Second, "the search to be cancelled", func() bool {
		_, st, _ := latestTrace(t, e)
		return st != "" && st != core.StopRunning
	})
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the search ended %s after its session did", d)
	}
	if _, st, calls := latestTrace(t, e); st != core.StopCancelled || calls >= 40 {
		t.Errorf("the search went on after its session ended: %s, %d calls", st, calls)
	}
}

// A Mcp-Protocol-Version header naming no version this server speaks gets
// 400 with the versions it does speak, as the spec asks, whatever the
// method: mcp-go takes any header sorting after 2026-07-28 ("x",
// "garbage") for the stateless protocol and answered a GET or DELETE 405
// ("not supported in protocol version 2026-07-28") and a POST with an
// error about a missing _meta field.
func TestUnknownProtocolVersionHeaderIsBadRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.rpc(t)
	for _, v := range []string{"x", "2099-01-01", "1999-01-01"} {
		for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
			req := c.request([]byte(`{"jsonrpc":"2.0","id":9,"method":"ping"}`))
			req.Method = method
			req.Header.Set("Mcp-Protocol-Version", v)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			msgs := readMessages(t, resp)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || len(msgs) != 1 {
				t.Errorf("%s with version %q: %d %v, want 400 and a JSON-RPC error", method, v, resp.StatusCode, msgs)
				continue
			}
			msg := mustJSONString(msgs[0]["error"])
			if !strings.Contains(msg, "unsupported protocol version") || !strings.Contains(msg, "2025-11-25") ||
				!strings.Contains(msg, v) {
				t.Errorf("%s with version %q: error %s, want it to name the version and the supported ones", method, v, msg)
			}
		}
	}
	// The session is still there, and a supported version works.
	if r := result(t, c.call("list_strategies", map[string]any{}, nil)); r["isError"] == true {
		t.Fatal(toolText(r))
	}
}

// A session ended to make room (every session busy, server.max_sessions
// reached) takes its solve with it too.
func TestEvictedSessionCancelsItsSearch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sim: sim.Options{Latency: 100 * time.Millisecond},
		cfg: func(c *config.Server) { c.MaxSessions = 1 }})
	c := e.rpc(t)
	msgs := c.streamCall(ctxTimeout(t, 30*time.Second), 92, "solve", slowSolve, "evicted")
	if m := <-msgs; m["method"] != "notifications/progress" {
		t.Fatalf("want progress first, got %v", m)
	}
	e.rpc(t) // a second session: the first, busy as it is, makes room
	for range msgs {
	}
	waitFor(t, 5*time.Second, "the search to end", func() bool {
		_, st, _ := latestTrace(t, e)
		return st != "" && st != core.StopRunning
	})
	if _, st, calls := latestTrace(t, e); st != core.StopCancelled || calls >= 40 {
		t.Errorf("the search went on after its session ended: %s, %d calls", st, calls)
	}
}

// solveLogs returns the "solve started" and "solve finished" log
// notifications among msgs, and fails unless each comes once.
func solveLogs(t *testing.T, msgs []map[string]any) (started, finished map[string]any) {
	t.Helper()
	for _, m := range msgs {
		if m["method"] != "notifications/message" {
			continue
		}
		p := m["params"].(map[string]any)
		data, _ := p["data"].(map[string]any)
		switch {
		case data["event"] == "solve started" && started == nil:
			started = p
		case data["event"] == "solve finished" && finished == nil:
			finished = p
		default:
			t.Fatalf("unexpected log notification: %v", p)
		}
	}
	if started == nil || finished == nil {
		t.Fatalf("want solve started and solve finished logs before the result, got %v", msgs)
	}
	return started, finished
}

// A solve's log notifications go out on its own POST stream before its
// result, even with the session's GET stream open to take them: mcp-go
// handed them to whichever stream took them first, and dropped the last
// one ("solve finished") when the result closed the POST's stream first.
func TestSolveLogsPrecedeResultOnItsStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.rpc(t)
	c.post(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "logging/setLevel", "params": map[string]any{"level": "info"}})
	get, err := http.NewRequestWithContext(ctxTimeout(t, time.Minute), http.MethodGet, c.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	get.Header.Set("Accept", "text/event-stream")
	get.Header.Set("Mcp-Session-Id", c.session)
	get.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	resp, err := http.DefaultClient.Do(get)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET stream: %v %v", resp, err)
	}
	defer resp.Body.Close()
	for i := 0; i < 10; i++ {
		msgs := c.call("solve", map[string]any{"problem": gsm8kProblem, "strategy": "self-consistency",
			"params": map[string]any{"k": 3}, "budget": map[string]any{"llm_calls": 3}}, nil)
		_, finished := solveLogs(t, msgs)
		sc := result(t, msgs)["structuredContent"].(map[string]any)
		data := finished["data"].(map[string]any)
		if finished["level"] != "info" || data["trace_id"] != sc["trace_id"] || data["stopped"] != "done" {
			t.Fatalf("solve %d: solve finished log %v does not match the result %v", i, finished, sc)
		}
	}
}

// A solve that names no strategy logs the one it runs ("solve started"
// said "strategy": "").
func TestSolveStartedLogNamesTheDefaultStrategy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.rpc(t)
	c.post(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "logging/setLevel", "params": map[string]any{"level": "info"}})
	msgs := c.call("solve", map[string]any{"problem": gsm8kProblem, "budget": map[string]any{"llm_calls": 1}}, nil)
	started, _ := solveLogs(t, msgs)
	sc := result(t, msgs)["structuredContent"].(map[string]any)
	if got := started["data"].(map[string]any)["strategy"]; got == "" || got != sc["strategy"] {
		t.Fatalf("solve started names strategy %q, the result %q", got, sc["strategy"])
	}
}

func TestStdioSolveLogsPrecedeResult(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := startStdio(t, e)
	c.send(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "logging/setLevel", "params": map[string]any{"level": "info"}})
	c.until(1)
	for i := 2; i <= 11; i++ {
		c.send(map[string]any{"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": map[string]any{
			"name": "solve", "arguments": map[string]any{"problem": "What is 17 * 23?", "strategy": "self-consistency",
				"params": map[string]any{"k": 3}, "budget": map[string]any{"llm_calls": 3}}}})
		msgs := c.until(float64(i))
		_, finished := solveLogs(t, msgs)
		sc := msgs[len(msgs)-1]["result"].(map[string]any)["structuredContent"].(map[string]any)
		if finished["data"].(map[string]any)["trace_id"] != sc["trace_id"] {
			t.Fatalf("call %d: solve finished log %v does not match the result %v", i, finished, sc)
		}
	}
}

// The last progress notification of a solve reports the counts its
// result does: it said 42 of 60 LLM calls (what the trace showed) where
// the result's usage said 45.
func TestFinalProgressReportsTheResultsCounts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.rpc(t)
	for i := 0; i < 5; i++ {
		msgs := c.call("solve", map[string]any{"problem": gsm8kProblem, "strategy": "mcts",
			"budget": map[string]any{"llm_calls": 60}}, map[string]any{"progressToken": "p"})
		if len(msgs) < 2 || msgs[len(msgs)-2]["method"] != "notifications/progress" {
			t.Fatalf("want a progress notification right before the result, got %v", msgs)
		}
		final := msgs[len(msgs)-2]["params"].(map[string]any)
		u := result(t, msgs)["structuredContent"].(map[string]any)["usage"].(map[string]any)
		want := fmt.Sprintf("%v of 60 LLM calls, %v tokens", u["llm_calls"], u["prompt_tokens"].(float64)+u["completion_tokens"].(float64))
		if final["progress"] != float64(60) || !strings.Contains(final["message"].(string), want) {
			t.Fatalf("solve %d: final progress %v does not report the result's usage (%s)", i, final, want)
		}
	}
}
