// Package plugins is the host side of Ponder's plugins: tools, evaluators
// and strategies that run as child processes (hashicorp/go-plugin over
// gRPC with AutoMTLS), written with package sdk.
//
// A Manager discovers installed plugins (a directory per plugin holding
// manifest.json and the binary), starts each on first use (or at once,
// Eager) after go-plugin's SecureConfig verified its sha256, watches it
// with health checks, restarts it with backoff after a crash, bounds
// every tool and evaluator call by CallTimeout, restarts a plugin that
// keeps running calls the host gave up on (AbandonGrace), relays its stderr into
// zerolog with its name, and stops every child on Close. Its adapters put
// plugins in Ponder's registries next to the built-ins:
//
//	mgr := plugins.New(&plugins.Options{Dirs: []string{filepath.Join(dataDir, "plugins")}, Logger: log})
//	defer mgr.Close()
//	mgr.Load()                 // problems are logged and returned
//	mgr.Register(reg)          // strategies and evaluators, Source = plugin name
//	for _, t := range mgr.Tools() {
//		toolbox.Register(t, nil) // core.Tool
//	}
//
// A strategy plugin searches through the run's core.Env (see HostStrategy):
// its policy, evaluator, tool, retrieval and nested-solve calls are the
// host's own, metered by the run's budget; a plugin that ignores a spent
// budget is stopped by the host. Install and Check are what `ponder plugins
// install` and `ponder plugins check` do.
package plugins
