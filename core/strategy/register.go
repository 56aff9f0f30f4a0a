package strategy

import "github.com/ponder-rlm/ponder/core"

// Register adds every built-in strategy to reg.
func Register(reg *core.Registry) {
	for _, s := range specs() {
		reg.RegisterStrategy(s)
	}
}

// specs lists the built-in strategies; each file adds its own through
// builtins.
func specs() []core.StrategySpec {
	out := make([]core.StrategySpec, 0, len(builtins))
	for _, f := range builtins {
		out = append(out, f())
	}
	return out
}

// builtins is filled by the init functions of this package's files, one per
// strategy, so adding a strategy touches only its own file.
var builtins []func() core.StrategySpec
