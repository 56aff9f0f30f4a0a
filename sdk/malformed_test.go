package sdk

import (
	"context"
	"errors"
	"math"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/sdk/internal/pb"
)

// recordingHost answers every Host call and counts them; a malformed
// request must never reach it.
type recordingHost struct {
	policyHost
	calls int
}

func (h *recordingHost) Complete(context.Context, CompletionRequest) (Completion, error) {
	h.calls++
	return Completion{Choices: []Choice{{Text: "ok"}}}, nil
}

func (h *recordingHost) Generate(context.Context, NodeID, int, GenerateOptions) ([]Node, error) {
	h.calls++
	return nil, nil
}

func (h *recordingHost) AddNode(context.Context, []NodeID, Node) (NodeID, error) {
	h.calls++
	return 1, nil
}

func (h *recordingHost) UpdateNode(context.Context, NodeID, NodeUpdate) (Node, error) {
	h.calls++
	return Node{}, nil
}

func (h *recordingHost) Trace(context.Context, string, []NodeID, map[string]any) error {
	h.calls++
	return nil
}

// startHostServer serves the Host service on a real gRPC connection.
func startHostServer(t *testing.T, h Host) (pb.HostClient, uint64) {
	t.Helper()
	sessions := serveHost(nil)
	session := sessions.open(h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.ChainUnaryInterceptor(recoverUnary))
	pb.RegisterHostServer(s, &hostServer{sessions: sessions})
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pb.NewHostClient(conn), session
}

// TestMalformedHostRequests sends the host requests a buggy or hostile
// plugin might: each is refused with INVALID_ARGUMENT (or
// FAILED_PRECONDITION for a session that does not exist) and never reaches
// the engine.
func TestMalformedHostRequests(t *testing.T) {
	t.Parallel()
	h := &recordingHost{}
	c, session := startHostServer(t, h)
	ctx := context.Background()
	cases := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"complete n negative", func() error {
			_, err := c.Complete(ctx, &pb.CompleteRequest{Session: session, Request: &pb.CompletionRequest{N: -5}})
			return err
		}, codes.InvalidArgument},
		{"complete tool call args not json", func() error {
			_, err := c.Complete(ctx, &pb.CompleteRequest{Session: session, Request: &pb.CompletionRequest{
				Messages: []*pb.Message{{Role: "assistant", ToolCalls: []*pb.ToolCall{{Name: "x", ArgumentsJson: "{nope"}}}}}})
			return err
		}, codes.InvalidArgument},
		{"complete nil request", func() error {
			_, err := c.Complete(ctx, &pb.CompleteRequest{Session: session})
			return err
		}, codes.OK},
		{"generate k zero", func() error {
			_, err := c.Generate(ctx, &pb.GenerateRequest{Session: session, K: 0})
			return err
		}, codes.InvalidArgument},
		{"generate k huge", func() error {
			_, err := c.Generate(ctx, &pb.GenerateRequest{Session: session, K: 1 << 30})
			return err
		}, codes.InvalidArgument},
		{"add node meta not json", func() error {
			_, err := c.AddNode(ctx, &pb.AddNodeRequest{Session: session, Parents: []int32{0}, Node: &pb.Node{MetaJson: "[[["}})
			return err
		}, codes.InvalidArgument},
		{"update meta not json", func() error {
			_, err := c.UpdateNode(ctx, &pb.UpdateNodeRequest{Session: session, Id: 1, MetaJson: `{"a":`})
			return err
		}, codes.InvalidArgument},
		{"evaluate params not json", func() error {
			_, err := c.Evaluate(ctx, &pb.HostEvaluateRequest{Session: session, Evaluator: "judge", ParamsJson: "\x00"})
			return err
		}, codes.InvalidArgument},
		{"trace data not json", func() error {
			_, err := c.Trace(ctx, &pb.TraceRequest{Session: session, Op: "info", DataJson: "nope"})
			return err
		}, codes.InvalidArgument},
		{"solve sub params not json", func() error {
			_, err := c.SolveSub(ctx, &pb.SolveSubRequest{Session: session, Task: &pb.Task{ParamsJson: "{"}})
			return err
		}, codes.InvalidArgument},
		{"call tool without call", func() error {
			_, err := c.CallTool(ctx, &pb.HostCallToolRequest{Session: session, Call: &pb.ToolCall{ArgumentsJson: "]"}})
			return err
		}, codes.InvalidArgument},
		{"unknown session", func() error {
			_, err := c.Complete(ctx, &pb.CompleteRequest{Session: session + 99, Request: &pb.CompletionRequest{N: 1}})
			return err
		}, codes.FailedPrecondition},
		{"not allowed for evaluators", func() error {
			_, err := c.Retrieve(ctx, &pb.RetrieveRequest{Session: session, Query: "x"})
			return err
		}, codes.FailedPrecondition},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := h.calls
			err := tc.call()
			if got := status.Code(err); got != tc.want {
				t.Fatalf("code %s (%v), want %s", got, err, tc.want)
			}
			if tc.want == codes.InvalidArgument && h.calls != before {
				t.Fatal("a malformed request reached the host")
			}
		})
	}
}

// TestMalformedReplies: what a plugin answers is checked before the host
// uses it.
func TestMalformedReplies(t *testing.T) {
	t.Parallel()
	if _, err := toolResultFromPB(&pb.ToolResult{StructuredJson: "{bad"}); err == nil {
		t.Error("bad structured JSON accepted")
	}
	for _, s := range []float64{math.NaN(), 1.5, -2, math.Inf(1)} {
		if _, err := evaluationFromPB(&pb.Evaluation{Score: s}); err == nil {
			t.Errorf("score %v accepted", s)
		}
	}
	for _, k := range []string{"Verifier", "a score", strings.Repeat("k", 1000), "value\x00<b>"} {
		if _, err := evaluationFromPB(&pb.Evaluation{Score: 0.5, Kind: k}); err == nil || len(err.Error()) > 200 {
			t.Errorf("evaluation kind %.20q: %v", k, err)
		}
	}
	for _, k := range []string{"", "value", "verifier", "prm", "orm", "novelty"} {
		if _, err := evaluationFromPB(&pb.Evaluation{Score: 0.5, Kind: k}); err != nil {
			t.Errorf("evaluation kind %q: %v", k, err)
		}
	}
	if _, err := descriptionFromPB(&pb.Description{Name: "../../etc", Kind: "tool"}); err == nil {
		t.Error("path-like plugin name accepted")
	}
	if _, err := paramSpecsFromPB([]*pb.ParamSpec{{Name: "x", Type: "weird"}}); err == nil {
		t.Error("unknown param type accepted")
	}
	if _, err := paramSpecsFromPB([]*pb.ParamSpec{{Name: "x", Type: "int", DefaultJson: `"seven"`}}); err == nil {
		t.Error("bad default accepted")
	}
	if _, err := nodeFromPB(&pb.Node{MetaJson: "{"}); err == nil {
		t.Error("bad node meta accepted")
	}
	// Nil messages read as zero values.
	if _, err := taskFromPB(nil); err != nil {
		t.Error(err)
	}
	if _, err := completionFromPB(nil); err != nil {
		t.Error(err)
	}
	if _, err := evaluationFromPB(nil); err == nil {
		t.Error("missing evaluation accepted")
	}
	// A detail of megabytes is cut: it is kept twice in the trace for
	// every evaluation.
	if e, err := evaluationFromPB(&pb.Evaluation{Score: 0.5, Detail: strings.Repeat("d", 10<<20)}); err != nil || len(e.Detail) > 3*maxDetailRunes || !strings.HasSuffix(e.Detail, "d…") {
		t.Errorf("huge detail: %d bytes, %v", len(e.Detail), err)
	}
	if e, _ := evaluationFromPB(&pb.Evaluation{Score: 0.5, Detail: "short"}); e.Detail != "short" {
		t.Errorf("detail %q", e.Detail)
	}
}

func TestStatusKeepsErrorIdentity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases := []struct {
		err  error
		want error
	}{
		{core.ErrBudgetExhausted, core.ErrBudgetExhausted},
		{context.Canceled, context.Canceled},
		{context.DeadlineExceeded, context.DeadlineExceeded},
		{core.ErrUnknown, core.ErrUnknown},
		{ErrNotAllowed, ErrNotAllowed},
	}
	for _, c := range cases {
		got := fromStatus(ctx, "call", toStatus(c.err))
		if !errors.Is(got, c.want) {
			t.Errorf("%v → %v: lost identity", c.err, got)
		}
	}
	if got := fromStatus(ctx, "call", toStatus(errors.New("boom"))); !strings.Contains(got.Error(), "boom") {
		t.Errorf("message lost: %v", got)
	}
}

func TestPluginValidate(t *testing.T) {
	t.Parallel()
	st := StrategyFunc(func(context.Context, Host, RunRequest) (Outcome, error) { return Outcome{}, nil })
	cases := []struct {
		name string
		p    Plugin
		ok   bool
	}{
		{"strategy", Plugin{Name: "s", Strategy: st}, true},
		{"none", Plugin{Name: "s"}, false},
		{"two", Plugin{Name: "s", Strategy: st, Evaluator: EvaluatorFunc(nil)}, false},
		{"no name", Plugin{Strategy: st}, false},
		{"bad name", Plugin{Name: "My Strategy", Strategy: st}, false},
		{"bad shape", Plugin{Name: "s", Shape: "cube", Strategy: st}, false},
		{"bad default", Plugin{Name: "s", Strategy: st, Params: []ParamSpec{{Name: "k", Type: "int", Default: "x"}}}, false},
	}
	for _, c := range cases {
		if err := c.p.Validate(); (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	temp, seed := 0.5, int64(9)
	req := CompletionRequest{Messages: []Message{{Role: "user", Content: "hi"}}, N: 3, Temperature: &temp, Seed: &seed,
		Stop: []string{"\n"}, Purpose: "generate", Tools: []ToolSpec{{Name: "t", Schema: []byte(`{"type":"object"}`)}}}
	got, err := completionRequestFromPB(completionRequestToPB(req))
	if err != nil || got.N != 3 || *got.Temperature != 0.5 || *got.Seed != 9 || got.Tools[0].Name != "t" || got.Messages[0].Content != "hi" {
		t.Fatalf("%+v, %v", got, err)
	}
	n := Node{ID: 4, Parents: []NodeID{1}, Kind: core.KindAnswer, Content: "x", Answer: "7", Terminal: true, Depth: 2,
		Scores: map[string]float64{"value": 0.5}, Meta: map[string]any{"k": "v"}, Visits: 3}
	pn, err := nodeToPB(n)
	if err != nil {
		t.Fatal(err)
	}
	back, err := nodeFromPB(pn)
	if err != nil || back.ID != 4 || back.Answer != "7" || back.Scores["value"] != 0.5 || back.Meta["k"] != "v" || back.Visits != 3 {
		t.Fatalf("%+v, %v", back, err)
	}
	p := Params{"k": int64(3), "d": core.Params{}.Duration("x")}
	s, err := paramsJSON(p)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := decodeParams("p", s)
	if err != nil {
		t.Fatal(err)
	}
	r, err := core.Resolve([]ParamSpec{{Name: "k", Type: core.ParamInt}, {Name: "d", Type: core.ParamDuration}}, raw)
	if err != nil || r.Int("k") != 3 {
		t.Fatalf("%v, %v", r, err)
	}
}

// A panic in plugin code reaches the host as a short INTERNAL error: the
// stack goes to the plugin's log, not into text a model or user reads.
func TestPanicErrorCarriesNoStack(t *testing.T) {
	t.Parallel()
	err := func() (err error) {
		defer recovered(&err)
		panic(strings.Repeat("boom ", 400))
	}()
	st, _ := status.FromError(err)
	if st.Code() != codes.Internal || !strings.HasPrefix(st.Message(), "plugin panicked: boom boom") {
		t.Fatalf("got %v", err)
	}
	if msg := st.Message(); strings.Contains(msg, "goroutine") || strings.Contains(msg, "runtime/debug") || len(msg) > 600 {
		t.Fatalf("%d bytes: %s", len(msg), msg)
	}
}

// Text a plugin returns that is not UTF-8 (a tool that read a binary file)
// still goes over the wire, its bad bytes replaced: protobuf would refuse
// the whole reply.
func TestReplyTextThatIsNotUTF8GoesOver(t *testing.T) {
	t.Parallel()
	bad := "head \xff\xfe tail"
	tr, err := toolResultToPB(ToolResult{Text: bad})
	if err != nil {
		t.Fatal(err)
	}
	ev := evaluationToPB(Evaluation{Score: 0.5, Detail: bad})
	for _, m := range []proto.Message{tr, ev} {
		if _, err := proto.Marshal(m); err != nil {
			t.Errorf("%T: %v", m, err)
		}
	}
	if want := "head \uFFFD tail"; tr.GetText() != want || ev.GetDetail() != want {
		t.Errorf("text %q, detail %q; want %q", tr.GetText(), ev.GetDetail(), want)
	}
}

// A strategy's outcome survives what a buggy plugin puts in it: text that
// is not UTF-8 goes over with its bad bytes replaced (protobuf refused the
// whole reply, losing the answer), a score that is no finite number is
// dropped with a note saying so (`solve --json` failed on it: JSON has no
// NaN), and a note the size of a document is cut.
func TestOutcomeOfABuggyStrategy(t *testing.T) {
	t.Parallel()
	resp := runResponse(Outcome{Answer: "4\xff", Note: "n\xfe"}, errors.New("stopped \xc3"))
	if _, err := proto.Marshal(resp); err != nil {
		t.Fatal(err)
	}
	if resp.GetAnswer() != "4\uFFFD" || resp.GetNote() != "n\uFFFD" || resp.GetError() != "stopped \uFFFD" {
		t.Errorf("run response %q %q %q", resp.GetAnswer(), resp.GetNote(), resp.GetError())
	}
	if n, err := nodeToPB(Node{Content: "x \xff", Answer: "\xfe"}); err != nil || proto.Size(n) == 0 {
		t.Errorf("node: %v", err)
	} else if _, err := proto.Marshal(n); err != nil {
		t.Errorf("node: %v", err)
	}
	for _, s := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		out := outcomeFromPB(&pb.RunResponse{Answer: "4", Score: &s, Note: "why"})
		if out.Answer != "4" || out.Score != nil || !strings.HasPrefix(out.Note, "why; the strategy's score ") || !strings.HasSuffix(out.Note, "was dropped: not a finite number") {
			t.Errorf("score %v: %+v", s, out)
		}
	}
	ok := 0.5
	if out := outcomeFromPB(&pb.RunResponse{Score: &ok}); out.Score == nil || *out.Score != 0.5 || out.Note != "" {
		t.Errorf("finite score: %+v", out)
	}
	if out := outcomeFromPB(&pb.RunResponse{Note: strings.Repeat("é", 1<<20)}); len(out.Note) > 3*maxNoteRunes || !strings.HasSuffix(out.Note, "é…") {
		t.Errorf("long note kept %d bytes", len(out.Note))
	}
}
