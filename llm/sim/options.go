package sim

import (
	"fmt"
	"math"
	"time"

	"github.com/ponder-rlm/ponder/tasks"
	"github.com/rs/zerolog"
)

// Defaults of Options. docs/simulator.md explains each.
const (
	DefaultAccuracy        = 0.35
	DefaultStepAccuracy    = 0.8
	DefaultJudgeAccuracy   = 0.8
	DefaultReviseAccuracy  = 0.5
	DefaultProposeSolvable = 0.6
	DefaultEmbeddingDim    = 384
	DefaultModel           = "ponder-sim"
	DefaultEmbeddingModel  = "ponder-sim-embed"
)

// NoData as Options.DataDir runs the simulator without benchmark data: every
// problem gets the generic answer.
const NoData = "-"

// Options configure a Server. The zero value is a valid configuration: for
// the probabilities below, zero means the default; a negative value means
// zero (a model that is never right).
type Options struct {
	// Seed makes runs reproducible: every sample's randomness is a hash of
	// Seed, the request's messages, its seed and the choice index.
	Seed int64

	// Accuracy is the probability that a sampled whole solution (GSM8K,
	// MATH, generic, Game of 24) is correct. Default 0.35.
	Accuracy float64
	// Spread gives problems different difficulties: a problem's accuracy is
	// uniform in Accuracy ± Spread (clipped so the mean stays Accuracy).
	// Default 0: every problem has Accuracy.
	Spread float64
	// StepAccuracy is the probability that the next step of a path that is
	// still on track is correct (for Game of 24: keeps the numbers
	// solvable). Default 0.8.
	StepAccuracy float64
	// JudgeAccuracy is the probability that a judge, value, PRM or critique
	// call rates a path the right way (high when on track, low when not).
	// Default 0.8.
	JudgeAccuracy float64
	// ReviseAccuracy is the probability that a revision of a wrong solution
	// whose critique names a problem is correct. Default 0.5.
	ReviseAccuracy float64
	// ProposeSolvable is the probability that each move of a Game of 24
	// propose reply keeps the numbers solvable, when such a move is left.
	// Default 0.6.
	ProposeSolvable float64
	// Game24Model picks how Game of 24 solve, step and propose prompts are
	// answered: "basic" (default; Accuracy, StepAccuracy and
	// ProposeSolvable) or "calibrated" (one peaked move distribution per
	// position, calibrated to GPT-4's published chain-of-thought results;
	// see game24_calibrated.go and docs/simulator.md).
	Game24Model string

	// Latency delays every response by Latency plus a uniform draw in
	// [0, Jitter).
	Latency, Jitter time.Duration

	// Fault injection, per request (chat completions and embeddings), with
	// these probabilities: 429 with Retry-After 0 or 1, 500, a hang until
	// the client gives up, or a 200 whose body is not valid JSON.
	Rate429, Rate500, RateTimeout, RateMalformed float64

	// DataDir holds gsm8k-test.jsonl, math500.jsonl and humaneval.jsonl
	// (HumanEval's canonical solutions are its right answers); empty means
	// tasks.FindDataDir(), NoData means none.
	DataDir string
	// EmbeddingDim is the default length of embedding vectors (a request's
	// "dimensions" overrides it). Default 384.
	EmbeddingDim int
	// Models are the model ids GET /v1/models lists. Any model name is
	// accepted in requests. Default: ponder-sim and ponder-sim-embed.
	Models []string

	// Logger receives request logs at debug level; the zero value logs
	// nothing.
	Logger zerolog.Logger
}

func prob(v, def float64) float64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	case v > 1:
		return 1
	}
	return v
}

// withDefaults fills defaults and checks the options.
func (o Options) withDefaults() (Options, error) {
	o.Accuracy = prob(o.Accuracy, DefaultAccuracy)
	o.StepAccuracy = prob(o.StepAccuracy, DefaultStepAccuracy)
	o.JudgeAccuracy = prob(o.JudgeAccuracy, DefaultJudgeAccuracy)
	o.ReviseAccuracy = prob(o.ReviseAccuracy, DefaultReviseAccuracy)
	o.ProposeSolvable = prob(o.ProposeSolvable, DefaultProposeSolvable)
	o.Spread = max(0, o.Spread)
	for name, p := range map[string]float64{"Accuracy": o.Accuracy, "StepAccuracy": o.StepAccuracy, "JudgeAccuracy": o.JudgeAccuracy,
		"ReviseAccuracy": o.ReviseAccuracy, "ProposeSolvable": o.ProposeSolvable, "Spread": o.Spread} {
		if math.IsNaN(p) {
			return o, fmt.Errorf("sim: %s is NaN, want a probability", name)
		}
	}
	switch o.Game24Model {
	case "":
		o.Game24Model = Game24Basic
	case Game24Basic, Game24Calibrated:
	default:
		return o, fmt.Errorf("sim: Game24Model %q, want %q or %q", o.Game24Model, Game24Basic, Game24Calibrated)
	}
	for name, r := range map[string]float64{"Rate429": o.Rate429, "Rate500": o.Rate500, "RateTimeout": o.RateTimeout, "RateMalformed": o.RateMalformed} {
		if !(r >= 0 && r <= 1) { // NaN too
			return o, fmt.Errorf("sim: %s = %v, want a probability in [0, 1]", name, r)
		}
	}
	if sum := o.Rate429 + o.Rate500 + o.RateTimeout + o.RateMalformed; sum > 1 {
		return o, fmt.Errorf("sim: fault rates add up to %v > 1", sum)
	}
	if o.Latency < 0 || o.Jitter < 0 {
		return o, fmt.Errorf("sim: negative latency or jitter")
	}
	if o.EmbeddingDim == 0 {
		o.EmbeddingDim = DefaultEmbeddingDim
	}
	if o.EmbeddingDim < 1 || o.EmbeddingDim > 65536 {
		return o, fmt.Errorf("sim: embedding dimension %d out of range 1..65536", o.EmbeddingDim)
	}
	if len(o.Models) == 0 {
		o.Models = []string{DefaultModel, DefaultEmbeddingModel}
	}
	o.Models = append([]string(nil), o.Models...)
	switch o.DataDir {
	case NoData:
		o.DataDir = ""
	case "":
		if d, err := tasks.FindDataDir(); err == nil {
			o.DataDir = d
		} else {
			o.Logger.Warn().Err(err).Msg("sim: no benchmark data; every problem gets the generic answer")
		}
	}
	return o, nil
}
