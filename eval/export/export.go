// Package export turns search traces into training data, as x1's pipeline
// does: SFT pairs from verified solution paths, per-step labels for a
// process reward model, value targets per node in [-1, 1], and preference
// pairs from sibling nodes with different outcomes. docs/eval.md documents
// each JSONL format.
//
//	srcs, warnings, err := export.Collect([]string{"runs/g24"}) // run dirs or trace files
//	stats, err := export.Write(ctx, os.Stdout, srcs, export.Options{Format: export.SFT})
//
// A node's outcome comes from grading its answer with the trace's grader
// and ground truth (kept in the trace's meta by `ponder eval`), or else
// from a verifier score in the trace; nodes without either are unlabeled
// and left out.
package export

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/eval"
	"github.com/ponder-rlm/ponder/tasks"
	"github.com/ponder-rlm/ponder/traces"
)

// Formats.
const (
	SFT   = "sft"
	PRM   = "prm"
	Value = "value"
	DPO   = "dpo"
)

// Formats lists the export formats.
func Formats() []string { return []string{SFT, PRM, Value, DPO} }

// Source is one trace to export, with its eval record when it came from a
// run directory. Trace is read from Path when nil, and only while it is
// being exported, so a run of any size exports in bounded memory.
type Source struct {
	Path   string
	Trace  *core.Trace
	Record *eval.Record
}

// Collect lists the traces of run directories (their results.jsonl names
// the traces under traces/), other directories (every *.json in them) and
// trace files (read at once, so a bad one is an error here). Traces of
// directories are read by Write, which skips and counts unreadable ones.
func Collect(paths []string) (srcs []Source, warnings []string, err error) {
	if len(paths) == 0 {
		return nil, nil, errors.New("nothing to export: give --from a run directory (the --out of `ponder eval`) or trace files")
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, warnings, fmt.Errorf("--from %s: %w", p, err)
		}
		if !st.IsDir() {
			t, err := traces.ReadFile(p)
			if err != nil {
				return nil, warnings, fmt.Errorf("--from %s: %w", p, err)
			}
			srcs = append(srcs, Source{Path: p, Trace: t})
			continue
		}
		results := filepath.Join(p, eval.ResultsFile)
		if _, err := os.Stat(results); err == nil {
			recs, bad, err := eval.ReadRecords(results)
			if err != nil {
				return nil, warnings, err
			}
			if len(bad) > 0 {
				warnings = append(warnings, fmt.Sprintf("%s: %d lines are not records (first: line %d)", results, len(bad), bad[0].Line))
			}
			var outside []string
			untraced := 0
			for i := range recs {
				r := &recs[i]
				if r.TraceID == "" {
					untraced++
					continue
				}
				// A trace id names a file in traces/: one with a path
				// in it (../../x) would read a file elsewhere.
				if strings.ContainsAny(r.TraceID, `/\`) || r.TraceID == "." || r.TraceID == ".." {
					outside = append(outside, r.Key)
					continue
				}
				srcs = append(srcs, Source{Path: filepath.Join(p, eval.TracesDir, r.TraceID+".json"), Record: r})
			}
			if untraced > 0 {
				warnings = append(warnings, fmt.Sprintf("%s: %d of %d records have no trace (run with --no-traces, or the trace "+
					"could not be saved), left out: run them again without --no-traces into another --out to export them",
					results, untraced, len(recs)))
			}
			if len(outside) > 0 {
				warnings = append(warnings, fmt.Sprintf("%s: %d records name a trace outside %s, left out (first: %s)",
					results, len(outside), eval.TracesDir, outside[0]))
			}
			continue
		}
		matches, _ := filepath.Glob(filepath.Join(p, "*.json"))
		sort.Strings(matches)
		if len(matches) == 0 {
			return nil, warnings, fmt.Errorf("--from %s: no %s and no trace files in it", p, eval.ResultsFile)
		}
		for _, m := range matches {
			srcs = append(srcs, Source{Path: m})
		}
	}
	return srcs, warnings, nil
}

// Options configure Write.
type Options struct {
	// Format is sft, prm, value or dpo.
	Format string
	// PairsPerNode caps the preference pairs taken from one node's
	// children (dpo; default 4).
	PairsPerNode int
	// GraderOptions build the graders that label answers (HumanEval needs
	// UnitTests).
	GraderOptions eval.GraderOptions
}

// Stats count what Write did.
type Stats struct {
	Traces    int `json:"traces"`
	Lines     int `json:"lines"`
	Labeled   int `json:"labeled_answers"`
	Unlabeled int `json:"unlabeled_answers"`
	// Duplicates are lines left out because an identical one was written.
	Duplicates int `json:"duplicates"`
	// Skipped are traces that could not be read; Warnings name the first
	// few.
	Skipped  int      `json:"skipped"`
	Warnings []string `json:"warnings,omitempty"`
}

// Write exports srcs as JSONL lines of the chosen format to w.
func Write(ctx context.Context, w io.Writer, srcs []Source, o Options) (Stats, error) {
	var st Stats
	switch o.Format {
	case SFT, PRM, Value, DPO:
	default:
		return st, fmt.Errorf("unknown format %q (known: %s)", o.Format, strings.Join(Formats(), ", "))
	}
	if o.PairsPerNode <= 0 {
		o.PairsPerNode = 4
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	seen := map[[sha256.Size]byte]bool{}
	emit := func(key string, v any) error {
		h := sha256.Sum256([]byte(key))
		if seen[h] {
			st.Duplicates++
			return nil
		}
		seen[h] = true
		st.Lines++
		return enc.Encode(v)
	}
	for _, src := range srcs {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if src.Trace == nil && src.Path != "" {
			t, err := traces.ReadFile(src.Path)
			if err != nil {
				st.Skipped++
				if len(st.Warnings) < 3 {
					msg := err.Error()
					if errors.Is(err, os.ErrNotExist) && src.Record != nil {
						msg = fmt.Sprintf("the trace of %s: %s is missing (deleted, or a run with --no-traces)", src.Record.Key, src.Path)
					}
					st.Warnings = append(st.Warnings, msg)
				}
				continue
			}
			src.Trace = t
		}
		if src.Trace == nil || src.Trace.Structure == nil {
			continue
		}
		st.Traces++
		t, err := newTree(ctx, src, o.GraderOptions)
		if err != nil {
			return st, err
		}
		st.Labeled += t.labeled
		st.Unlabeled += t.unlabeled
		switch o.Format {
		case SFT:
			err = t.sft(emit)
		case PRM:
			err = t.prm(emit)
		case Value:
			err = t.value(emit)
		case DPO:
			err = t.dpo(emit, o.PairsPerNode)
		}
		if err != nil {
			return st, fmt.Errorf("export %s: %w", src.Path, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return st, fmt.Errorf("export: %w", err)
	}
	return st, nil
}

// tree is one trace's structure with outcomes: the top structure, with
// the nested searches that continue its paths grafted in (see graft).
type tree struct {
	src  Source
	tr   *core.Trace
	pack core.Pack
	item string
	// nodes are indexed by their ID: the top structure's keep theirs,
	// grafted nested nodes follow, renumbered (parents and children too).
	nodes []core.Node
	// origin of each node: its id in its own structure and the nodes that
	// own that structure, outermost first (a trace event's scope).
	origin []origin
	// unmarked: no node has core.MetaWhole, as in traces written before
	// it existed (see whole).
	unmarked bool
	// outcome of terminal nodes: 1 correct, 0 wrong; absent: unknown.
	outcome map[core.NodeID]float64
	// correct and total count labeled terminal nodes at or below a node.
	correct, total []int
	labeled        int
	unlabeled      int
}

func newTree(ctx context.Context, src Source, gopts eval.GraderOptions) (*tree, error) {
	tr := src.Trace
	pack, err := eval.Packs(tasks.Get)(tr.Pack)
	if err != nil {
		pack = core.GenericPack{}
	}
	t := &tree{src: src, tr: tr, pack: pack, outcome: map[core.NodeID]float64{}}
	t.graft(tr.Structure.Nodes())
	t.unmarked = true
	for _, n := range t.nodes {
		if _, ok := n.Meta[core.MetaWhole]; ok {
			t.unmarked = false
			break
		}
	}
	t.item = metaString(tr, "eval_item")
	if src.Record != nil {
		t.item = src.Record.Item
	}
	grader, item, ok := graderFor(tr, src.Record, gopts)
	cache := map[string]*bool{}
	for _, n := range t.nodes {
		if n.Answer == "" || n.Kind == core.KindProblem {
			continue
		}
		var verdict *bool
		if ok {
			c, seen := cache[n.Answer]
			if !seen {
				g, err := grader.Grade(ctx, item, n.Answer)
				if err == nil {
					c = &g.Correct
				} else if errors.Is(err, ctx.Err()) && ctx.Err() != nil {
					return nil, err
				}
				cache[n.Answer] = c
			}
			verdict = c
		}
		if verdict == nil {
			if v, has := n.Scores[core.ScoreVerifier]; has {
				b := v > 0
				verdict = &b
			}
		}
		if verdict == nil {
			t.unlabeled++
			continue
		}
		t.labeled++
		t.outcome[n.ID] = 0
		if *verdict {
			t.outcome[n.ID] = 1
		}
	}
	t.count()
	return t, nil
}

// graderFor picks the grader and item that label a trace's answers: the
// eval grader and truth in its meta (or record), else the pack's.
func graderFor(tr *core.Trace, rec *eval.Record, gopts eval.GraderOptions) (eval.Grader, eval.Item, bool) {
	item := eval.Item{Problem: tr.Problem, Pack: tr.Pack, Truth: metaString(tr, "truth")}
	if rec != nil && item.Truth == "" {
		item.Truth = rec.Truth
	}
	if test := metaString(tr, "test"); test != "" {
		item.Extra = map[string]string{"test": test, "entry_point": metaString(tr, "entry_point")}
	}
	name := metaString(tr, "eval_grader")
	if name == "" {
		name = eval.PackGrader(tr.Pack)
	}
	switch name {
	case "game24":
	case "humaneval":
		if item.Extra["test"] == "" || gopts.UnitTests == nil {
			return nil, item, false
		}
	default:
		if item.Truth == "" {
			return nil, item, false
		}
	}
	g, err := eval.NewGrader(name, &gopts)
	if err != nil {
		return nil, item, false
	}
	return g, item, true
}

func metaString(tr *core.Trace, k string) string {
	s, _ := tr.Meta[k].(string)
	return s
}

// count fills correct and total for every node from its descendants.
func (t *tree) count() {
	n := len(t.nodes)
	t.correct, t.total = make([]int, n), make([]int, n)
	done := make([]bool, n)
	var visit func(id core.NodeID, depth int)
	visit = func(id core.NodeID, depth int) {
		if done[id] || depth > 10000 {
			return
		}
		done[id] = true
		if o, ok := t.outcome[id]; ok {
			t.total[id]++
			if o == 1 {
				t.correct[id]++
			}
		}
		for _, c := range t.nodes[id].Children {
			if int(c) >= n {
				continue
			}
			visit(c, depth+1)
			t.correct[id] += t.correct[c]
			t.total[id] += t.total[c]
		}
	}
	if n > 0 {
		visit(0, 0)
	}
}

// origin is where a node of tree is in the trace.
type origin struct {
	id    core.NodeID
	scope []int
}

// graft fills t.nodes with top, the trace's top structure, and the nodes
// of the nested searches that solve a step of it (strategy.NestedStep:
// mcts or beam with step_strategy), so that every format sees them as the
// continuations they are. Such a search, owned by node X, continued the
// path to X's parent from the same step prompt as X's siblings, and X is a
// copy of its best first step (meta sub_best): its root becomes X's
// parent, its best first step becomes X, and its other nodes are added
// below them. Nested searches of another kind (decompose's sub-questions,
// a plugin's) solve another problem and are left out.
func (t *tree) graft(top []core.Node) {
	t.nodes = make([]core.Node, 0, len(top))
	for _, n := range top { // ids are 0..n-1 (core.Structure's UnmarshalJSON checks)
		// Parents and children are renumbered below: private copies.
		n.Parents, n.Children = append([]core.NodeID(nil), n.Parents...), append([]core.NodeID(nil), n.Children...)
		t.nodes = append(t.nodes, n)
		t.origin = append(t.origin, origin{id: n.ID})
	}
	// Nested nodes are appended, so the loop reaches their own nested
	// searches too.
	for x := 0; x < len(t.nodes); x++ {
		owner := t.nodes[x]
		if owner.Sub == nil || owner.Kind != core.KindSubProblem || len(owner.Parents) == 0 {
			continue
		}
		sub := owner.Sub.Nodes()
		best, ok := metaInt(owner, "sub_best")
		if !ok || best <= 0 || best >= len(sub) || len(sub[best].Parents) != 1 || sub[best].Parents[0] != 0 ||
			sub[0].Kind != core.KindProblem || strings.TrimSpace(sub[0].Content) != strings.TrimSpace(t.tr.Problem) {
			continue
		}
		ids := make([]core.NodeID, len(sub))
		ids[0], ids[best] = owner.Parents[0], core.NodeID(x)
		next := core.NodeID(len(t.nodes))
		for j := 1; j < len(sub); j++ {
			if j != best {
				ids[j] = next
				next++
			}
		}
		renumber := func(in []core.NodeID) []core.NodeID {
			out := make([]core.NodeID, 0, len(in))
			for _, id := range in {
				if int(id) < len(ids) && id != 0 {
					out = append(out, ids[id])
				}
			}
			return out
		}
		scope := append(append([]int(nil), t.origin[x].scope...), int(t.origin[x].id))
		for j, n := range sub {
			switch j {
			case 0:
				t.nodes[ids[0]].Children = append(t.nodes[ids[0]].Children, withoutID(renumber(n.Children), ids[best])...)
			case best:
				t.nodes[x].Children = append(t.nodes[x].Children, renumber(n.Children)...)
			default:
				n.ID = ids[j]
				n.Children = renumber(n.Children)
				parents := make([]core.NodeID, len(n.Parents))
				for k, p := range n.Parents {
					parents[k] = ids[0]
					if int(p) < len(ids) && p != 0 {
						parents[k] = ids[p]
					}
				}
				n.Parents = parents
				t.nodes = append(t.nodes, n)
				t.origin = append(t.origin, origin{id: core.NodeID(j), scope: scope})
			}
		}
	}
}

func withoutID(ids []core.NodeID, drop core.NodeID) []core.NodeID {
	out := ids[:0:0]
	for _, id := range ids {
		if id != drop {
			out = append(out, id)
		}
	}
	return out
}

func metaInt(n core.Node, k string) (int, bool) {
	switch v := n.Meta[k].(type) {
	case int:
		return v, true
	case float64:
		if v == math.Trunc(v) {
			return int(v), true
		}
	}
	return 0, false
}

// whole reports nodes that hold a whole solution by themselves (a sample,
// a revision, an aggregation, any node core.Generate made with Whole):
// paths start at them, and their prompt is the solve prompt.
func (t *tree) whole(n core.Node) bool {
	if n.Kind == core.KindAggregate {
		return true
	}
	_, sample := n.Meta["sample"]
	_, refines := n.Meta["refines"]
	marked, _ := n.Meta[core.MetaWhole].(bool)
	if sample || refines || marked {
		return true
	}
	// Traces written before core.MetaWhole existed: GoT's first thoughts
	// and refine's first sample are the strategies' whole solutions from
	// the root.
	return t.unmarked && t.origin[n.ID].scope == nil && len(n.Parents) == 1 && n.Parents[0] == 0 &&
		(t.tr.Strategy == "got" || t.tr.Strategy == "refine")
}

// path returns the nodes from the first step to id: up through first
// parents to the root, or to a whole solution (t.whole). A malformed
// trace's parents could loop: a path has at most every node once.
func (t *tree) path(id core.NodeID) []core.Node {
	var rev []core.Node
	for cur := id; len(rev) < len(t.nodes); {
		n := t.nodes[cur]
		if n.Kind == core.KindProblem {
			break
		}
		rev = append(rev, n)
		if t.whole(n) || len(n.Parents) == 0 || int(n.Parents[0]) >= len(t.nodes) {
			break
		}
		cur = n.Parents[0]
	}
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	return rev
}

func contents(ns []core.Node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = strings.TrimSpace(n.Content)
	}
	return out
}

// base fields of every line.
type base struct {
	Problem  string `json:"problem"`
	Pack     string `json:"pack"`
	Item     string `json:"item,omitempty"`
	Strategy string `json:"strategy"`
	TraceID  string `json:"trace_id"`
	Node     int    `json:"node"`
	// Scope is, for a node of a nested search, the ids of the nodes that
	// own it, outermost first (as a trace event's scope); Node is its id
	// in that nested structure.
	Scope []int `json:"scope,omitempty"`
}

func (t *tree) base(id core.NodeID) base {
	o := t.origin[id]
	return base{Problem: t.tr.Problem, Pack: t.tr.Pack, Item: t.item, Strategy: t.tr.Strategy, TraceID: t.tr.ID, Node: int(o.id), Scope: o.scope}
}

// SFTLine is one line of the sft format.
type SFTLine struct {
	Messages []core.Message `json:"messages"`
	base
	Completion string `json:"completion"`
	Answer     string `json:"answer"`
}

func (t *tree) sft(emit func(string, any) error) error {
	for _, n := range t.nodes {
		if o, ok := t.outcome[n.ID]; !ok || o != 1 || n.Answer == "" {
			continue
		}
		completion := t.withAnswer(strings.Join(contents(t.path(n.ID)), "\n"), n.Answer)
		msgs := append(t.pack.SolvePrompt(t.tr.Problem), core.Message{Role: "assistant", Content: completion})
		line := SFTLine{Messages: msgs, base: t.base(n.ID), Completion: completion, Answer: n.Answer}
		if err := emit("sft\x00"+t.tr.Problem+"\x00"+completion, line); err != nil {
			return err
		}
	}
	return nil
}

// withAnswer ends a solution with its answer as \boxed{ANSWER}, as every
// pack's solve prompt asks, when the pack reads no answer (or another one)
// from it: a tree search's last step can hold a move whose answer the
// search worked out itself (Game of 24's "6 * 4 = 24 (left: 24)"), and a
// model trained on it would never write the answer the prompt asks for.
func (t *tree) withAnswer(solution, answer string) string {
	if a, ok := t.pack.ExtractAnswer(solution); ok && t.pack.Normalize(a) == t.pack.Normalize(answer) {
		return solution
	}
	boxed := "\\boxed{" + answer + "}"
	if strings.TrimSpace(solution) == "" {
		return boxed
	}
	return solution + "\n" + boxed
}

// PRMLine is one line of the prm format: a solution path with a label per
// step (1 good, 0 bad, null unknown).
type PRMLine struct {
	base
	Steps []string `json:"steps"`
	// Labels: a step is good (1) when some complete answer below it in
	// the search is correct (Math-Shepherd's hard estimate); for a whole
	// solution sampled at once, every step of a correct one is good and
	// only the last step of a wrong one is known bad.
	Labels []*int `json:"labels"`
	// SoftLabels are the fractions of correct answers below each step
	// (null where unknown).
	SoftLabels []*float64 `json:"soft_labels"`
	// QValues are MCTS values (x1's Q in [-1, 1]) of the steps' nodes,
	// null for nodes without visits.
	QValues     []*float64 `json:"q_values"`
	Outcome     bool       `json:"outcome"`
	LabelSource string     `json:"label_source"` // tree or outcome
}

func (t *tree) prm(emit func(string, any) error) error {
	for _, n := range t.nodes {
		o, ok := t.outcome[n.ID]
		if !ok || n.Answer == "" {
			continue
		}
		path := t.path(n.ID)
		line := PRMLine{base: t.base(n.ID), Outcome: o == 1}
		if len(path) == 1 && t.whole(path[0]) {
			steps := tasks.SolutionSteps(path[0].Content)
			if len(steps) == 0 {
				steps = []string{strings.TrimSpace(path[0].Content)}
			}
			line.Steps, line.LabelSource = steps, "outcome"
			for i := range steps {
				var lab *int
				var soft *float64
				if o == 1 || i == len(steps)-1 {
					lab, soft = intp(int(o)), floatp(o)
				}
				line.Labels = append(line.Labels, lab)
				line.SoftLabels = append(line.SoftLabels, soft)
				line.QValues = append(line.QValues, nil)
			}
		} else {
			line.Steps, line.LabelSource = contents(path), "tree"
			for _, p := range path {
				var lab *int
				var soft *float64
				if t.total[p.ID] > 0 {
					good := 0
					if t.correct[p.ID] > 0 {
						good = 1
					}
					lab = intp(good)
					soft = floatp(float64(t.correct[p.ID]) / float64(t.total[p.ID]))
				}
				line.Labels = append(line.Labels, lab)
				line.SoftLabels = append(line.SoftLabels, soft)
				var q *float64
				if p.Visits > 0 {
					q = floatp(p.Value)
				}
				line.QValues = append(line.QValues, q)
			}
		}
		if err := emit("prm\x00"+t.tr.Problem+"\x00"+strings.Join(line.Steps, "\x00"), line); err != nil {
			return err
		}
	}
	return nil
}

// ValueLine is one line of the value format: a partial solution (the
// steps to a node) and its value target in [-1, 1].
type ValueLine struct {
	base
	Steps  []string `json:"steps"`
	Target float64  `json:"target"`
	// Source is outcome (a graded complete answer: ±1), mcts (the node's
	// backed-up Q, as x1 trains its value model) or mc (2·p − 1 with p
	// the fraction of correct answers below the node).
	Source   string `json:"source"`
	Visits   int    `json:"visits,omitempty"`
	Terminal bool   `json:"terminal"`
}

func (t *tree) value(emit func(string, any) error) error {
	for _, n := range t.nodes {
		if n.Kind == core.KindProblem {
			continue
		}
		line := ValueLine{base: t.base(n.ID), Steps: contents(t.path(n.ID)), Visits: n.Visits, Terminal: n.Terminal || n.Answer != ""}
		o, known := t.outcome[n.ID]
		switch {
		case known:
			line.Target, line.Source = 2*o-1, "outcome"
		case n.Visits > 0:
			line.Target, line.Source = clamp(n.Value), "mcts"
		case t.total[n.ID] > 0:
			line.Target, line.Source = 2*float64(t.correct[n.ID])/float64(t.total[n.ID])-1, "mc"
		default:
			continue
		}
		if err := emit(fmt.Sprintf("value\x00%s\x00%s", t.tr.Problem, strings.Join(line.Steps, "\x00")), line); err != nil {
			return err
		}
	}
	return nil
}

func clamp(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return math.Max(-1, math.Min(1, v))
}

// DPOLine is one line of the dpo format: two siblings — continuations of
// the same prompt — whose outcomes differ.
type DPOLine struct {
	Prompt []core.Message `json:"prompt"`
	base
	// Steps are the steps before the two continuations.
	Steps         []string `json:"steps"`
	Chosen        string   `json:"chosen"`
	Rejected      string   `json:"rejected"`
	ChosenScore   float64  `json:"chosen_score"`
	RejectedScore float64  `json:"rejected_score"`
	ChosenNode    int      `json:"chosen_node"`
	RejectedNode  int      `json:"rejected_node"`
	// ChosenScope and RejectedScope are, for a node of a nested search,
	// the nodes that own it (as base.Scope): the nested search continued
	// the path to node (the parent), as node's own children do.
	ChosenScope   []int `json:"chosen_scope,omitempty"`
	RejectedScope []int `json:"rejected_scope,omitempty"`
}

func (t *tree) dpo(emit func(string, any) error, perNode int) error {
	for _, parent := range t.nodes {
		type cand struct {
			n     core.Node
			score float64
		}
		var cs []cand
		for _, c := range parent.Children {
			if int(c) >= len(t.nodes) || t.total[c] == 0 {
				continue
			}
			n := t.nodes[c]
			cs = append(cs, cand{n, float64(t.correct[c]) / float64(t.total[c])})
		}
		if len(cs) < 2 {
			continue
		}
		sort.SliceStable(cs, func(i, j int) bool { return cs[i].score > cs[j].score })
		// Pairs by decreasing score gap: best with worst first.
		type pair struct{ a, b int }
		var pairs []pair
		for i := range cs {
			for j := len(cs) - 1; j > i; j-- {
				if cs[i].score > cs[j].score {
					pairs = append(pairs, pair{i, j})
				}
			}
		}
		sort.SliceStable(pairs, func(x, y int) bool {
			return cs[pairs[x].a].score-cs[pairs[x].b].score > cs[pairs[y].a].score-cs[pairs[y].b].score
		})
		var prompt []core.Message
		var steps []string
		whole := t.whole(cs[0].n)
		if whole || parent.Kind == core.KindProblem {
			if whole {
				prompt = t.pack.SolvePrompt(t.tr.Problem)
			} else {
				prompt = t.pack.StepPrompt(t.tr.Problem, nil)
			}
		} else {
			steps = contents(t.path(parent.ID))
			prompt = t.pack.StepPrompt(t.tr.Problem, steps)
		}
		taken := 0
		for _, p := range pairs {
			if taken >= perNode {
				break
			}
			a, b := cs[p.a], cs[p.b]
			ca, cb := strings.TrimSpace(a.n.Content), strings.TrimSpace(b.n.Content)
			if ca == cb {
				continue
			}
			ao, bo := t.origin[a.n.ID], t.origin[b.n.ID]
			line := DPOLine{Prompt: prompt, base: t.base(parent.ID), Steps: steps, Chosen: ca, Rejected: cb,
				ChosenScore: a.score, RejectedScore: b.score, ChosenNode: int(ao.id), RejectedNode: int(bo.id),
				ChosenScope: ao.scope, RejectedScope: bo.scope}
			if line.Steps == nil {
				line.Steps = []string{}
			}
			key := "dpo\x00" + t.tr.Problem + "\x00" + strings.Join(steps, "\x00") + "\x00" + ca + "\x00" + cb
			if err := emit(key, line); err != nil {
				return err
			}
			taken++
		}
	}
	return nil
}

func intp(v int) *int           { return &v }
func floatp(v float64) *float64 { return &v }
