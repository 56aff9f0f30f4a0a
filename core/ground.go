package core

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Grounding: when a task names a collection, the engine retrieves passages
// for the problem before the strategy runs (see groundAndRun), records them
// on the root node (Meta "retrieved") and in a "retrieve" trace event, and
// puts them in front of the problem every prompt shows, so every strategy
// reasons from them and cites them as [n]. Strategies that retrieve again
// mid-search (a query from the current step) use RetrieveNode.

// GroundK is how many passages grounding retrieves.
const GroundK = 5

// Markers of a grounded problem; the simulator reads them back with
// ParseGrounded.
const (
	PassagesHeader = "Passages retrieved from the document collection"
	QuestionHeader = "Question:"
)

// FormatPassages lays chunks out as numbered passages with their sources:
//
//	[1] /docs/guide.md — Guide › Ports
//	The admin console listens on port 7443.
func FormatPassages(chunks []Chunk) string {
	var b strings.Builder
	for i, c := range chunks {
		b.WriteString("[" + strconv.Itoa(i+1) + "] " + citation(c) + "\n")
		b.WriteString(strings.TrimSpace(c.Text))
		b.WriteString("\n\n")
	}
	return b.String()
}

// citation names a chunk's source: path, then title and heading trail,
// then page, as far as known.
func citation(c Chunk) string {
	s := c.Source
	where := c.Meta["headings"]
	if where == "" {
		where = c.Title
	}
	if where != "" {
		s += " — " + where
	}
	if p := c.Meta["page"]; p != "" {
		s += " (page " + p + ")"
	}
	return s
}

// GroundedProblem puts passages in front of a problem.
func GroundedProblem(problem, collection string, chunks []Chunk) string {
	return fmt.Sprintf("%s %q. Use them to answer and cite them as [n].\n\n%s%s\n%s",
		PassagesHeader, collection, FormatPassages(chunks), QuestionHeader, strings.TrimSpace(problem))
}

// Passage is one passage of a grounded problem.
type Passage struct {
	N      int
	Source string // the citation line after [n]
	Text   string
}

var passageHead = regexp.MustCompile(`(?m)^\[(\d+)\] (.*)$`)

// ParseGrounded reads a problem made by GroundedProblem back into the
// question and its passages; ok is false for any other text.
func ParseGrounded(text string) (question string, passages []Passage, ok bool) {
	i := strings.Index(text, PassagesHeader)
	j := strings.LastIndex(text, "\n"+QuestionHeader+"\n")
	if i < 0 || j < i {
		return "", nil, false
	}
	question = strings.TrimSpace(text[j+len(QuestionHeader)+2:])
	body := text[i:j]
	locs := passageHead.FindAllStringSubmatchIndex(body, -1)
	for k, l := range locs {
		end := len(body)
		if k+1 < len(locs) {
			end = locs[k+1][0]
		}
		n, _ := strconv.Atoi(body[l[2]:l[3]])
		passages = append(passages, Passage{N: n, Source: body[l[4]:l[5]], Text: strings.TrimSpace(body[l[1]:end])})
	}
	return question, passages, true
}

// chunkMeta is how a chunk is recorded in node Meta and traces.
func chunkMeta(i int, c Chunk) map[string]any {
	m := map[string]any{"n": i + 1, "id": c.ID, "source": c.Source, "score": c.Score, "text": c.Text}
	if c.Title != "" {
		m["title"] = c.Title
	}
	for k, v := range c.Meta {
		if _, taken := m[k]; !taken {
			m[k] = v
		}
	}
	return m
}

// groundAndRun grounds the run on the task's collection (when it names
// one) and runs the strategy.
func groundAndRun(ctx context.Context, s Strategy, env *Env) (Outcome, error) {
	if env.Task.Collection != "" {
		if err := ground(ctx, env); err != nil {
			return Outcome{}, err
		}
	}
	return safeRun(ctx, s, env)
}

func ground(ctx context.Context, env *Env) error {
	chunks, err := env.Retrieve(ctx, RetrieveRequest{Query: env.Task.Problem, K: GroundK})
	if err != nil {
		return err
	}
	sources := make([]any, len(chunks))
	for i, c := range chunks {
		sources[i] = chunkMeta(i, c)
	}
	if err := env.Structure.Update(0, func(n *Node) {
		if n.Meta == nil {
			n.Meta = map[string]any{}
		}
		n.Meta["collection"] = env.Task.Collection
		n.Meta["retrieved"] = sources
	}); err != nil {
		return err
	}
	env.Tracer.Record(OpInfo, []NodeID{0}, map[string]any{"grounded": len(chunks), "collection": env.Task.Collection})
	if len(chunks) > 0 {
		env.Task.Problem = GroundedProblem(env.Task.Problem, env.Task.Collection, chunks)
	}
	return nil
}

// RetrieveNode is the retrieve operator: it retrieves chunks for req
// (collection defaults to the task's) and adds them under parent as one
// retrieval node whose content is the numbered passages and whose Meta
// "sources" cites each chunk, so later steps, and answers, can cite them.
// With no chunks found it adds nothing and returns id 0.
func RetrieveNode(ctx context.Context, env *Env, parent NodeID, req RetrieveRequest) (NodeID, []Chunk, error) {
	if strings.TrimSpace(req.Query) == "" {
		return 0, nil, fmt.Errorf("retrieve: the query is empty")
	}
	chunks, err := env.Retrieve(ctx, req)
	if err != nil || len(chunks) == 0 {
		return 0, chunks, err
	}
	sources := make([]any, len(chunks))
	for i, c := range chunks {
		sources[i] = chunkMeta(i, c)
	}
	coll := req.Collection
	if coll == "" {
		coll = env.Task.Collection
	}
	id, err := env.AddNode([]NodeID{parent}, Node{Kind: KindRetrieval, Content: "Retrieved passages:\n" + FormatPassages(chunks),
		Meta: map[string]any{"query": req.Query, "collection": coll, "sources": sources}})
	if err != nil {
		return 0, chunks, fmt.Errorf("retrieve: %w", err)
	}
	return id, chunks, nil
}
