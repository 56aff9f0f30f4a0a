package sdk

import (
	"context"
	"fmt"
	"sync"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/sdk/internal/pb"
)

// hostSessions is the host's Host service for one plugin connection,
// served once over the GRPCBroker. Each strategy run (or evaluation that
// offers a policy) opens a session naming the Host that backs it; calls
// for a closed session fail with ErrSessionOver.
type hostSessions struct {
	broker *plugin.GRPCBroker

	once     sync.Once
	brokerID uint32

	mu   sync.Mutex
	next uint64
	m    map[uint64]Host
}

func serveHost(b *plugin.GRPCBroker) *hostSessions {
	return &hostSessions{broker: b, m: map[uint64]Host{}}
}

// id starts the Host service on first use and returns its broker id.
func (h *hostSessions) id() (uint32, error) {
	if h.broker == nil {
		return 0, fmt.Errorf("no broker to serve the host on")
	}
	h.once.Do(func() {
		h.brokerID = h.broker.NextId()
		srv := &hostServer{sessions: h}
		go h.broker.AcceptAndServe(h.brokerID, func(opts []grpc.ServerOption) *grpc.Server {
			s := grpc.NewServer(append(opts, grpc.ChainUnaryInterceptor(recoverUnary))...)
			pb.RegisterHostServer(s, srv)
			return s
		})
	})
	return h.brokerID, nil
}

func (h *hostSessions) open(host Host) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.next++
	h.m[h.next] = host
	return h.next
}

func (h *hostSessions) close(session uint64) {
	h.mu.Lock()
	delete(h.m, session)
	h.mu.Unlock()
}

func (h *hostSessions) get(session uint64) (Host, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	host, ok := h.m[session]
	if !ok {
		return nil, toStatus(fmt.Errorf("session %d: %w", session, ErrSessionOver))
	}
	return host, nil
}

// recoverUnary keeps a bug in a Host handler, whatever a plugin sent,
// from taking the host down: the call fails with INTERNAL.
func recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = status.Errorf(codes.Internal, "host: %s panicked: %v", info.FullMethod, r)
		}
	}()
	return handler(ctx, req)
}

// policyHost offers only Complete: what an evaluator may use.
type policyHost struct{ p Policy }

func (p policyHost) Complete(ctx context.Context, req CompletionRequest) (Completion, error) {
	return p.p.Complete(ctx, req)
}

func notAllowed(what string) error {
	return fmt.Errorf("%s: %w: an evaluator may only call Complete", what, ErrNotAllowed)
}

func (policyHost) Generate(context.Context, NodeID, int, GenerateOptions) ([]Node, error) {
	return nil, notAllowed("generate")
}
func (policyHost) AddNode(context.Context, []NodeID, Node) (NodeID, error) {
	return 0, notAllowed("add node")
}
func (policyHost) UpdateNode(context.Context, NodeID, NodeUpdate) (Node, error) {
	return Node{}, notAllowed("update node")
}
func (policyHost) Node(context.Context, NodeID) (Node, error)   { return Node{}, notAllowed("node") }
func (policyHost) Path(context.Context, NodeID) ([]Node, error) { return nil, notAllowed("path") }
func (policyHost) Children(context.Context, NodeID) ([]Node, error) {
	return nil, notAllowed("children")
}
func (policyHost) Prune(context.Context, ...NodeID) error { return notAllowed("prune") }
func (policyHost) Evaluate(context.Context, string, Params, NodeID) (Evaluation, error) {
	return Evaluation{}, notAllowed("evaluate")
}
func (policyHost) Tools(context.Context) ([]ToolSpec, error) { return nil, notAllowed("tools") }
func (policyHost) CallTool(context.Context, ToolCall) (ToolResult, error) {
	return ToolResult{}, notAllowed("call tool")
}
func (policyHost) Retrieve(context.Context, RetrieveRequest) ([]Chunk, error) {
	return nil, notAllowed("retrieve")
}
func (policyHost) SolveSub(context.Context, NodeID, Task) (SubResult, error) {
	return SubResult{}, notAllowed("solve sub")
}
func (policyHost) Trace(context.Context, string, []NodeID, map[string]any) error {
	return notAllowed("trace")
}
func (policyHost) Budget(context.Context) (BudgetState, error) {
	return BudgetState{}, notAllowed("budget")
}
func (policyHost) ExtractAnswer(context.Context, string) (Answer, error) {
	return Answer{}, notAllowed("extract answer")
}

// hostServer decodes Host calls and dispatches them to the session's Host.
type hostServer struct {
	pb.UnimplementedHostServer
	sessions *hostSessions
}

func (s *hostServer) Complete(ctx context.Context, r *pb.CompleteRequest) (*pb.Completion, error) {
	h, err := s.sessions.get(r.GetSession())
	if err != nil {
		return nil, err
	}
	req, err := completionRequestFromPB(r.GetRequest())
	if err != nil {
		return nil, toStatus(invalid("complete: %v", err))
	}
	c, err := h.Complete(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return completionToPB(c), nil
}

func (s *hostServer) Generate(ctx context.Context, r *pb.GenerateRequest) (*pb.Nodes, error) {
	h, err := s.sessions.get(r.GetSession())
	if err != nil {
		return nil, err
	}
	if r.GetK() < 1 || r.GetK() > 1024 {
		return nil, toStatus(invalid("generate: k must be 1 to 1024, got %d", r.GetK()))
	}
	prompt, err := messagesFromPB(r.GetPrompt())
	if err != nil {
		return nil, toStatus(invalid("generate: %v", err))
	}
	if len(prompt) == 0 {
		prompt = nil
	}
	o := GenerateOptions{Whole: r.GetWhole(), Temperature: r.Temperature, MaxTokens: int(r.GetMaxTokens()), Stop: r.GetStop(),
		Purpose: r.GetPurpose(), Seed: r.Seed, Prompt: prompt}
	nodes, err := h.Generate(ctx, NodeID(r.GetParent()), int(r.GetK()), o)
	out, cerr := nodesToPB(nodes)
	if cerr != nil {
		return nil, toStatus(cerr)
	}
	if err != nil && len(nodes) == 0 {
		return nil, toStatus(err)
	}
	// Nodes added before a failure are returned; the failure shows on
	// the next call.
	return &pb.Nodes{Nodes: out}, nil
}

func (s *hostServer) AddNode(ctx context.Context, r *pb.AddNodeRequest) (*pb.NodeID, error) {
	h, err := s.sessions.get(r.GetSession())
	if err != nil {
		return nil, err
	}
	n, err := nodeFromPB(r.GetNode())
	if err != nil {
		return nil, toStatus(invalid("add node: %v", err))
	}
	id, err := h.AddNode(ctx, idsFrom(r.GetParents()), n)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.NodeID{Id: int32(id)}, nil
}

func (s *hostServer) UpdateNode(ctx context.Context, r *pb.UpdateNodeRequest) (*pb.Node, error) {
	h, err := s.sessions.get(r.GetSession())
	if err != nil {
		return nil, err
	}
	u := NodeUpdate{Scores: r.GetScores(), Value: r.Value, Pruned: r.Pruned}
	if r.Visits != nil {
		v := int(r.GetVisits())
		u.Visits = &v
	}
	if err := decodeJSON("meta", r.GetMetaJson(), &u.Meta); err != nil {
		return nil, toStatus(invalid("update node: %v", err))
	}
	n, err := h.UpdateNode(ctx, NodeID(r.GetId()), u)
	if err != nil {
		return nil, toStatus(err)
	}
	out, err := nodeToPB(n)
	return out, toStatus(err)
}

func (s *hostServer) GetNode(ctx context.Context, r *pb.NodeRef) (*pb.Node, error) {
	h, err := s.sessions.get(r.GetSession())
	if err != nil {
		return nil, err
	}
	n, err := h.Node(ctx, NodeID(r.GetId()))
	if err != nil {
		return nil, toStatus(err)
	}
	out, err := nodeToPB(n)
	return out, toStatus(err)
}

func (s *hostServer) Path(ctx context.Context, r *pb.NodeRef) (*pb.Nodes, error) {
	h, err := s.sessions.get(r.GetSession())
	if err != nil {
		return nil, err
	}
	ns, err := h.Path(ctx, NodeID(r.GetId()))
	if err != nil {
		return nil, toStatus(err)
	}
	out, err := nodesToPB(ns)
	return &pb.Nodes{Nodes: out}, toStatus(err)
}

func (s *hostServer) Children(ctx context.Context, r *pb.NodeRef) (*pb.Nodes, error) {
	h, err := s.sessions.get(r.GetSession())
	if err != nil {
		return nil, err
	}
	ns, err := h.Children(ctx, NodeID(r.GetId()))
	if err != nil {
		return nil, toStatus(err)
	}
	out, err := nodesToPB(ns)
	return &pb.Nodes{Nodes: out}, toStatus(err)
}

func (s *hostServer) Prune(ctx context.Context, r *pb.PruneRequest) (*pb.Empty, error) {
	h, err := s.sessions.get(r.GetSession())
	if err != nil {
		return nil, err
	}
	if err := h.Prune(ctx, idsFrom(r.GetIds())...); err != nil {
		return nil, toStatus(err)
	}
	return &pb.Empty{}, nil
}

func (s *hostServer) Evaluate(ctx context.Context, r *pb.HostEvaluateRequest) (*pb.Evaluation, error) {
	h, err := s.sessions.get(r.GetSession())
	if err != nil {
		return nil, err
	}
	p, err := decodeParams("params", r.GetParamsJson())
	if err != nil {
		return nil, toStatus(invalid("evaluate: %v", err))
	}
	e, err := h.Evaluate(ctx, r.GetEvaluator(), p, NodeID(r.GetNode()))
	if err != nil {
		return nil, toStatus(err)
	}
	return evaluationToPB(e), nil
}

func (s *hostServer) Tools(ctx context.Context, r *pb.SessionRequest) (*pb.ToolSpecs, error) {
	h, err := s.sessions.get(r.GetSession())
	if err != nil {
		return nil, err
	}
	specs, err := h.Tools(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &pb.ToolSpecs{}
	for _, t := range specs {
		out.Tools = append(out.Tools, toolSpecToPB(t))
	}
	return out, nil
}

func (s *hostServer) CallTool(ctx context.Context, r *pb.HostCallToolRequest) (*pb.ToolResult, error) {
	h, err := s.sessions.get(r.GetSession())
	if err != nil {
		return nil, err
	}
	calls, err := toolCallsFromPB([]*pb.ToolCall{r.GetCall()})
	if err != nil || len(calls) != 1 {
		return nil, toStatus(invalid("call tool: %v", err))
	}
	res, err := h.CallTool(ctx, calls[0])
	if err != nil {
		return nil, toStatus(err)
	}
	out, err := toolResultToPB(res)
	return out, toStatus(err)
}

func (s *hostServer) Retrieve(ctx context.Context, r *pb.RetrieveRequest) (*pb.Chunks, error) {
	h, err := s.sessions.get(r.GetSession())
	if err != nil {
		return nil, err
	}
	chunks, err := h.Retrieve(ctx, RetrieveRequest{Query: r.GetQuery(), Collection: r.GetCollection(), K: int(r.GetK()), Filter: r.GetFilter()})
	if err != nil {
		return nil, toStatus(err)
	}
	out := &pb.Chunks{}
	for _, c := range chunks {
		out.Chunks = append(out.Chunks, &pb.Chunk{Id: c.ID, Text: c.Text, Source: c.Source, Title: c.Title, Score: c.Score, Meta: c.Meta})
	}
	return out, nil
}

func (s *hostServer) SolveSub(ctx context.Context, r *pb.SolveSubRequest) (*pb.SubResult, error) {
	h, err := s.sessions.get(r.GetSession())
	if err != nil {
		return nil, err
	}
	task, err := taskFromPB(r.GetTask())
	if err != nil {
		return nil, toStatus(invalid("solve sub: %v", err))
	}
	res, err := h.SolveSub(ctx, NodeID(r.GetNode()), task)
	if err != nil {
		return nil, toStatus(err)
	}
	path, err := nodesToPB(res.BestPath)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.SubResult{Answer: res.Answer, Strategy: res.Strategy, Score: res.Score, Usage: usageToPB(res.Usage),
		Stopped: res.Stopped, Error: res.Error, BestPath: path}, nil
}

func (s *hostServer) Trace(ctx context.Context, r *pb.TraceRequest) (*pb.Empty, error) {
	h, err := s.sessions.get(r.GetSession())
	if err != nil {
		return nil, err
	}
	var data map[string]any
	if err := decodeJSON("data", r.GetDataJson(), &data); err != nil {
		return nil, toStatus(invalid("trace: %v", err))
	}
	if err := h.Trace(ctx, r.GetOp(), idsFrom(r.GetNodes()), data); err != nil {
		return nil, toStatus(err)
	}
	return &pb.Empty{}, nil
}

func (s *hostServer) Budget(ctx context.Context, r *pb.SessionRequest) (*pb.BudgetState, error) {
	h, err := s.sessions.get(r.GetSession())
	if err != nil {
		return nil, err
	}
	b, err := h.Budget(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.BudgetState{Used: usageToPB(b.Used), Limits: limitsToPB(b.Limits), RemainingCalls: b.RemainingCalls}, nil
}

func (s *hostServer) ExtractAnswer(ctx context.Context, r *pb.AnswerRequest) (*pb.AnswerResponse, error) {
	h, err := s.sessions.get(r.GetSession())
	if err != nil {
		return nil, err
	}
	a, err := h.ExtractAnswer(ctx, r.GetText())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.AnswerResponse{Answer: a.Text, Found: a.Found, Normalized: a.Normalized}, nil
}

// hostClient is the plugin's side of Host: every method is one gRPC call
// to the host.
type hostClient struct {
	c       pb.HostClient
	session uint64
}

var _ Host = (*hostClient)(nil)

func (h *hostClient) Complete(ctx context.Context, req CompletionRequest) (Completion, error) {
	r, err := h.c.Complete(ctx, &pb.CompleteRequest{Session: h.session, Request: completionRequestToPB(req)})
	if err != nil {
		return Completion{}, fromStatus(ctx, "host complete", err)
	}
	c, err := completionFromPB(r)
	if err != nil {
		return Completion{}, fmt.Errorf("host complete: %w", err)
	}
	return c, nil
}

func (h *hostClient) Generate(ctx context.Context, parent NodeID, k int, o GenerateOptions) ([]Node, error) {
	r, err := h.c.Generate(ctx, &pb.GenerateRequest{Session: h.session, Parent: int32(parent), K: int32(k), Whole: o.Whole,
		Temperature: o.Temperature, MaxTokens: int32(o.MaxTokens), Stop: o.Stop, Purpose: o.Purpose, Seed: o.Seed,
		Prompt: messagesToPB(o.Prompt)})
	if err != nil {
		return nil, fromStatus(ctx, "host generate", err)
	}
	return nodesFromPB(r.GetNodes())
}

func (h *hostClient) AddNode(ctx context.Context, parents []NodeID, n Node) (NodeID, error) {
	pn, err := nodeToPB(n)
	if err != nil {
		return 0, err
	}
	r, err := h.c.AddNode(ctx, &pb.AddNodeRequest{Session: h.session, Parents: ids32(parents), Node: pn})
	if err != nil {
		return 0, fromStatus(ctx, "host add node", err)
	}
	return NodeID(r.GetId()), nil
}

func (h *hostClient) UpdateNode(ctx context.Context, id NodeID, u NodeUpdate) (Node, error) {
	meta, err := jsonText(jsonSafeMap(u.Meta))
	if err != nil {
		return Node{}, fmt.Errorf("host update node: meta: %w", err)
	}
	in := &pb.UpdateNodeRequest{Session: h.session, Id: int32(id), Scores: finiteScores(u.Scores), Value: u.Value, Pruned: u.Pruned, MetaJson: meta}
	if u.Visits != nil {
		v := int32(*u.Visits)
		in.Visits = &v
	}
	r, err := h.c.UpdateNode(ctx, in)
	if err != nil {
		return Node{}, fromStatus(ctx, "host update node", err)
	}
	return nodeFromPB(r)
}

func (h *hostClient) Node(ctx context.Context, id NodeID) (Node, error) {
	r, err := h.c.GetNode(ctx, &pb.NodeRef{Session: h.session, Id: int32(id)})
	if err != nil {
		return Node{}, fromStatus(ctx, "host node", err)
	}
	return nodeFromPB(r)
}

func (h *hostClient) Path(ctx context.Context, id NodeID) ([]Node, error) {
	r, err := h.c.Path(ctx, &pb.NodeRef{Session: h.session, Id: int32(id)})
	if err != nil {
		return nil, fromStatus(ctx, "host path", err)
	}
	return nodesFromPB(r.GetNodes())
}

func (h *hostClient) Children(ctx context.Context, id NodeID) ([]Node, error) {
	r, err := h.c.Children(ctx, &pb.NodeRef{Session: h.session, Id: int32(id)})
	if err != nil {
		return nil, fromStatus(ctx, "host children", err)
	}
	return nodesFromPB(r.GetNodes())
}

func (h *hostClient) Prune(ctx context.Context, ids ...NodeID) error {
	_, err := h.c.Prune(ctx, &pb.PruneRequest{Session: h.session, Ids: ids32(ids)})
	return fromStatus(ctx, "host prune", err)
}

func (h *hostClient) Evaluate(ctx context.Context, evaluator string, params Params, id NodeID) (Evaluation, error) {
	p, err := paramsJSON(params)
	if err != nil {
		return Evaluation{}, fmt.Errorf("host evaluate: params: %w", err)
	}
	r, err := h.c.Evaluate(ctx, &pb.HostEvaluateRequest{Session: h.session, Evaluator: evaluator, ParamsJson: p, Node: int32(id)})
	if err != nil {
		return Evaluation{}, fromStatus(ctx, "host evaluate", err)
	}
	return evaluationFromPB(r)
}

func (h *hostClient) Tools(ctx context.Context) ([]ToolSpec, error) {
	r, err := h.c.Tools(ctx, &pb.SessionRequest{Session: h.session})
	if err != nil {
		return nil, fromStatus(ctx, "host tools", err)
	}
	var out []ToolSpec
	for _, t := range r.GetTools() {
		s, err := toolSpecFromPB(t)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (h *hostClient) CallTool(ctx context.Context, call ToolCall) (ToolResult, error) {
	r, err := h.c.CallTool(ctx, &pb.HostCallToolRequest{Session: h.session, Call: toolCallsToPB([]ToolCall{call})[0]})
	if err != nil {
		return ToolResult{}, fromStatus(ctx, "host call tool", err)
	}
	return toolResultFromPB(r)
}

func (h *hostClient) Retrieve(ctx context.Context, req RetrieveRequest) ([]Chunk, error) {
	r, err := h.c.Retrieve(ctx, &pb.RetrieveRequest{Session: h.session, Query: req.Query, Collection: req.Collection, K: int32(req.K), Filter: req.Filter})
	if err != nil {
		return nil, fromStatus(ctx, "host retrieve", err)
	}
	var out []Chunk
	for _, c := range r.GetChunks() {
		out = append(out, Chunk{ID: c.GetId(), Text: c.GetText(), Source: c.GetSource(), Title: c.GetTitle(), Score: c.GetScore(), Meta: c.GetMeta()})
	}
	return out, nil
}

func (h *hostClient) SolveSub(ctx context.Context, node NodeID, task Task) (SubResult, error) {
	t, err := taskToPB(task)
	if err != nil {
		return SubResult{}, err
	}
	r, err := h.c.SolveSub(ctx, &pb.SolveSubRequest{Session: h.session, Node: int32(node), Task: t})
	if err != nil {
		return SubResult{}, fromStatus(ctx, "host solve sub", err)
	}
	path, err := nodesFromPB(r.GetBestPath())
	if err != nil {
		return SubResult{}, err
	}
	return SubResult{Answer: r.GetAnswer(), Strategy: r.GetStrategy(), Score: r.Score, Usage: usageFromPB(r.GetUsage()),
		Stopped: r.GetStopped(), Error: r.GetError(), BestPath: path}, nil
}

func (h *hostClient) Trace(ctx context.Context, op string, nodes []NodeID, data map[string]any) error {
	d, err := jsonText(jsonSafeMap(data))
	if err != nil {
		return fmt.Errorf("host trace: data: %w", err)
	}
	_, err = h.c.Trace(ctx, &pb.TraceRequest{Session: h.session, Op: op, Nodes: ids32(nodes), DataJson: d})
	return fromStatus(ctx, "host trace", err)
}

func (h *hostClient) Budget(ctx context.Context) (BudgetState, error) {
	r, err := h.c.Budget(ctx, &pb.SessionRequest{Session: h.session})
	if err != nil {
		return BudgetState{}, fromStatus(ctx, "host budget", err)
	}
	return BudgetState{Used: usageFromPB(r.GetUsed()), Limits: limitsFromPB(r.GetLimits()), RemainingCalls: r.GetRemainingCalls()}, nil
}

func (h *hostClient) ExtractAnswer(ctx context.Context, text string) (Answer, error) {
	r, err := h.c.ExtractAnswer(ctx, &pb.AnswerRequest{Session: h.session, Text: text})
	if err != nil {
		return Answer{}, fromStatus(ctx, "host extract answer", err)
	}
	return Answer{Found: r.GetFound(), Text: r.GetAnswer(), Normalized: r.GetNormalized()}, nil
}

var _ = core.ErrUnknown
