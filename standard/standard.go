// Package standard assembles Ponder's built-in parts: every built-in
// strategy and evaluator in one registry, and the task packs. cmd/ponder and
// tests that want "everything Ponder ships" start here.
package standard

import (
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/core/evaluator"
	"github.com/ponder-rlm/ponder/core/strategy"
	"github.com/ponder-rlm/ponder/tasks"
)

// Registry returns a new registry holding every built-in strategy and
// evaluator.
func Registry() *core.Registry {
	reg := core.NewRegistry()
	strategy.Register(reg)
	evaluator.Register(reg)
	return reg
}

// Packs resolves task packs by name (core.EngineOptions.Packs).
func Packs(name string) (core.Pack, error) { return tasks.Get(name) }
