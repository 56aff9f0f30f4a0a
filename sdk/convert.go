package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/text"
	"github.com/ponder-rlm/ponder/sdk/internal/pb"
)

// Conversions between the wire messages and Go types. Decoding never
// trusts the peer: JSON fields are checked, sizes bounded by gRPC's message
// limit, missing messages read as zero values.

func jsonText(v any) (string, error) {
	if v == nil {
		return "", nil
	}
	if r, ok := v.(json.RawMessage); ok {
		if len(r) == 0 {
			return "", nil
		}
		if !json.Valid(r) {
			return "", fmt.Errorf("invalid JSON")
		}
		return string(r), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func decodeJSON(field, s string, v any) error {
	if s == "" {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader([]byte(s)))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%s: malformed JSON: %v", field, err)
	}
	return nil
}

func rawJSON(field, s string) (json.RawMessage, error) {
	if s == "" {
		return nil, nil
	}
	if !json.Valid([]byte(s)) {
		return nil, fmt.Errorf("%s: malformed JSON", field)
	}
	return json.RawMessage(s), nil
}

// paramsJSON encodes resolved parameters; durations travel as strings so
// Resolve on the other side reads them back.
func paramsJSON(p Params) (string, error) {
	if len(p) == 0 {
		return "", nil
	}
	out := make(map[string]any, len(p))
	for k, v := range p {
		if d, ok := v.(time.Duration); ok {
			out[k] = d.String()
			continue
		}
		out[k] = v
	}
	return jsonText(out)
}

func decodeParams(field, s string) (Params, error) {
	p := Params{}
	if err := decodeJSON(field, s, &p); err != nil {
		return nil, err
	}
	return p, nil
}

func ids32(ids []NodeID) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}

func idsFrom(ids []int32) []NodeID {
	if len(ids) == 0 {
		return nil
	}
	out := make([]NodeID, len(ids))
	for i, id := range ids {
		out[i] = NodeID(id)
	}
	return out
}

func toolSpecToPB(s ToolSpec) *pb.ToolSpec {
	return &pb.ToolSpec{Name: s.Name, Description: s.Description, SchemaJson: string(s.Schema)}
}

func toolSpecFromPB(s *pb.ToolSpec) (ToolSpec, error) {
	schema, err := rawJSON("tool schema", s.GetSchemaJson())
	if err != nil {
		return ToolSpec{}, err
	}
	return ToolSpec{Name: s.GetName(), Description: s.GetDescription(), Schema: schema}, nil
}

func toolCallsToPB(cs []ToolCall) []*pb.ToolCall {
	var out []*pb.ToolCall
	for _, c := range cs {
		out = append(out, &pb.ToolCall{Id: c.ID, Name: c.Name, ArgumentsJson: string(c.Arguments)})
	}
	return out
}

func toolCallsFromPB(cs []*pb.ToolCall) ([]ToolCall, error) {
	var out []ToolCall
	for _, c := range cs {
		args, err := rawJSON("tool call arguments", c.GetArgumentsJson())
		if err != nil {
			return nil, err
		}
		out = append(out, ToolCall{ID: c.GetId(), Name: c.GetName(), Arguments: args})
	}
	return out, nil
}

// validText replaces byte sequences that are not UTF-8 (a tool that read a
// binary file) with U+FFFD: protobuf refuses such strings, and the whole
// reply would be lost for a few bad bytes.
func validText(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

func toolResultToPB(r ToolResult) (*pb.ToolResult, error) {
	s, err := jsonText(r.Structured)
	if err != nil {
		return nil, fmt.Errorf("tool result structured: %w", err)
	}
	return &pb.ToolResult{Text: validText(r.Text), StructuredJson: s, IsError: r.IsError}, nil
}

func toolResultFromPB(r *pb.ToolResult) (ToolResult, error) {
	out := ToolResult{Text: r.GetText(), IsError: r.GetIsError()}
	if s := r.GetStructuredJson(); s != "" {
		raw, err := rawJSON("tool result structured", s)
		if err != nil {
			return ToolResult{}, err
		}
		out.Structured = raw
	}
	return out, nil
}

func messagesToPB(ms []Message) []*pb.Message {
	out := make([]*pb.Message, 0, len(ms))
	for _, m := range ms {
		out = append(out, &pb.Message{Role: m.Role, Content: m.Content, ToolCallId: m.ToolCallID, ToolCalls: toolCallsToPB(m.ToolCalls)})
	}
	return out
}

func messagesFromPB(ms []*pb.Message) ([]Message, error) {
	out := make([]Message, 0, len(ms))
	for _, m := range ms {
		calls, err := toolCallsFromPB(m.GetToolCalls())
		if err != nil {
			return nil, err
		}
		out = append(out, Message{Role: m.GetRole(), Content: m.GetContent(), ToolCallID: m.GetToolCallId(), ToolCalls: calls})
	}
	return out, nil
}

func completionRequestToPB(r CompletionRequest) *pb.CompletionRequest {
	out := &pb.CompletionRequest{
		Messages: messagesToPB(r.Messages), Model: r.Model, N: int32(r.N), Temperature: r.Temperature,
		MaxTokens: int32(r.MaxTokens), Stop: r.Stop, Seed: r.Seed, Logprobs: r.Logprobs, Purpose: r.Purpose,
	}
	for _, t := range r.Tools {
		out.Tools = append(out.Tools, toolSpecToPB(t))
	}
	return out
}

func completionRequestFromPB(r *pb.CompletionRequest) (CompletionRequest, error) {
	if r == nil {
		r = &pb.CompletionRequest{}
	}
	msgs, err := messagesFromPB(r.GetMessages())
	if err != nil {
		return CompletionRequest{}, err
	}
	if r.GetN() < 0 || r.GetN() > 1024 {
		return CompletionRequest{}, fmt.Errorf("n must be 1 to 1024, got %d", r.GetN())
	}
	out := CompletionRequest{
		Messages: msgs, Model: r.GetModel(), N: int(r.GetN()), Temperature: r.Temperature,
		MaxTokens: int(r.GetMaxTokens()), Stop: r.GetStop(), Seed: r.Seed, Logprobs: r.GetLogprobs(), Purpose: r.GetPurpose(),
	}
	for _, t := range r.GetTools() {
		s, err := toolSpecFromPB(t)
		if err != nil {
			return CompletionRequest{}, err
		}
		out.Tools = append(out.Tools, s)
	}
	return out, nil
}

func completionToPB(c Completion) *pb.Completion {
	out := &pb.Completion{PromptTokens: c.PromptTokens, CompletionTokens: c.CompletionTokens, Model: c.Model}
	for _, ch := range c.Choices {
		out.Choices = append(out.Choices, &pb.Choice{Text: ch.Text, FinishReason: ch.FinishReason, Logprob: ch.Logprob, ToolCalls: toolCallsToPB(ch.ToolCalls)})
	}
	return out
}

func completionFromPB(c *pb.Completion) (Completion, error) {
	if c == nil {
		c = &pb.Completion{}
	}
	out := Completion{PromptTokens: c.GetPromptTokens(), CompletionTokens: c.GetCompletionTokens(), Model: c.GetModel()}
	for _, ch := range c.GetChoices() {
		calls, err := toolCallsFromPB(ch.GetToolCalls())
		if err != nil {
			return Completion{}, err
		}
		out.Choices = append(out.Choices, Choice{Text: ch.GetText(), FinishReason: ch.GetFinishReason(), Logprob: ch.Logprob, ToolCalls: calls})
	}
	return out, nil
}

func usageToPB(u Usage) *pb.Usage {
	return &pb.Usage{LlmCalls: u.LLMCalls, Requests: u.Requests, PromptTokens: u.PromptTokens,
		CompletionTokens: u.CompletionTokens, ToolCalls: u.ToolCalls, Nodes: u.Nodes, WallMs: u.WallMS}
}

func usageFromPB(u *pb.Usage) Usage {
	return Usage{LLMCalls: u.GetLlmCalls(), Requests: u.GetRequests(), PromptTokens: u.GetPromptTokens(),
		CompletionTokens: u.GetCompletionTokens(), ToolCalls: u.GetToolCalls(), Nodes: u.GetNodes(), WallMS: u.GetWallMs()}
}

func limitsToPB(l Limits) *pb.Limits {
	return &pb.Limits{LlmCalls: l.LLMCalls, Tokens: l.Tokens, PromptTokens: l.PromptTokens, CompletionTokens: l.OutputTokens,
		ToolCalls: l.ToolCalls, WallTimeMs: l.WallTime.Milliseconds(), Nodes: l.Nodes, Depth: int32(l.Depth)}
}

func limitsFromPB(l *pb.Limits) Limits {
	return Limits{LLMCalls: l.GetLlmCalls(), Tokens: l.GetTokens(), PromptTokens: l.GetPromptTokens(), OutputTokens: l.GetCompletionTokens(),
		ToolCalls: l.GetToolCalls(), WallTime: time.Duration(l.GetWallTimeMs()) * time.Millisecond, Nodes: l.GetNodes(), Depth: int(l.GetDepth())}
}

func taskToPB(t Task) (*pb.Task, error) {
	p, err := paramsJSON(t.Params)
	if err != nil {
		return nil, fmt.Errorf("task params: %w", err)
	}
	return &pb.Task{Problem: t.Problem, Pack: t.Pack, Truth: t.Truth, Strategy: t.Strategy, ParamsJson: p,
		Limits: limitsToPB(t.Limits), Tools: t.Tools, Collection: t.Collection, Model: t.Model, Seed: t.Seed}, nil
}

func taskFromPB(t *pb.Task) (Task, error) {
	p, err := decodeParams("task params", t.GetParamsJson())
	if err != nil {
		return Task{}, err
	}
	if len(p) == 0 {
		p = nil
	}
	return Task{Problem: t.GetProblem(), Pack: t.GetPack(), Truth: t.GetTruth(), Strategy: t.GetStrategy(), Params: p,
		Limits: limitsFromPB(t.GetLimits()), Tools: t.GetTools(), Collection: t.GetCollection(), Model: t.GetModel(), Seed: t.GetSeed()}, nil
}

func nodeToPB(n Node) (*pb.Node, error) {
	meta, err := jsonText(jsonSafeMap(n.Meta))
	if err != nil {
		return nil, fmt.Errorf("node %d meta: %w", n.ID, err)
	}
	if len(n.Meta) == 0 {
		meta = ""
	}
	return &pb.Node{Id: int32(n.ID), Parents: ids32(n.Parents), Children: ids32(n.Children), Kind: string(n.Kind),
		Content: validText(n.Content), Answer: validText(n.Answer), Terminal: n.Terminal, Depth: int32(n.Depth), Scores: finiteScores(n.Scores),
		Value: finiteOr0(n.Value), Visits: int32(n.Visits), Pruned: n.Pruned, Usage: usageToPB(n.Usage), MetaJson: meta}, nil
}

func nodeFromPB(n *pb.Node) (Node, error) {
	out := Node{ID: NodeID(n.GetId()), Parents: idsFrom(n.GetParents()), Children: idsFrom(n.GetChildren()), Kind: NodeKind(n.GetKind()),
		Content: n.GetContent(), Answer: n.GetAnswer(), Terminal: n.GetTerminal(), Depth: int(n.GetDepth()), Value: n.GetValue(),
		Visits: int(n.GetVisits()), Pruned: n.GetPruned(), Usage: usageFromPB(n.GetUsage())}
	if len(n.GetScores()) > 0 {
		out.Scores = make(map[string]float64, len(n.GetScores()))
		for k, v := range n.GetScores() {
			out.Scores[k] = v
		}
	}
	if s := n.GetMetaJson(); s != "" {
		if err := decodeJSON("node meta", s, &out.Meta); err != nil {
			return Node{}, err
		}
	}
	return out, nil
}

func nodesToPB(ns []Node) ([]*pb.Node, error) {
	out := make([]*pb.Node, 0, len(ns))
	for _, n := range ns {
		p, err := nodeToPB(n)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func nodesFromPB(ns []*pb.Node) ([]Node, error) {
	out := make([]Node, 0, len(ns))
	for _, n := range ns {
		c, err := nodeFromPB(n)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func evaluationToPB(e Evaluation) *pb.Evaluation {
	return &pb.Evaluation{Score: e.Score, Kind: e.Kind, Correct: e.Correct, Detail: validText(e.Detail)}
}

func evaluationFromPB(e *pb.Evaluation) (Evaluation, error) {
	if e == nil {
		return Evaluation{}, fmt.Errorf("no evaluation in the reply")
	}
	s := e.GetScore()
	if math.IsNaN(s) || s < -1 || s > 1 {
		return Evaluation{}, fmt.Errorf("score %v is outside [-1, 1]", s)
	}
	// The kind is the score's key on the node: strategies look for value,
	// prm, orm and verifier, so "Verifier" would be kept and never read.
	if k := e.GetKind(); k != "" && (len(k) > 64 || ValidName(k) != nil) {
		return Evaluation{}, fmt.Errorf("evaluation kind %q: want a lower-case score name (value, prm, orm, verifier)", clipKind(k))
	}
	return Evaluation{Score: s, Kind: e.GetKind(), Correct: e.Correct, Detail: text.Clip(e.GetDetail(), maxDetailRunes)}, nil
}

// maxDetailRunes bounds an evaluator plugin's Evaluation.Detail as the host
// keeps it: the detail is stored on the node and in the evaluate event, so
// a detail of megabytes made a trace of twice that for every evaluation.
const maxDetailRunes = 16 << 10

// clipKind shortens a kind for an error message.
func clipKind(k string) string {
	if len(k) <= 64 {
		return k
	}
	return strings.ToValidUTF8(k[:64], "") + "…"
}

func paramSpecsToPB(ps []ParamSpec) ([]*pb.ParamSpec, error) {
	var out []*pb.ParamSpec
	for _, p := range ps {
		def, err := jsonText(jsonSafe(p.Default))
		if err != nil {
			return nil, fmt.Errorf("param %s default: %w", p.Name, err)
		}
		out = append(out, &pb.ParamSpec{Name: p.Name, Type: string(p.Type), DefaultJson: def, Description: p.Description,
			Min: p.Min, Max: p.Max, Enum: p.Enum})
	}
	return out, nil
}

func paramSpecsFromPB(ps []*pb.ParamSpec) ([]ParamSpec, error) {
	var out []ParamSpec
	for _, p := range ps {
		s := ParamSpec{Name: p.GetName(), Type: core.ParamType(p.GetType()), Description: p.GetDescription(), Min: p.Min, Max: p.Max, Enum: p.GetEnum()}
		switch s.Type {
		case core.ParamInt, core.ParamFloat, core.ParamBool, core.ParamString, core.ParamDuration, core.ParamJSON:
		default:
			return nil, fmt.Errorf("param %q has unknown type %q", s.Name, s.Type)
		}
		if d := p.GetDefaultJson(); d != "" {
			var v any
			if err := decodeJSON("param "+s.Name+" default", d, &v); err != nil {
				return nil, err
			}
			// Defaults are stored in their resolved Go type, as built-in
			// specs do (int64 for ints), so listings print them alike.
			rv, err := core.Resolve([]ParamSpec{{Name: s.Name, Type: s.Type, Enum: s.Enum}}, Params{s.Name: v})
			if err != nil {
				return nil, fmt.Errorf("param %q default: %w", s.Name, err)
			}
			s.Default = rv[s.Name]
			if dd, ok := s.Default.(time.Duration); ok {
				s.Default = dd.String()
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func jsonSafe(v any) any {
	if d, ok := v.(time.Duration); ok {
		return d.String()
	}
	return v
}

func jsonSafeMap(m map[string]any) map[string]any {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch x := v.(type) {
		case float64:
			out[k] = finiteOr0(x)
		default:
			out[k] = jsonSafe(v)
		}
	}
	return out
}

func finiteOr0(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

func finiteScores(m map[string]float64) map[string]float64 {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = finiteOr0(v)
	}
	return out
}

// Description is what a plugin says about itself (host side).
type Description struct {
	Name            string      `json:"name"`
	Kind            Kind        `json:"kind"`
	Version         string      `json:"version"`
	ProtocolVersion int         `json:"protocol_version"`
	Summary         string      `json:"summary"`
	Params          []ParamSpec `json:"params,omitempty"`
	Tool            *ToolSpec   `json:"tool,omitempty"`
	Shape           string      `json:"shape,omitempty"`
}

func describe(p Plugin) (*pb.Description, error) {
	params, err := paramSpecsToPB(p.Params)
	if err != nil {
		return nil, err
	}
	d := &pb.Description{Name: p.Name, Kind: string(p.Kind()), Version: p.Version, ProtocolVersion: ProtocolVersion,
		Summary: p.Summary, Params: params, Shape: p.Shape}
	if p.Tool != nil {
		s := p.Tool.Spec()
		d.Tool = toolSpecToPB(s)
		if d.Name == "" {
			d.Name = s.Name
		}
		if d.Summary == "" {
			d.Summary = s.Description
		}
	}
	if p.Strategy != nil && d.Shape == "" {
		d.Shape = "tree"
	}
	return d, nil
}

func descriptionFromPB(d *pb.Description) (Description, error) {
	params, err := paramSpecsFromPB(d.GetParams())
	if err != nil {
		return Description{}, err
	}
	out := Description{Name: d.GetName(), Kind: Kind(d.GetKind()), Version: d.GetVersion(), ProtocolVersion: int(d.GetProtocolVersion()),
		Summary: d.GetSummary(), Params: params, Shape: d.GetShape()}
	if d.GetTool() != nil {
		s, err := toolSpecFromPB(d.GetTool())
		if err != nil {
			return Description{}, err
		}
		out.Tool = &s
	}
	if err := ValidName(out.Name); err != nil {
		return Description{}, fmt.Errorf("plugin describes itself with an invalid %w", err)
	}
	return out, nil
}
