package main

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/ponder-rlm/ponder/llm/sim"
)

// newSimLLMCmd runs the deterministic OpenAI-compatible LLM simulator
// (llm/sim; docs/simulator.md) until SIGINT or SIGTERM.
func newSimLLMCmd() *cobra.Command {
	var (
		addr   string
		o      sim.Options
		models []string
	)
	cmd := &cobra.Command{
		Use:   "sim-llm",
		Short: "Run the deterministic OpenAI-compatible LLM simulator (for tests, demos and offline benchmarks)",
		Long: "sim-llm serves /v1/chat/completions, /v1/embeddings, /v1/models and /healthz with a seeded noise model:\n" +
			"whole solutions are right with probability --accuracy, next steps with --step-accuracy, judge/value/PRM\n" +
			"ratings with --judge-accuracy. GSM8K and MATH-500 problems are answered against their truth from --data,\n" +
			"HumanEval problems with their canonical solution (right) or a stub (wrong), as a ```python block.\n" +
			"See docs/simulator.md.",
		Example: "  ponder sim-llm --addr 127.0.0.1:8090 --seed 1 --accuracy 0.35\n" +
			"  PONDER_LLM_BASE_URL=http://127.0.0.1:8090/v1 ponder solve --pack gsm8k \"...\"",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			log := newLogger(cfg.Log, cmd.ErrOrStderr())
			o.Logger = log
			if len(models) > 0 {
				o.Models = models
			}
			if err := checkSimFlags(o); err != nil {
				return err
			}
			// In Options zero means the default; on the command line it means zero.
			for name, p := range map[string]*float64{"accuracy": &o.Accuracy, "step-accuracy": &o.StepAccuracy,
				"judge-accuracy": &o.JudgeAccuracy, "revise-accuracy": &o.ReviseAccuracy, "propose-solvable": &o.ProposeSolvable} {
				if *p == 0 && cmd.Flags().Changed(name) {
					*p = -1
				}
			}
			srv, err := sim.New(o)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w (is another simulator running? set --addr)", addr, err)
			}
			if warn := exposedWarning(ln.Addr()); warn != "" {
				log.Warn().Str("addr", ln.Addr().String()).Msg(warn)
			}
			eff := srv.Options()
			log.Info().Str("addr", "http://"+ln.Addr().String()+"/v1").Int64("seed", eff.Seed).
				Float64("accuracy", eff.Accuracy).Float64("step_accuracy", eff.StepAccuracy).
				Float64("judge_accuracy", eff.JudgeAccuracy).Str("data", eff.DataDir).Msg("sim-llm serving")
			if err := srv.Serve(cmd.Context(), ln); err != nil {
				return err
			}
			st := srv.Stats()
			log.Info().Int64("requests", st.Requests).Int64("choices", st.Choices).Msg("sim-llm stopped")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8090", "listen address (a non-loopback one is warned about: the simulator has no authentication)")
	f.Int64Var(&o.Seed, "seed", 0, "seed of every sample's randomness")
	f.Float64Var(&o.Accuracy, "accuracy", sim.DefaultAccuracy, "probability that a whole solution is correct")
	f.Float64Var(&o.Spread, "spread", 0, "per-problem accuracy spread: a problem's accuracy is uniform in accuracy ± spread")
	f.Float64Var(&o.StepAccuracy, "step-accuracy", sim.DefaultStepAccuracy, "probability that the next step of a path on track is correct")
	f.Float64Var(&o.JudgeAccuracy, "judge-accuracy", sim.DefaultJudgeAccuracy, "probability that a judge, value, PRM or critique call rates a path the right way")
	f.Float64Var(&o.ReviseAccuracy, "revise-accuracy", sim.DefaultReviseAccuracy, "probability that a revision of a criticised wrong solution is correct")
	f.Float64Var(&o.ProposeSolvable, "propose-solvable", sim.DefaultProposeSolvable, "probability that a proposed Game of 24 move keeps the numbers solvable")
	f.StringVar(&o.Game24Model, "game24-model", sim.Game24Basic, "Game of 24 model: basic, or calibrated (GPT-4's published chain-of-thought results on hard puzzles)")
	f.DurationVar(&o.Latency, "latency", 0, "delay of every response")
	f.DurationVar(&o.Jitter, "jitter", 0, "random extra delay, uniform in [0, jitter)")
	f.Float64Var(&o.Rate429, "error-429", 0, "probability of a 429 with Retry-After")
	f.Float64Var(&o.Rate500, "error-500", 0, "probability of a 500")
	f.Float64Var(&o.RateTimeout, "error-timeout", 0, "probability that a request hangs until the client gives up")
	f.Float64Var(&o.RateMalformed, "error-malformed", 0, "probability of a 200 whose body is not valid JSON")
	f.StringVar(&o.DataDir, "data", "", "folder with gsm8k-test.jsonl, math500.jsonl and humaneval.jsonl (default: $PONDER_DATA_SETS or ../shared/data; - for none)")
	f.IntVar(&o.EmbeddingDim, "embedding-dim", sim.DefaultEmbeddingDim, "default length of embedding vectors")
	f.StringSliceVar(&models, "models", nil, "model ids listed by /v1/models (default ponder-sim,ponder-sim-embed)")
	return cmd
}

// exposedWarning says why listening on a, when it is not a loopback
// address, is unwise: the simulator has no authentication, and whoever
// reaches it can run up its CPU (and read which prompts it is sent).
func exposedWarning(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok && ta.IP.IsLoopback() {
		return ""
	}
	return "sim-llm listens on a non-loopback address: other hosts can reach it, and it has no authentication; " +
		"use --addr 127.0.0.1:PORT unless you mean to share it"
}

// checkSimFlags refuses values sim.Options would clamp or misread (in
// Options a probability above 1 means 1 and a negative one 0; NaN slipped
// through as a model that is never right), naming the flag.
func checkSimFlags(o sim.Options) error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"accuracy", o.Accuracy}, {"spread", o.Spread}, {"step-accuracy", o.StepAccuracy},
		{"judge-accuracy", o.JudgeAccuracy}, {"revise-accuracy", o.ReviseAccuracy},
		{"propose-solvable", o.ProposeSolvable}, {"error-429", o.Rate429}, {"error-500", o.Rate500},
		{"error-timeout", o.RateTimeout}, {"error-malformed", o.RateMalformed}} {
		if !(f.v >= 0 && f.v <= 1) {
			return usageError("--%s %v: want a probability in [0, 1]", f.name, f.v)
		}
	}
	if sum := o.Rate429 + o.Rate500 + o.RateTimeout + o.RateMalformed; sum > 1 {
		return usageError("--error-429, --error-500, --error-timeout and --error-malformed add up to %v: want at most 1", sum)
	}
	if o.Latency < 0 || o.Jitter < 0 {
		return usageError("--latency and --jitter must not be negative")
	}
	if o.EmbeddingDim < 1 || o.EmbeddingDim > 65536 {
		return usageError("--embedding-dim %d: want 1..65536", o.EmbeddingDim)
	}
	return nil
}
