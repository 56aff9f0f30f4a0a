package sim

import (
	"errors"
	"hash/fnv"
	"io/fs"
	"math/big"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/tasks"
	"github.com/rs/zerolog"
)

// problem is what the simulator knows about one problem: its truth, the
// reference steps of a correct solution and the wrong answers it gives.
type problem struct {
	pack  core.Pack // gsm8k, math or generic (problems outside the data)
	text  string
	truth string
	// steps are the reference steps; the last one, written with an answer,
	// ends in "The answer is \boxed{...}".
	steps       []string
	distractors []string // wrong answers, most frequent first
	accuracy    float64  // probability a whole solution is right
}

// kb indexes the benchmark problems by their text. It loads once, on first
// use.
type kb struct {
	dir  string
	log  zerolog.Logger
	once sync.Once
	byPr map[string]tasks.Item
}

func (k *kb) load() {
	k.byPr = map[string]tasks.Item{}
	if k.dir == "" {
		return
	}
	for _, name := range []string{"gsm8k", "math500", "humaneval"} {
		items, skipped, err := tasks.LoadDataset(k.dir, name)
		if err != nil {
			ev := k.log.Warn()
			if name == "humaneval" && errors.Is(err, fs.ErrNotExist) {
				// Optional: only evals of HumanEval need it, and a data
				// folder made before it was read has none.
				ev = k.log.Debug()
			}
			ev.Err(err).Str("dataset", name).Msg("sim: dataset not loaded; its problems get generic answers")
			continue
		}
		for _, it := range items {
			k.byPr[norm(it.Problem)] = it
		}
		k.log.Debug().Str("dataset", name).Int("problems", len(items)).Int("skipped", len(skipped)).Msg("sim: dataset indexed")
	}
}

// item returns the benchmark item whose problem is text.
func (k *kb) item(text string) (tasks.Item, bool) {
	k.once.Do(k.load)
	it, ok := k.byPr[norm(text)]
	return it, ok
}

// problemFor builds the simulator's view of a problem: from the data when
// it is a GSM8K or MATH-500 problem, else a generic problem whose answer is
// the sum of the numbers in it.
func (s *Server) problemFor(text string) *problem {
	if p, ok := s.subProblem(text); ok { // decompose.go: a sub-question posed by tasks.SubProblem
		return p
	}
	p := &problem{text: text}
	if it, ok := s.kb.item(text); ok && it.Pack == "gsm8k" {
		p.pack, p.truth = tasks.GSM8K{}, it.Truth
		p.steps = gsm8kSteps(it.Solution)
	} else if ok && it.Pack == "math" {
		p.pack, p.truth = tasks.MATH{}, it.Truth
		p.steps = mathSteps(it.Solution)
	} else {
		p.pack = core.GenericPack{}
		p.truth, p.steps = genericSolution(text)
	}
	p.distractors = distractors(p.pack, p.truth, text)
	p.accuracy = s.problemAccuracy(text)
	return p
}

// problemAccuracy spreads Accuracy over problems: uniform in Accuracy ± s,
// s = min(Spread, Accuracy, 1 - Accuracy), so the mean stays Accuracy.
func (s *Server) problemAccuracy(text string) float64 {
	a := s.opts.Accuracy
	sp := min(s.opts.Spread, a, 1-a)
	if sp <= 0 {
		return a
	}
	u := float64(hashString("difficulty", norm(text))%1_000_000) / 1e6
	return a + sp*(2*u-1)
}

var calcAnnotation = regexp.MustCompile(`<<[^>]*>>`)

func gsm8kSteps(solution string) []string {
	var out []string
	for _, l := range strings.Split(calcAnnotation.ReplaceAllString(solution, ""), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		out = []string{"Work through the quantities in the problem."}
	}
	return out
}

var (
	asyBlock = regexp.MustCompile(`(?s)\[asy\].*?\[/asy\]`)
)

// mathSteps cuts a MATH solution into at most three steps, without its
// \boxed (the simulator adds the final answer itself).
func mathSteps(solution string) []string {
	s := unbox(asyBlock.ReplaceAllString(solution, ""))
	var paras []string
	for _, p := range strings.Split(s, "\n\n") {
		if p = norm(p); p != "" {
			paras = append(paras, p)
		}
	}
	if len(paras) == 0 {
		return []string{"Set up the problem."}
	}
	n := min(3, len(paras))
	out := make([]string, n)
	for i, p := range paras {
		j := i * n / len(paras)
		out[j] = strings.TrimSpace(out[j] + " " + p)
	}
	return out
}

// unbox replaces every \boxed{x} in s by x.
func unbox(s string) string {
	for {
		i := strings.Index(s, `\boxed`)
		if i < 0 {
			return s
		}
		rest := strings.TrimLeft(s[i+len(`\boxed`):], " ")
		if !strings.HasPrefix(rest, "{") {
			s = s[:i] + rest
			continue
		}
		depth, end := 0, -1
		for j, r := range rest {
			if r == '{' {
				depth++
			} else if r == '}' {
				if depth--; depth == 0 {
					end = j
					break
				}
			}
		}
		if end < 0 {
			return s[:i] + rest
		}
		s = s[:i] + rest[1:end] + rest[end+1:]
	}
}

var numberRe = regexp.MustCompile(`\d[\d,]*(?:\.\d+)?`)

// genericSolution answers a problem outside the data: the sum of its
// numbers (or a number derived from its text when it has none).
func genericSolution(text string) (truth string, steps []string) {
	nums := problemNumbers(text, 7) // the first six, and whether there are more
	if len(nums) == 0 {
		n := 2 + hashString("generic", norm(text))%97
		return big.NewRat(int64(n), 1).RatString(), []string{"Consider what the problem asks.", "Counting the cases gives " + big.NewRat(int64(n), 1).RatString() + "."}
	}
	sum := new(big.Rat)
	var terms []string
	for _, n := range nums {
		sum.Add(sum, n)
		terms = append(terms, tasks.FormatRat(n))
	}
	if len(terms) > 6 {
		terms = terms[:6]
		sum = new(big.Rat)
		for _, n := range nums[:6] {
			sum.Add(sum, n)
		}
	}
	steps = []string{
		"The quantities in the problem are " + strings.Join(terms, ", ") + ".",
		"Combining them: " + strings.Join(terms, " + ") + " = " + tasks.FormatRat(sum) + ".",
	}
	return tasks.FormatRat(sum), steps
}

// problemNumbers returns the first limit numbers in text (all for limit < 0).
func problemNumbers(text string, limit int) []*big.Rat {
	var out []*big.Rat
	for _, m := range numberRe.FindAllString(text, limit) {
		if r, ok := new(big.Rat).SetString(strings.ReplaceAll(m, ",", "")); ok {
			out = append(out, r)
		}
	}
	return out
}

// distractorWeights are the shares of the distractors among wrong samples
// that are not slips: a common mistake or two, several rarer ones.
var distractorWeights = []float64{0.25, 0.2, 0.2, 0.15, 0.1, 0.1}

// slipShare of the wrong samples are one-off slips: the truth off by a
// random amount, rarely repeated, so wrong votes scatter as they do with
// real models.
const slipShare = 1.0 / 3

// distractors returns up to six plausible wrong answers for a problem,
// in a fixed per-problem order: the truth off by one, two or three,
// doubled, tripled or halved, plus or times ten, a number from the problem. Non-numeric (LaTeX) truths
// get a number inside them changed.
func distractors(pack core.Pack, truth, text string) []string {
	key := pack.Normalize(truth)
	seen := map[string]bool{key: true}
	var out []string
	// add keeps s unless it is a known wrong answer or the truth. Only the
	// first len(distractorWeights) count, so the loops below stop there: a
	// prompt of a million numbers took minutes and gigabytes otherwise.
	add := func(s string) {
		if k := pack.Normalize(s); s != "" && !seen[k] {
			seen[k] = true
			out = append(out, s)
		}
	}
	full := func() bool { return len(out) >= len(distractorWeights) }
	rng := rand.New(rand.NewPCG(hashString("distractors", norm(text)), 7))
	if t, ok := new(big.Rat).SetString(strings.ReplaceAll(strings.TrimSpace(truth), ",", "")); ok {
		one, two, ten := big.NewRat(1, 1), big.NewRat(2, 1), big.NewRat(10, 1)
		// A candidate is a number made from the truth (r) or one written in
		// the problem (s, parsed when the loop reaches it).
		type cand struct {
			r *big.Rat
			s string
		}
		var cands []cand
		for _, r := range []*big.Rat{
			new(big.Rat).Add(t, one), new(big.Rat).Sub(t, one), new(big.Rat).Mul(t, two),
			new(big.Rat).Quo(t, two), new(big.Rat).Add(t, two), new(big.Rat).Add(t, ten),
			new(big.Rat).Mul(t, ten), new(big.Rat).Sub(t, two), new(big.Rat).Add(t, big.NewRat(3, 1)),
			new(big.Rat).Sub(t, big.NewRat(3, 1)), new(big.Rat).Mul(t, big.NewRat(3, 1)),
		} {
			cands = append(cands, cand{r: r})
		}
		for _, m := range numberRe.FindAllString(text, -1) {
			cands = append(cands, cand{s: m}) // every match parses (problemNumbers)
		}
		rng.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
		tried := map[string]bool{} // numbers from the problem already weighed
		for _, c := range cands {
			if full() {
				break
			}
			if c.r == nil {
				if tried[c.s] {
					continue
				}
				tried[c.s] = true
				var ok bool
				if c.r, ok = new(big.Rat).SetString(strings.ReplaceAll(c.s, ",", "")); !ok {
					continue
				}
			}
			if t.Sign() >= 0 && c.r.Sign() < 0 || (t.IsInt() && !c.r.IsInt()) {
				continue
			}
			add(tasks.FormatRat(c.r))
		}
	} else {
		locs := numberRe.FindAllStringIndex(truth, -1)
		var cands []string
		for _, l := range locs {
			n, ok := new(big.Int).SetString(strings.ReplaceAll(truth[l[0]:l[1]], ",", ""), 10)
			if !ok {
				continue
			}
			for _, d := range []*big.Int{new(big.Int).Add(n, big.NewInt(1)), new(big.Int).Mul(n, big.NewInt(2)), new(big.Int).Add(n, big.NewInt(2))} {
				cands = append(cands, truth[:l[0]]+d.String()+truth[l[1]:])
			}
			if n.Sign() > 0 {
				cands = append(cands, truth[:l[0]]+new(big.Int).Sub(n, big.NewInt(1)).String()+truth[l[1]:])
			}
		}
		cands = append(cands, "-"+truth, truth+"+1", `\frac{`+truth+`}{2}`, "2"+truth)
		rng.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
		for _, c := range cands {
			if full() {
				break
			}
			add(c)
		}
	}
	if len(out) > len(distractorWeights) {
		out = out[:len(distractorWeights)]
	}
	if len(out) == 0 {
		out = []string{truth + "1"}
	}
	return out
}

// wrongAnswer draws a wrong answer: a slip with probability slipShare
// (numeric truths only), else a distractor by distractorWeights.
func (p *problem) wrongAnswer(rng *rand.Rand) string {
	if rng.Float64() < slipShare {
		if a, ok := p.slip(rng); ok {
			return a
		}
	}
	total := 0.0
	for i := range p.distractors {
		total += distractorWeights[i]
	}
	u := rng.Float64() * total
	for i, d := range p.distractors {
		u -= distractorWeights[i]
		if u < 0 {
			return d
		}
	}
	return p.distractors[len(p.distractors)-1]
}

// slip is the truth off by a random amount of up to about half its size
// (at least 1..20), keeping its sign and integrality.
func (p *problem) slip(rng *rand.Rand) (string, bool) {
	t, ok := new(big.Rat).SetString(strings.ReplaceAll(strings.TrimSpace(p.truth), ",", ""))
	if !ok {
		return "", false
	}
	span := int64(20)
	if h := new(big.Int).Quo(new(big.Int).Abs(t.Num()), t.Denom()); h.IsInt64() && h.Int64()/2 > span {
		span = min(h.Int64()/2, 1<<40)
	}
	for range 4 {
		d := big.NewRat(1+rng.Int64N(span), 1)
		if rng.IntN(2) == 0 {
			d.Neg(d)
		}
		v := new(big.Rat).Add(t, d)
		if t.Sign() >= 0 && v.Sign() < 0 {
			continue
		}
		return tasks.FormatRat(v), true
	}
	return "", false
}

func hashString(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum64()
}
