package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"sync"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/text"
	"github.com/ponder-rlm/ponder/sdk/internal/pb"
)

// goPlugin is the go-plugin glue for one kind. On the plugin's side it
// serves impl; on the host's side it builds a typed client.
type goPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	kind Kind
	impl Plugin // plugin side only
}

var _ plugin.GRPCPlugin = (*goPlugin)(nil)

func (p *goPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	desc, err := describe(p.impl)
	if err != nil {
		return err
	}
	base := &pluginServer{impl: p.impl, desc: desc, broker: broker}
	pb.RegisterCallsServer(s, &callsServer{t: &base.calls})
	switch p.kind {
	case KindTool:
		pb.RegisterToolServer(s, &toolServer{pluginServer: base})
	case KindEvaluator:
		pb.RegisterEvaluatorServer(s, &evaluatorServer{pluginServer: base})
	case KindStrategy:
		pb.RegisterStrategyServer(s, &strategyServer{pluginServer: base})
	default:
		return fmt.Errorf("sdk: unknown plugin kind %q", p.kind)
	}
	return nil
}

func (p *goPlugin) GRPCClient(ctx context.Context, broker *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	r := &Remote{kind: p.kind, calls: pb.NewCallsClient(c)}
	switch p.kind {
	case KindTool:
		tc := &toolClient{c: pb.NewToolClient(c)}
		r.describe, r.tool = tc.c.Describe, tc
	case KindEvaluator:
		hs := serveHost(broker)
		ec := &evaluatorClient{c: pb.NewEvaluatorClient(c), hosts: hs}
		r.describe, r.evaluator, r.hosts = ec.c.Describe, ec, hs
	case KindStrategy:
		hs := serveHost(broker)
		sc := &strategyClient{c: pb.NewStrategyClient(c), hosts: hs}
		r.describe, r.strategy, r.hosts = sc.c.Describe, sc, hs
	default:
		return nil, fmt.Errorf("sdk: unknown plugin kind %q", p.kind)
	}
	return r, nil
}

// ---------------------------------------------------------------- plugin side

type pluginServer struct {
	impl   Plugin
	desc   *pb.Description
	broker *plugin.GRPCBroker

	mu    sync.Mutex
	conns map[uint32]*grpc.ClientConn
	calls callTracker
}

func (s *pluginServer) Describe(context.Context, *pb.DescribeRequest) (*pb.Description, error) {
	return s.desc, nil
}

// host returns a client of the host's Host service for one session.
func (s *pluginServer) host(id uint32, session uint64) (*hostClient, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	conn, ok := s.conns[id]
	if !ok {
		c, err := s.broker.Dial(id)
		if err != nil {
			return nil, fmt.Errorf("connect to the host: %w", err)
		}
		if s.conns == nil {
			s.conns = map[uint32]*grpc.ClientConn{}
		}
		s.conns[id], conn = c, c
	}
	return &hostClient{c: pb.NewHostClient(conn), session: session}, nil
}

// recovered turns a panic in the plugin author's code into an error for
// the host instead of a crash of the plugin process. The stack goes to the
// plugin's log (stderr, relayed into the host's log), not into the error,
// which reaches the model and the user as a tool or evaluator result.
func recovered(err *error) {
	if r := recover(); r != nil {
		l := Logger()
		l.Error().Str("panic", fmt.Sprint(r)).Str("stack", string(debug.Stack())).Msg("plugin panicked")
		*err = status.Errorf(codes.Internal, "plugin panicked: %s (the stack is in the plugin's log)", text.Clip(fmt.Sprint(r), 500))
	}
}

type toolServer struct {
	pb.UnimplementedToolServer
	*pluginServer
}

func (s *toolServer) Describe(ctx context.Context, r *pb.DescribeRequest) (*pb.Description, error) {
	return s.pluginServer.Describe(ctx, r)
}

func (s *toolServer) Call(ctx context.Context, r *pb.CallToolRequest) (_ *pb.ToolResult, err error) {
	defer recovered(&err)
	defer s.calls.begin(ctx)()
	args, err := rawJSON("arguments", r.GetArgumentsJson())
	if err != nil {
		return nil, toStatus(invalid("%v", err))
	}
	if args == nil {
		args = json.RawMessage("{}")
	}
	res, err := s.impl.Tool.Call(ctx, args)
	if err != nil {
		return nil, toStatus(err)
	}
	out, err := toolResultToPB(res)
	if err != nil {
		return nil, toStatus(err)
	}
	return out, nil
}

type evaluatorServer struct {
	pb.UnimplementedEvaluatorServer
	*pluginServer
}

func (s *evaluatorServer) Describe(ctx context.Context, r *pb.DescribeRequest) (*pb.Description, error) {
	return s.pluginServer.Describe(ctx, r)
}

func (s *evaluatorServer) Evaluate(ctx context.Context, r *pb.EvaluateRequest) (_ *pb.EvaluateResponse, err error) {
	defer recovered(&err)
	defer s.calls.begin(ctx)()
	task, err := taskFromPB(r.GetTask())
	if err != nil {
		return nil, toStatus(invalid("%v", err))
	}
	path, err := nodesFromPB(r.GetPath())
	if err != nil {
		return nil, toStatus(invalid("%v", err))
	}
	raw, err := decodeParams("params", r.GetParamsJson())
	if err != nil {
		return nil, toStatus(invalid("%v", err))
	}
	params, err := core.Resolve(s.impl.Params, raw)
	if err != nil {
		return nil, toStatus(err)
	}
	req := EvalRequest{Task: task, Path: path, Params: params}
	if r.GetHostId() != 0 {
		h, err := s.host(r.GetHostId(), r.GetSession())
		if err != nil {
			return nil, toStatus(err)
		}
		req.Policy = core.PolicyFunc(h.Complete)
	}
	e, err := s.impl.Evaluator.Evaluate(ctx, req)
	if errors.Is(err, core.ErrNotApplicable) {
		return &pb.EvaluateResponse{NotApplicable: true}, nil
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.EvaluateResponse{Evaluation: evaluationToPB(e)}, nil
}

type strategyServer struct {
	pb.UnimplementedStrategyServer
	*pluginServer
}

func (s *strategyServer) Describe(ctx context.Context, r *pb.DescribeRequest) (*pb.Description, error) {
	return s.pluginServer.Describe(ctx, r)
}

func (s *strategyServer) Run(ctx context.Context, r *pb.RunRequest) (_ *pb.RunResponse, err error) {
	defer recovered(&err)
	defer s.calls.begin(ctx)()
	task, err := taskFromPB(r.GetTask())
	if err != nil {
		return nil, toStatus(invalid("%v", err))
	}
	raw, err := decodeParams("params", r.GetParamsJson())
	if err != nil {
		return nil, toStatus(invalid("%v", err))
	}
	params, err := core.Resolve(s.impl.Params, raw)
	if err != nil {
		return nil, toStatus(err)
	}
	if r.GetHostId() == 0 {
		return nil, toStatus(invalid("run request has no host_id"))
	}
	h, err := s.host(r.GetHostId(), r.GetSession())
	if err != nil {
		return nil, toStatus(err)
	}
	out, runErr := s.impl.Strategy.Run(ctx, h, RunRequest{Task: task, Params: params, Limits: limitsFromPB(r.GetLimits())})
	return runResponse(out, runErr), nil
}

// runResponse is a strategy's outcome on the wire. Text that is not UTF-8
// (an answer cut from bytes) has its bad bytes replaced: protobuf would
// refuse the whole reply, losing the answer.
func runResponse(out Outcome, runErr error) *pb.RunResponse {
	resp := &pb.RunResponse{Answer: validText(out.Answer), Best: int32(out.Best), Score: out.Score, Note: validText(out.Note)}
	if runErr != nil {
		resp.Error = validText(runErr.Error())
		switch {
		case errors.Is(runErr, core.ErrBudgetExhausted):
			resp.ErrorCode = "budget"
		case errors.Is(runErr, context.Canceled):
			resp.ErrorCode = "cancelled"
		case errors.Is(runErr, context.DeadlineExceeded):
			resp.ErrorCode = "timeout"
		}
	}
	return resp
}

// ---------------------------------------------------------------- host side

// Remote is the host's typed view of one plugin process: exactly one of
// Tool, Evaluator and Strategy is set, by kind. Its methods forward to the
// plugin over gRPC; cancelling ctx cancels the call in the plugin.
type Remote struct {
	kind      Kind
	describe  func(ctx context.Context, in *pb.DescribeRequest, opts ...grpc.CallOption) (*pb.Description, error)
	tool      *toolClient
	evaluator *evaluatorClient
	strategy  *strategyClient
	hosts     *hostSessions
	calls     pb.CallsClient
}

// Kind is the kind of plugin this remote talks to.
func (r *Remote) Kind() Kind { return r.kind }

// Describe asks the plugin what it is.
func (r *Remote) Describe(ctx context.Context) (Description, error) {
	d, err := r.describe(ctx, &pb.DescribeRequest{})
	if err != nil {
		return Description{}, fromStatus(ctx, "describe", err)
	}
	return r.described(d)
}

func (r *Remote) described(d *pb.Description) (Description, error) {
	out, err := descriptionFromPB(d)
	if err != nil {
		return Description{}, fmt.Errorf("describe: %w", err)
	}
	if out.Kind != r.kind {
		return Description{}, fmt.Errorf("describe: plugin says it is a %s, but serves the %s protocol", out.Kind, r.kind)
	}
	if r.kind == KindTool {
		if out.Tool == nil {
			return Description{}, fmt.Errorf("describe: tool plugin sent no tool spec")
		}
		r.tool.spec = *out.Tool
	}
	return out, nil
}

// Tool returns the tool (nil unless Kind is KindTool). Its Spec is known
// after Describe.
func (r *Remote) Tool() Tool {
	if r.tool == nil {
		return nil
	}
	return r.tool
}

// Evaluator returns the evaluator (nil unless Kind is KindEvaluator).
func (r *Remote) Evaluator() Evaluator {
	if r.evaluator == nil {
		return nil
	}
	return r.evaluator
}

// Strategy returns the strategy (nil unless Kind is KindStrategy). Run
// serves host to the plugin for the length of the call.
func (r *Remote) Strategy() Strategy {
	if r.strategy == nil {
		return nil
	}
	return r.strategy
}

// PluginSet is the go-plugin plugin map a host passes in ClientConfig.
func PluginSet() plugin.PluginSet {
	set := plugin.PluginSet{}
	for _, k := range Kinds {
		set[string(k)] = &goPlugin{kind: k}
	}
	return set
}

// Dispense returns the typed remote of a started plugin client. It hides
// go-plugin's untyped Dispense.
func Dispense(rpc plugin.ClientProtocol, kind Kind) (*Remote, error) {
	raw, err := rpc.Dispense(string(kind))
	if err != nil {
		return nil, fmt.Errorf("dispense %s: %w", kind, err)
	}
	r, ok := raw.(*Remote)
	if !ok {
		return nil, fmt.Errorf("dispense %s: unexpected client type %T", kind, raw)
	}
	return r, nil
}

type toolClient struct {
	c    pb.ToolClient
	spec ToolSpec
}

func (t *toolClient) Spec() ToolSpec { return t.spec }

func (t *toolClient) Call(ctx context.Context, args json.RawMessage) (ToolResult, error) {
	if len(args) == 0 {
		args = json.RawMessage("{}")
	}
	r, err := t.c.Call(ctx, &pb.CallToolRequest{ArgumentsJson: string(args)})
	if err != nil {
		return ToolResult{}, fromStatus(ctx, "call", err)
	}
	res, err := toolResultFromPB(r)
	if err != nil {
		return ToolResult{}, fmt.Errorf("call: %w", err)
	}
	return res, nil
}

type evaluatorClient struct {
	c     pb.EvaluatorClient
	hosts *hostSessions
}

func (e *evaluatorClient) Evaluate(ctx context.Context, req EvalRequest) (Evaluation, error) {
	task, err := taskToPB(req.Task)
	if err != nil {
		return Evaluation{}, err
	}
	path, err := nodesToPB(req.Path)
	if err != nil {
		return Evaluation{}, err
	}
	params, err := paramsJSON(req.Params)
	if err != nil {
		return Evaluation{}, fmt.Errorf("evaluate params: %w", err)
	}
	in := &pb.EvaluateRequest{Task: task, Path: path, ParamsJson: params}
	if req.Policy != nil {
		id, err := e.hosts.id()
		if err != nil {
			return Evaluation{}, err
		}
		session := e.hosts.open(policyHost{req.Policy})
		defer e.hosts.close(session)
		in.HostId, in.Session = id, session
	}
	r, err := e.c.Evaluate(ctx, in)
	if err != nil {
		return Evaluation{}, fromStatus(ctx, "evaluate", err)
	}
	if r.GetNotApplicable() {
		return Evaluation{}, core.ErrNotApplicable
	}
	ev, err := evaluationFromPB(r.GetEvaluation())
	if err != nil {
		return Evaluation{}, fmt.Errorf("evaluate: %w", err)
	}
	return ev, nil
}

type strategyClient struct {
	c     pb.StrategyClient
	hosts *hostSessions
}

func (s *strategyClient) Run(ctx context.Context, host Host, req RunRequest) (Outcome, error) {
	task, err := taskToPB(req.Task)
	if err != nil {
		return Outcome{}, err
	}
	params, err := paramsJSON(req.Params)
	if err != nil {
		return Outcome{}, fmt.Errorf("run params: %w", err)
	}
	id, err := s.hosts.id()
	if err != nil {
		return Outcome{}, err
	}
	session := s.hosts.open(host)
	defer s.hosts.close(session)
	r, err := s.c.Run(ctx, &pb.RunRequest{HostId: id, Session: session, Task: task, ParamsJson: params, Limits: limitsToPB(req.Limits)})
	if err != nil {
		return Outcome{}, fromStatus(ctx, "run", err)
	}
	out := outcomeFromPB(r)
	if msg := r.GetError(); msg != "" {
		switch r.GetErrorCode() {
		case "budget":
			return out, peerError(core.ErrBudgetExhausted, msg)
		case "cancelled":
			return out, peerError(context.Canceled, msg)
		case "timeout":
			return out, peerError(context.DeadlineExceeded, msg)
		}
		return out, errors.New(msg)
	}
	return out, nil
}

// Probe finds which kind a started plugin serves by asking each kind's
// Describe, for hosts that inspect a binary they know nothing about.
func Probe(ctx context.Context, rpc plugin.ClientProtocol) (*Remote, Description, error) {
	for _, k := range Kinds {
		r, err := Dispense(rpc, k)
		if err != nil {
			return nil, Description{}, err
		}
		d, err := r.describe(ctx, &pb.DescribeRequest{})
		if status.Code(err) == codes.Unimplemented {
			continue
		}
		if err != nil {
			return nil, Description{}, fromStatus(ctx, "describe", err)
		}
		desc, err := r.described(d)
		if err != nil {
			return nil, Description{}, err
		}
		return r, desc, nil
	}
	return nil, Description{}, fmt.Errorf("the plugin serves none of the tool, evaluator and strategy services")
}

// maxNoteRunes bounds a strategy plugin's Outcome.Note as the host keeps
// it: the note is a warning shown with the result, not a place for data.
const maxNoteRunes = 4096

// outcomeFromPB reads a strategy's outcome. A score that is not a finite
// number is dropped, saying so in the note (JSON has no NaN: the result
// could not be printed or sent), and a long note is cut.
func outcomeFromPB(r *pb.RunResponse) Outcome {
	out := Outcome{Answer: r.GetAnswer(), Best: NodeID(r.GetBest()), Score: r.Score, Note: text.Clip(r.GetNote(), maxNoteRunes)}
	if s := out.Score; s != nil && (math.IsNaN(*s) || math.IsInf(*s, 0)) {
		out.Score = nil
		msg := fmt.Sprintf("the strategy's score %v was dropped: not a finite number", *s)
		if out.Note != "" {
			msg = out.Note + "; " + msg
		}
		out.Note = msg
	}
	return out
}
