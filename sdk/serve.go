package sdk

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/rs/zerolog"
)

// Serve runs p as a plugin until the host stops it; call it from main. A
// binary run by hand (not by Ponder) prints how to install it and exits
// with status 1, as does a Plugin that fails Validate.
func Serve(p Plugin) {
	if err := p.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		self := filepath.Base(os.Args[0])
		path := selfPath(os.Args[0], os.Executable)
		fmt.Fprintf(os.Stderr, "%s is a Ponder %s plugin: it runs under Ponder, not by hand.\n"+
			"Install it with:  ponder plugins install %s\nCheck it with:    ponder plugins check %s\n",
			self, p.Kind(), path, path)
		os.Exit(1)
	}
	plugin.Serve(ServeConfig(p))
}

// selfPath is how the commands Serve prints name this binary: as it was
// run when that was a path, else (found on PATH) by where it is, since a
// bare word means an installed plugin to `ponder plugins check`.
func selfPath(arg0 string, executable func() (string, error)) string {
	if strings.ContainsRune(arg0, os.PathSeparator) {
		return arg0
	}
	if exe, err := executable(); err == nil {
		return exe
	}
	return "." + string(os.PathSeparator) + arg0
}

// ServeConfig is the go-plugin configuration Serve uses, for tests that
// serve a plugin in-process (plugin.ServeConfig.Test).
func ServeConfig(p Plugin) *plugin.ServeConfig {
	return &plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{string(p.Kind()): &goPlugin{kind: p.Kind(), impl: p}},
		GRPCServer:      plugin.DefaultGRPCServer,
		// go-plugin's own messages, as JSON lines the host relays.
		Logger: hclog.New(&hclog.LoggerOptions{Output: os.Stderr, JSONFormat: true, Level: hclog.Warn}),
	}
}

// Logger returns a logger for plugin code: JSON lines on stderr, which the
// host relays into its own log with the plugin's name. Never write to
// stdout: go-plugin uses it for the handshake. It is a pointer so that
// calls chain: sdk.Logger().Info().Str("k", v).Msg("...").
func Logger() *zerolog.Logger {
	l := zerolog.New(os.Stderr).With().Timestamp().Logger()
	return &l
}
