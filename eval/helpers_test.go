package eval

import (
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/llm"
	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/llm/sim/simtest"
	"github.com/ponder-rlm/ponder/standard"
	"github.com/ponder-rlm/ponder/tools"
	"github.com/ponder-rlm/ponder/tools/calc"
)

// newEngine returns an engine asking the LLM at url with every built-in
// strategy, the eval packs and the calc tool.
func newEngine(t testing.TB, url string) *core.Engine {
	t.Helper()
	c := config.Default().LLM
	c.BaseURL = url
	c.MaxRetries = 0
	c.Timeout = 10 * time.Second
	pol, err := llm.New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	tb := tools.NewRegistry(nil)
	if err := tb.Register(calc.New(nil), nil); err != nil {
		t.Fatal(err)
	}
	return core.NewEngine(pol, standard.Registry(), &core.EngineOptions{Concurrency: 8, Packs: Packs(standard.Packs), Tools: tb})
}

// simEngine starts the simulator and returns an engine on it.
func simEngine(t testing.TB, opts sim.Options) *core.Engine {
	t.Helper()
	return newEngine(t, simtest.Start(t, opts))
}

func loadNamed(t testing.TB, name string) *Dataset {
	t.Helper()
	d, err := LoadDataset(name, nil)
	if err != nil {
		t.Skip(err)
	}
	return d
}
