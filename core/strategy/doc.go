// Package strategy holds Ponder's built-in search strategies. Register adds
// them to a core.Registry:
//
//	reg := core.NewRegistry()
//	strategy.Register(reg)
//
// Each strategy documents its parameters in its StrategySpec; `ponder
// strategies` prints them.
package strategy
