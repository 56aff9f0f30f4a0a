package core

import (
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"sync"
	"time"
)

// NodeID identifies a node inside one Structure. The root is always 0.
type NodeID int

// NodeKind says what a node holds.
type NodeKind string

// Node kinds of the blueprint.
const (
	KindProblem    NodeKind = "problem"     // the root: the task's problem statement
	KindStep       NodeKind = "step"        // an intermediate reasoning step
	KindAnswer     NodeKind = "answer"      // a step that states a final answer
	KindToolCall   NodeKind = "tool-call"   // a request to run a tool
	KindToolResult NodeKind = "tool-result" // what the tool returned
	KindRetrieval  NodeKind = "retrieval"   // chunks retrieved from a document store
	KindSubProblem NodeKind = "sub-problem" // a node whose content is solved by a nested structure
	KindAggregate  NodeKind = "aggregate"   // a merge of several nodes (graphs)
)

// StructureKind is the shape of a reasoning structure.
type StructureKind string

// Structure kinds of the blueprint.
const (
	Chain StructureKind = "chain"
	Tree  StructureKind = "tree"
	Graph StructureKind = "graph"
)

// Score names used in Node.Scores. Evaluators may add others.
const (
	ScoreValue    = "value"    // value model estimate of a partial solution, in [-1, 1]
	ScorePRM      = "prm"      // process reward of the step, in [-1, 1]
	ScoreORM      = "orm"      // outcome reward of a final answer, in [-1, 1]
	ScoreVerifier = "verifier" // programmatic check: 1 correct, -1 wrong
)

// Node is one reasoning step. Nodes are values: Structure hands out copies,
// and changes go through Structure.Update so that concurrent strategies and
// the tracer see a consistent state. The Scores and Meta maps of a copy are
// shared with the structure and its trace and must not be written: Update
// gives the function it runs private copies of them.
type Node struct {
	ID       NodeID             `json:"id"`
	Parents  []NodeID           `json:"parents,omitempty"`
	Children []NodeID           `json:"children,omitempty"`
	Kind     NodeKind           `json:"kind"`
	Content  string             `json:"content"`
	Answer   string             `json:"answer,omitempty"`
	Terminal bool               `json:"terminal,omitempty"`
	Depth    int                `json:"depth"`
	Scores   map[string]float64 `json:"scores,omitempty"`
	Value    float64            `json:"value"`
	Visits   int                `json:"visits"`
	Pruned   bool               `json:"pruned,omitempty"`
	Usage    Usage              `json:"usage"`
	// LLMCall is the seq of the llm_call event that produced the node, so
	// that a viewer can show the prompt and response behind it.
	LLMCall int64          `json:"llm_call,omitempty"`
	Meta    map[string]any `json:"meta,omitempty"`
	Sub     *Structure     `json:"sub,omitempty"`
	// CreatedMS is milliseconds since the trace started.
	CreatedMS float64 `json:"created_ms"`
}

// Score returns the node's most authoritative score: a verifier's verdict
// beats an outcome reward, which beats a process reward, which beats a value
// estimate.
func (n Node) Score() (float64, bool) {
	for _, k := range []string{ScoreVerifier, ScoreORM, ScorePRM, ScoreValue} {
		if v, ok := n.Scores[k]; ok {
			return v, true
		}
	}
	return 0, false
}

// clone copies a stored node for a reader. Its Scores and Meta maps and
// its Parents and Children slices are shared: the structure never changes
// a map it has handed out (Update changes fresh copies), parents never
// change, and children are only appended (past the length a reader holds),
// so they are read-only for everyone.
func (n Node) clone() Node {
	return n
}

// own gives a node private copies of its maps, before they are changed.
func (n *Node) own() {
	n.Scores = maps.Clone(n.Scores)
	n.Meta = maps.Clone(n.Meta)
}

// Structure is a reasoning structure: a chain, tree or graph of nodes rooted
// at the problem. A node may own a nested Structure (Node.Sub). It is safe for
// concurrent use.
type Structure struct {
	mu     sync.RWMutex
	kind   StructureKind
	nodes  []*Node
	tracer *Tracer
	start  time.Time
}

// NewStructure returns a structure of the given kind whose root holds the
// problem. Changes are recorded on tr when it is not nil.
func NewStructure(kind StructureKind, problem string, tr *Tracer) *Structure {
	s := &Structure{kind: kind, tracer: tr, start: time.Now()}
	if tr != nil {
		s.start = tr.start
	}
	root := &Node{ID: 0, Kind: KindProblem, Content: problem}
	s.nodes = []*Node{root}
	tr.emit(Event{Op: OpNode, Nodes: []NodeID{0}, Node: ptr(root.clone())})
	return s
}

func ptr[T any](v T) *T { return &v }

// Kind reports the structure's shape.
func (s *Structure) Kind() StructureKind { return s.kind }

// Tracer returns the tracer that records this structure's changes (may be nil).
func (s *Structure) Tracer() *Tracer { return s.tracer }

// Len is the number of nodes, the root included.
func (s *Structure) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.nodes)
}

// Add appends n as a child of parents and returns its id. A chain accepts
// one child per node, a tree one parent per node; a graph accepts several
// parents (aggregation).
func (s *Structure) Add(parents []NodeID, n Node) (NodeID, error) {
	return s.add(parents, n, false)
}

// add is Add; owned says the caller hands over n's maps (operators that
// built them), which are then stored without a copy.
func (s *Structure) add(parents []NodeID, n Node, owned bool) (NodeID, error) {
	s.mu.Lock()
	if len(parents) == 0 {
		s.mu.Unlock()
		return 0, fmt.Errorf("add node: no parent given")
	}
	if len(parents) > 1 && s.kind != Graph {
		s.mu.Unlock()
		return 0, fmt.Errorf("add node: a %s node has one parent, got %d", s.kind, len(parents))
	}
	depth := 0
	for _, p := range parents {
		if int(p) < 0 || int(p) >= len(s.nodes) {
			s.mu.Unlock()
			return 0, fmt.Errorf("add node: parent %d does not exist", p)
		}
		if s.kind == Chain && len(s.nodes[p].Children) > 0 {
			s.mu.Unlock()
			return 0, fmt.Errorf("add node: chain node %d already has a successor", p)
		}
		if d := s.nodes[p].Depth + 1; d > depth {
			depth = d
		}
	}
	// The stored node, its snapshot in the trace and their one-element
	// slices live as long as each other (the run's), so they take one
	// allocation: a search adds a node per sampled step.
	b := new(nodeBlock)
	n.ID = NodeID(len(s.nodes))
	if len(parents) == 1 {
		b.parent[0] = parents[0]
		n.Parents = b.parent[:]
	} else {
		n.Parents = append([]NodeID(nil), parents...)
	}
	n.Children = nil
	n.Depth = depth
	n.CreatedMS = sinceMS(s.start)
	if n.Kind == "" {
		n.Kind = KindStep
	}
	b.stored = n
	stored := &b.stored
	if !owned {
		stored.own() // the caller keeps its maps
	}
	s.nodes = append(s.nodes, stored)
	for _, p := range parents {
		pn := s.nodes[p]
		if pn.Children == nil {
			pn.Children = make([]NodeID, 0, 4) // searches expand a node into a few children
		}
		pn.Children = append(pn.Children, n.ID)
	}
	b.snap = stored.clone()
	b.snap.Sub = nil // nested structures are traced by their own scoped events
	b.id[0] = n.ID
	// Recorded before the lock goes, so that the events of concurrent
	// changes are in the order the changes were made: Replay must meet
	// node 11 before node 12, and a node's last update last.
	s.tracer.emit(Event{Op: OpNode, Nodes: b.id[:], Node: &b.snap})
	s.mu.Unlock()
	return n.ID, nil
}

// nodeBlock holds what adding a node allocates.
type nodeBlock struct {
	stored, snap Node
	parent, id   [1]NodeID
}

// Node returns a copy of node id.
func (s *Structure) Node(id NodeID) (Node, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if int(id) < 0 || int(id) >= len(s.nodes) {
		return Node{}, false
	}
	return s.nodes[id].clone(), true
}

// MustNode is Node for ids the caller obtained from this structure.
func (s *Structure) MustNode(id NodeID) Node {
	n, ok := s.Node(id)
	if !ok {
		panic(fmt.Sprintf("core: node %d does not exist", id))
	}
	return n
}

// Update applies fn to node id under the structure's lock and records the
// change. fn must not call back into the structure.
func (s *Structure) Update(id NodeID, fn func(*Node)) error {
	return s.change(id, func(n *Node) {
		parents, children, nid, depth := n.Parents, n.Children, n.ID, n.Depth
		n.own() // readers may hold the old maps
		fn(n)
		// Identity and links are the structure's to manage.
		n.ID, n.Parents, n.Children, n.Depth = nid, parents, children, depth
	})
}

// change applies fn to the stored node id under the lock and records its
// new state. fn must copy any map it changes (readers share them).
func (s *Structure) change(id NodeID, fn func(*Node)) error {
	s.mu.Lock()
	if int(id) < 0 || int(id) >= len(s.nodes) {
		s.mu.Unlock()
		return fmt.Errorf("update node: node %d does not exist", id)
	}
	n := s.nodes[id]
	fn(n)
	snap := n.clone()
	snap.Sub = nil // nested structures are traced by their own scoped events
	// Recorded before the lock goes, in order (see add).
	s.tracer.emit(Event{Op: OpUpdate, Nodes: []NodeID{id}, Node: &snap})
	s.mu.Unlock()
	return nil
}

// SetStats sets a node's Value and Visits (a search's statistics, such as
// MCTS's Q and N) and records the change as a stats event. It is Update for
// the hot path of searches that change nothing else.
func (s *Structure) SetStats(id NodeID, value float64, visits int) error {
	return s.SetStatsBatch([]NodeStats{{ID: id, Value: value, Visits: visits}})
}

// SetStatsBatch sets the Value and Visits of several nodes (a backed-up
// path) and records them in one stats event. It changes nothing when one of
// the nodes does not exist. The trace keeps stats: the caller must not
// change it afterwards.
func (s *Structure) SetStatsBatch(stats []NodeStats) error {
	if len(stats) == 0 {
		return nil
	}
	s.mu.Lock()
	for _, st := range stats {
		if int(st.ID) < 0 || int(st.ID) >= len(s.nodes) {
			s.mu.Unlock()
			return fmt.Errorf("update node: node %d does not exist", st.ID)
		}
	}
	for _, st := range stats {
		// Readers hold copies of the node, not the stored one, so the
		// numbers can change in place.
		n := s.nodes[st.ID]
		n.Value, n.Visits = st.Value, st.Visits
	}
	// Recorded before the lock goes, in order (see add).
	s.tracer.emit(Event{Op: OpStats, Stats: stats})
	s.mu.Unlock()
	return nil
}

// Children returns copies of the children of id, in creation order.
func (s *Structure) Children(id NodeID) []Node {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if int(id) < 0 || int(id) >= len(s.nodes) {
		return nil
	}
	out := make([]Node, 0, len(s.nodes[id].Children))
	for _, c := range s.nodes[id].Children {
		out = append(out, s.nodes[c].clone())
	}
	return out
}

// EachChild calls fn with each child of id, in creation order, under the
// structure's read lock: a copy-free Children for the hot path (checking
// new steps against their siblings). fn must not call back into the
// structure; the node's maps and slices are read-only, as for every reader.
func (s *Structure) EachChild(id NodeID, fn func(n Node)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if int(id) < 0 || int(id) >= len(s.nodes) {
		return
	}
	for _, c := range s.nodes[id].Children {
		fn(*s.nodes[c])
	}
}

// Path returns the nodes from the root to id, following first parents.
func (s *Structure) Path(id NodeID) []Node {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if int(id) < 0 || int(id) >= len(s.nodes) {
		return nil
	}
	// Count first, then fill from the end: nodes are big, and reversing a
	// slice of them would copy each twice more.
	n := 1
	for cur := s.nodes[id]; len(cur.Parents) > 0; cur = s.nodes[cur.Parents[0]] {
		n++
	}
	path := make([]Node, n)
	for cur := s.nodes[id]; ; cur = s.nodes[cur.Parents[0]] {
		n--
		path[n] = cur.clone()
		if len(cur.Parents) == 0 {
			break
		}
	}
	return path
}

// StepsTo returns the contents of the path from the root to id, the root
// excluded: what a step prompt shows. It is Steps(Path(id)) without copying
// the nodes.
func (s *Structure) StepsTo(id NodeID) ([]string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.stepsToLocked(id)
}

// stepsAndNode is StepsTo and Node at one moment.
func (s *Structure) stepsAndNode(id NodeID) ([]string, Node, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	steps, ok := s.stepsToLocked(id)
	if !ok {
		return nil, Node{}, false
	}
	return steps, s.nodes[id].clone(), true
}

func (s *Structure) stepsToLocked(id NodeID) ([]string, bool) {
	if int(id) < 0 || int(id) >= len(s.nodes) {
		return nil, false
	}
	n := 0
	for cur := s.nodes[id]; ; cur = s.nodes[cur.Parents[0]] {
		if cur.Kind != KindProblem {
			n++
		}
		if len(cur.Parents) == 0 {
			break
		}
	}
	out := make([]string, n)
	for cur := s.nodes[id]; ; cur = s.nodes[cur.Parents[0]] {
		if cur.Kind != KindProblem {
			n--
			out[n] = cur.Content
		}
		if len(cur.Parents) == 0 {
			break
		}
	}
	return out, true
}

// setPruned marks the nodes of ids that exist pruned, without recording
// the change, and returns them: core.Prune's prune event lists them, and
// Replay and the viewer apply it (an update event per node, each with a
// copy of it, was most of a beam search's events). Readers hold copies, so
// the flag changes in place.
func (s *Structure) setPruned(ids []NodeID) []NodeID {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := ids[:0:0]
	for _, id := range ids {
		if int(id) >= 0 && int(id) < len(s.nodes) {
			s.nodes[id].Pruned = true
			out = append(out, id)
		}
	}
	return out
}

// setScore stores an evaluation's score under kind (and detail, when not
// empty, in Meta "eval_detail") without recording it: core.Evaluate's
// evaluate event carries the score (Replay and the viewer apply it). An
// update event per evaluation, holding a copy of the node, was a fifth of
// a search's own time. Only the maps it changes are copied.
func (s *Structure) setScore(id NodeID, kind string, score float64, detail string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if int(id) < 0 || int(id) >= len(s.nodes) {
		return fmt.Errorf("score node: node %d does not exist", id)
	}
	s.nodes[id].setScore(kind, score, detail)
	return nil
}

// setScore stores a score in copies of the node's maps (readers share the
// old ones).
func (n *Node) setScore(kind string, score float64, detail string) {
	scores := make(map[string]float64, len(n.Scores)+1)
	maps.Copy(scores, n.Scores)
	scores[kind] = score
	n.Scores = scores
	if detail != "" {
		n.Meta = maps.Clone(n.Meta)
		if n.Meta == nil {
			n.Meta = map[string]any{}
		}
		n.Meta["eval_detail"] = detail
	}
}

// Nodes returns a snapshot of every node.
func (s *Structure) Nodes() []Node {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Node, len(s.nodes))
	for i, n := range s.nodes {
		out[i] = n.clone()
	}
	return out
}

// Leaves returns the ids of unpruned nodes without children.
func (s *Structure) Leaves() []NodeID {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []NodeID
	for _, n := range s.nodes {
		if len(n.Children) == 0 && !n.Pruned {
			out = append(out, n.ID)
		}
	}
	return out
}

// structureDoc is the JSON form of a Structure (see docs/trace.schema.json).
type structureDoc struct {
	Kind  StructureKind `json:"kind"`
	Nodes []Node        `json:"nodes"`
}

// MarshalJSON writes a consistent snapshot of the structure, nested
// structures included.
func (s *Structure) MarshalJSON() ([]byte, error) {
	return json.Marshal(structureDoc{Kind: s.kind, Nodes: s.Nodes()})
}

// UnmarshalJSON reads a structure written by MarshalJSON (for replay and
// for viewing saved traces).
func (s *Structure) UnmarshalJSON(b []byte) error {
	var d structureDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return err
	}
	sort.Slice(d.Nodes, func(i, j int) bool { return d.Nodes[i].ID < d.Nodes[j].ID })
	s.kind = d.Kind
	s.nodes = make([]*Node, len(d.Nodes))
	for i := range d.Nodes {
		if int(d.Nodes[i].ID) != i {
			return fmt.Errorf("structure: node ids must be 0..%d, found %d", len(d.Nodes)-1, d.Nodes[i].ID)
		}
		s.nodes[i] = &d.Nodes[i]
	}
	return nil
}

func sinceMS(t time.Time) float64 {
	return float64(time.Since(t).Microseconds()) / 1000
}
