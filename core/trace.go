package core

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// TraceSchema names the version of the trace document (docs/trace.schema.json).
const TraceSchema = "ponder.trace/v1"

// Operation names recorded in trace events.
const (
	OpNode        = "node"      // a node was added (Event.Node holds it)
	OpUpdate      = "update"    // a node changed (Event.Node holds its new state)
	OpStats       = "stats"     // nodes' search statistics changed (Event.Stats holds their Value and Visits)
	OpGenerate    = "generate"  // operators of the blueprint
	OpRefine      = "refine"    //
	OpAggregate   = "aggregate" //
	OpPrune       = "prune"     //
	OpRestructure = "restructure"
	OpSelect      = "select"
	OpBacktrack   = "backtrack"
	OpEvaluate    = "evaluate"
	OpLLMCall     = "llm_call"  // one request to the policy
	OpToolCall    = "tool_call" // one tool call
	OpRetrieve    = "retrieve"  // one retrieval
	OpSubSearch   = "sub_search"
	OpStart       = "start"
	OpEnd         = "end"
	OpInfo        = "info" // free-form strategy notes (iteration counters, ...)
)

// Event is one entry of a trace. Scope is the path of node ids that own the
// nested structure the event happened in (empty for the top structure).
type Event struct {
	Seq    int64       `json:"seq"`
	TimeMS float64     `json:"t_ms"`
	Op     string      `json:"op"`
	Scope  []NodeID    `json:"scope,omitempty"`
	Nodes  []NodeID    `json:"nodes,omitempty"`
	Node   *Node       `json:"node,omitempty"`
	Stats  []NodeStats `json:"stats,omitempty"`
	// Data is a map[string]any (what Record was given, and every event's
	// data read back from JSON), or the typed data of an llm_call,
	// evaluate, generate or MCTS select event recorded by this process
	// (LLMCallData, LLMCallFailure, EvaluationData, EvaluationFailure,
	// GenerateData, SelectData), which writes the same JSON: a search
	// records one of those per LLM call, and a map for each was a good part
	// of its own cost. Read it with Get.
	Data any `json:"data,omitempty"`
}

// Get returns the value of key in the event's data, whatever its form;
// nil when it has none.
func (e Event) Get(key string) any {
	switch d := e.Data.(type) {
	case map[string]any:
		return d[key]
	case interface{ get(string) any }:
		return d.get(key)
	}
	return nil
}

// LLMCallData is the data of an llm_call event whose request succeeded.
type LLMCallData struct {
	Purpose          string  `json:"purpose"`
	N                int     `json:"n"`
	MS               float64 `json:"ms"`
	PromptTokens     int64   `json:"prompt_tokens"`
	CompletionTokens int64   `json:"completion_tokens"`
	Model            string  `json:"model,omitempty"`
	// TokensEstimated marks token counts the policy estimated because
	// the endpoint reported none (Completion.TokensEstimated).
	TokensEstimated bool `json:"tokens_estimated,omitempty"`
	// Messages and Responses are recorded when prompts are
	// (EngineOptions.RecordPrompts).
	Messages  []Message `json:"messages,omitempty"`
	Responses []string  `json:"responses,omitempty"`
}

func (d *LLMCallData) get(key string) any {
	switch key {
	case "prompt_tokens":
		return d.PromptTokens
	case "completion_tokens":
		return d.CompletionTokens
	case "model":
		return nonEmpty(d.Model)
	case "tokens_estimated":
		if d.TokensEstimated {
			return true
		}
	case "messages":
		if d.Messages != nil {
			return d.Messages
		}
	case "responses":
		if d.Responses != nil {
			return d.Responses
		}
	default:
		return callField(key, d.Purpose, d.N, d.MS)
	}
	return nil
}

// callField reads the fields of every llm_call event's data.
func callField(key, purpose string, n int, ms float64) any {
	switch key {
	case "purpose":
		return purpose
	case "n":
		return n
	case "ms":
		return ms
	}
	return nil
}

// LLMCallFailure is the data of an llm_call event whose request failed.
type LLMCallFailure struct {
	Purpose string  `json:"purpose"`
	N       int     `json:"n"`
	MS      float64 `json:"ms"`
	Error   string  `json:"error"`
	// Cancelled is set when the search gave the request up (the run was
	// cancelled or ran out of time, or a search no longer needed the
	// reply): a failure of the run's, not of the LLM, which readers such
	// as the eval harness must tell apart without parsing Error.
	Cancelled bool `json:"cancelled,omitempty"`
	// PromptTokens and CompletionTokens are what the endpoint billed for
	// the failed request (a reply cut off while the model reasoned), which
	// the run's usage counts: without them here a trace's events, and a
	// live run's usage counted from them, fall short of it.
	PromptTokens     int64 `json:"prompt_tokens,omitempty"`
	CompletionTokens int64 `json:"completion_tokens,omitempty"`
}

func (d *LLMCallFailure) get(key string) any {
	switch key {
	case "error":
		return d.Error
	case "prompt_tokens":
		return nonZero(d.PromptTokens) // as the JSON form, which omits 0
	case "completion_tokens":
		return nonZero(d.CompletionTokens)
	case "cancelled":
		if !d.Cancelled {
			return nil // as the JSON form, which omits it
		}
		return true
	}
	return callField(key, d.Purpose, d.N, d.MS)
}

// EvaluationData is the data of an evaluate event that scored its node:
// the node's new score under Kind (and Detail in its Meta "eval_detail"),
// which no update event repeats.
type EvaluationData struct {
	Kind    string  `json:"kind"`
	Score   float64 `json:"score"`
	Detail  string  `json:"detail,omitempty"`
	Correct *bool   `json:"correct,omitempty"` // a verifier's verdict
	// LLMCalls are the seqs of the llm_call events the evaluator made.
	LLMCalls []int64 `json:"llm_calls,omitempty"`
}

func (d *EvaluationData) get(key string) any {
	switch key {
	case "kind":
		return d.Kind
	case "score":
		return d.Score
	case "detail":
		return nonEmpty(d.Detail)
	case "correct":
		if d.Correct != nil {
			return *d.Correct
		}
	case "llm_calls":
		return seqsField(d.LLMCalls)
	}
	return nil
}

// seqsField is an evaluate event's "llm_calls": absent when empty.
func seqsField(seqs []int64) any {
	if len(seqs) == 0 {
		return nil
	}
	return seqs
}

// EvaluationFailure is the data of an evaluate event that left its node
// unscored.
type EvaluationFailure struct {
	Error    string  `json:"error"`
	LLMCalls []int64 `json:"llm_calls,omitempty"`
}

func (d *EvaluationFailure) get(key string) any {
	switch key {
	case "error":
		return d.Error
	case "llm_calls":
		return seqsField(d.LLMCalls)
	}
	return nil
}

// GenerateData is the data of a generate event: how many children were
// asked for.
type GenerateData struct {
	K int `json:"k"`
}

func (d *GenerateData) get(key string) any {
	if key == "k" {
		return d.K
	}
	return nil
}

// SelectData is the data of a select event of MCTS: the iteration that
// selected the node, the node's depth and, when more than one expansion of
// it is in flight, how many. Its fields are in the order a map's keys are
// written, so the JSON is the same as a map's.
type SelectData struct {
	Depth     int `json:"depth"`
	InFlight  int `json:"in_flight,omitempty"`
	Iteration int `json:"iteration"`
}

func (d *SelectData) get(key string) any {
	switch key {
	case "depth":
		return d.Depth
	case "in_flight":
		if d.InFlight == 0 {
			return nil
		}
		return d.InFlight
	case "iteration":
		return d.Iteration
	}
	return nil
}

// nonEmpty is s, or nil when s is empty (an omitted JSON field).
func nonZero(n int64) any {
	if n == 0 {
		return nil
	}
	return n
}

func nonEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// NodeStats is a node's search statistics (MCTS's Q and N), recorded by
// stats events: a search updates them for a whole path at every
// backpropagation, and a full node state per change would make them most of
// the trace.
type NodeStats struct {
	ID     NodeID  `json:"id"`
	Value  float64 `json:"value"`
	Visits int     `json:"visits"`
}

// Tracer records the events of one run. Sub-tracers (Scope) share the log.
// Readers poll with Since and wait on Changed, so a slow reader (a browser
// on server-sent events) never blocks the search.
type Tracer struct {
	log   *eventLog
	scope []NodeID
	start time.Time
}

type eventLog struct {
	mu sync.Mutex
	// events are kept in chunks that are never copied as the log grows
	// (a search records tens of thousands); each chunk is as big as all
	// before it, up to maxChunk events.
	chunks  [][]Event
	n       int
	nodes   int // node events of the top structure
	changed chan struct{}
	waited  bool // changed was handed out since the last event
	closed  bool
	prompts bool
	// usage is the run's usage so far (its budget's), set by the engine
	// before the run starts; nil for a tracer made elsewhere.
	usage func() Usage
}

// NewTracer returns a tracer. recordPrompts keeps full prompts and responses
// of LLM calls in the trace (the trace is the user's own data, not a log).
func NewTracer(recordPrompts bool) *Tracer {
	return &Tracer{log: &eventLog{changed: make(chan struct{}), prompts: recordPrompts}, start: time.Now()}
}

// Usage returns the run's usage so far, as its budget counts it (calls in
// flight included), and false for a tracer no engine run owns: a list of
// live runs reads it without copying their events.
func (t *Tracer) Usage() (Usage, bool) {
	if t == nil || t.log.usage == nil {
		return Usage{}, false
	}
	return t.log.usage(), true
}

// Scope returns a tracer for the structure nested in node id.
func (t *Tracer) Scope(id NodeID) *Tracer {
	if t == nil {
		return nil
	}
	s := append(append([]NodeID(nil), t.scope...), id)
	return &Tracer{log: t.log, scope: s, start: t.start}
}

// RecordPrompts reports whether full prompts belong in the trace.
func (t *Tracer) RecordPrompts() bool { return t != nil && t.log.prompts }

// Start is when the trace began.
func (t *Tracer) Start() time.Time { return t.start }

// Record appends an event for op on nodes with optional data.
func (t *Tracer) Record(op string, nodes []NodeID, data map[string]any) {
	e := Event{Op: op, Nodes: nodes}
	if len(data) > 0 {
		e.Data = data // a nil map in Data would be written as "data": null
	}
	t.emit(e)
}

// RecordSelect appends a select event for node with typed data: MCTS
// records one per iteration, and a map for each was a good part of its
// cost.
func (t *Tracer) RecordSelect(node NodeID, d SelectData) {
	t.emit(Event{Op: OpSelect, Nodes: []NodeID{node}, Data: &d})
}

func (t *Tracer) emit(e Event) int64 {
	if t == nil {
		return 0
	}
	e.TimeMS = sinceMS(t.start)
	if len(t.scope) > 0 {
		e.Scope = t.scope
	}
	l := t.log
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0
	}
	l.n++
	e.Seq = int64(l.n)
	if e.Op == OpNode && len(e.Scope) == 0 {
		l.nodes++
	}
	if k := len(l.chunks); k == 0 || len(l.chunks[k-1]) == cap(l.chunks[k-1]) {
		l.chunks = append(l.chunks, make([]Event, 0, min(max(64, l.n), maxChunk)))
	}
	last := &l.chunks[len(l.chunks)-1]
	*last = append(*last, e)
	if !l.waited { // nobody waits: keep the channel for the next event
		l.mu.Unlock()
		return e.Seq
	}
	ch := l.changed
	l.changed = make(chan struct{})
	l.waited = false
	l.mu.Unlock()
	close(ch)
	return e.Seq
}

// Since returns the events with Seq > seq.
func (t *Tracer) Since(seq int64) []Event {
	l := t.log
	l.mu.Lock()
	defer l.mu.Unlock()
	if seq < 0 {
		seq = 0
	}
	return l.from(int(seq))
}

const maxChunk = 8192

// from copies the events after the first skip; l.mu is held.
func (l *eventLog) from(skip int) []Event {
	if skip >= l.n {
		return nil
	}
	out := make([]Event, 0, l.n-skip)
	for _, c := range l.chunks {
		if skip >= len(c) {
			skip -= len(c)
			continue
		}
		out = append(out, c[skip:]...)
		skip = 0
	}
	return out
}

// closedEvents returns the events of a closed log in one slice. Nothing is
// appended after Close, so a log of one chunk is handed over, not copied.
func (t *Tracer) closedEvents() []Event {
	l := t.log
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.chunks) == 1 {
		c := l.chunks[0]
		return c[:len(c):len(c)]
	}
	return l.from(0)
}

// Nodes is the number of nodes the run's top structure has so far (its
// node events), for a list of runs that should not copy their events to
// count them.
func (t *Tracer) Nodes() int {
	t.log.mu.Lock()
	defer t.log.mu.Unlock()
	return t.log.nodes
}

// Changed returns a channel closed at the next event (or at Close).
func (t *Tracer) Changed() <-chan struct{} {
	l := t.log
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	l.waited = true
	return l.changed
}

// Done reports whether the run has ended (Close was called).
func (t *Tracer) Done() bool {
	t.log.mu.Lock()
	defer t.log.mu.Unlock()
	return t.log.closed
}

// Close ends the log: later events are dropped and waiters wake.
func (t *Tracer) Close() {
	l := t.log
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	ch := l.changed
	l.mu.Unlock()
	close(ch)
}

// Trace is the versioned document of one run (docs/trace.schema.json):
// enough to replay the run and to draw its structure.
type Trace struct {
	Schema   string     `json:"schema"`
	ID       string     `json:"id"`
	Problem  string     `json:"problem"`
	Pack     string     `json:"pack"`
	Strategy string     `json:"strategy"`
	Params   Params     `json:"params"`
	Limits   Limits     `json:"limits"`
	Started  time.Time  `json:"started"`
	Ended    time.Time  `json:"ended"`
	Status   StopReason `json:"status"`
	Error    string     `json:"error,omitempty"`
	// Warnings are the result's (Result.Warnings).
	Warnings []string `json:"warnings,omitempty"`
	// Verified is the result's (Result.Verified).
	Verified  *bool          `json:"verified,omitempty"`
	Answer    string         `json:"answer"`
	BestPath  []NodeID       `json:"best_path"`
	Usage     Usage          `json:"usage"`
	Structure *Structure     `json:"structure"`
	Events    []Event        `json:"events"`
	Meta      map[string]any `json:"meta,omitempty"`
}

// NewTraceID returns a random 16-hex-digit id.
func NewTraceID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Replay rebuilds a run's structure, nested structures included, from its
// events alone: node events add nodes, update events replace their state,
// stats events set their Value and Visits, evaluate events their scores,
// prune events mark them pruned.
// It is how live viewers draw a run that has not finished, and a test that
// the trace holds everything needed to redraw it.
//
// kind is the run's structure kind when its start event does not say
// (traces written before it did); nested structures without it are trees.
func Replay(kind StructureKind, events []Event) (*Structure, error) {
	root := &Structure{kind: kind}
	scopes := map[string]*Structure{"": root}
	var key func(scope []NodeID) string
	key = func(scope []NodeID) string {
		var b []byte
		for _, id := range scope {
			b = strconv.AppendInt(b, int64(id), 10)
			b = append(b, '/')
		}
		return string(b)
	}
	for _, e := range events {
		if e.Op == OpStart {
			// A structure's root node is recorded before its start event
			// (Engine.run), so its scope exists.
			if k, _ := e.Get("kind").(string); k != "" {
				if s, ok := scopes[key(e.Scope)]; ok {
					s.kind = StructureKind(k)
				}
			}
			continue
		}
		if e.Op == OpStats {
			s, ok := scopes[key(e.Scope)]
			if !ok {
				return nil, fmt.Errorf("replay: event %d is in an unknown scope %v", e.Seq, e.Scope)
			}
			for _, st := range e.Stats {
				if int(st.ID) < 0 || int(st.ID) >= len(s.nodes) {
					return nil, fmt.Errorf("replay: event %d updates missing node %d", e.Seq, st.ID)
				}
				n := *s.nodes[st.ID]
				n.Value, n.Visits = st.Value, st.Visits
				s.nodes[st.ID] = &n
			}
			continue
		}
		if e.Op == OpPrune {
			s, ok := scopes[key(e.Scope)]
			if !ok {
				return nil, fmt.Errorf("replay: event %d is in an unknown scope %v", e.Seq, e.Scope)
			}
			for _, id := range e.Nodes {
				if int(id) < 0 || int(id) >= len(s.nodes) {
					return nil, fmt.Errorf("replay: event %d prunes missing node %d", e.Seq, id)
				}
				n := *s.nodes[id]
				n.Pruned = true
				s.nodes[id] = &n
			}
			continue
		}
		if e.Op == OpEvaluate {
			// An evaluation that scored its node carries the score; one
			// that failed changed the node in an update event.
			kind, _ := e.Get("kind").(string)
			score, scored := e.Get("score").(float64)
			if kind == "" || !scored || len(e.Nodes) == 0 {
				continue
			}
			s, ok := scopes[key(e.Scope)]
			if !ok {
				return nil, fmt.Errorf("replay: event %d is in an unknown scope %v", e.Seq, e.Scope)
			}
			id := e.Nodes[0]
			if int(id) < 0 || int(id) >= len(s.nodes) {
				return nil, fmt.Errorf("replay: event %d scores missing node %d", e.Seq, id)
			}
			n := *s.nodes[id]
			detail, _ := e.Get("detail").(string)
			n.setScore(kind, score, detail)
			s.nodes[id] = &n
			continue
		}
		if e.Node == nil || (e.Op != OpNode && e.Op != OpUpdate) {
			continue
		}
		k := key(e.Scope)
		s, ok := scopes[k]
		if !ok {
			parent, ok := scopes[key(e.Scope[:len(e.Scope)-1])]
			if !ok {
				return nil, fmt.Errorf("replay: event %d is in an unknown scope %v", e.Seq, e.Scope)
			}
			owner := e.Scope[len(e.Scope)-1]
			if int(owner) >= len(parent.nodes) {
				return nil, fmt.Errorf("replay: event %d: scope owner %d does not exist", e.Seq, owner)
			}
			s = &Structure{kind: Tree} // until its start event says
			parent.nodes[owner].Sub = s
			scopes[k] = s
		}
		n := e.Node.clone()
		switch e.Op {
		case OpNode:
			if int(n.ID) != len(s.nodes) {
				return nil, fmt.Errorf("replay: event %d adds node %d, want %d", e.Seq, n.ID, len(s.nodes))
			}
			// Children arrive with their own events.
			n.Children = nil
			s.nodes = append(s.nodes, &n)
			for _, p := range n.Parents {
				if int(p) >= len(s.nodes) {
					return nil, fmt.Errorf("replay: event %d: parent %d does not exist", e.Seq, p)
				}
				s.nodes[p].Children = append(s.nodes[p].Children, n.ID)
			}
		case OpUpdate:
			if int(n.ID) >= len(s.nodes) {
				return nil, fmt.Errorf("replay: event %d updates missing node %d", e.Seq, n.ID)
			}
			old := s.nodes[n.ID]
			n.Children, n.Sub = old.Children, old.Sub
			*old = n
		}
	}
	if len(root.nodes) == 0 {
		return nil, fmt.Errorf("replay: no node events")
	}
	return root, nil
}
