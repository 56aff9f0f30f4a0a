package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/plugins"
	"github.com/ponder-rlm/ponder/retrieval"
	"github.com/ponder-rlm/ponder/sdk"
	"github.com/ponder-rlm/ponder/standard"
	"github.com/ponder-rlm/ponder/tools"
)

// pluginDirFlag is --plugin-dir (a persistent flag of the root command):
// more directories to load plugins from, searched before the configured
// ones and the data dir.
var pluginDirFlag []string

func init() {
	extraCommands = append(extraCommands, newPluginsCmd)
	lastAppHooks = append(lastAppHooks, pluginsHook)
}

// pluginDirs lists where plugins are found: --plugin-dir, then
// plugins.dirs (PONDER_PLUGIN_DIRS), then DataDir/plugins, where
// `ponder plugins install` puts them. The first plugin of a name wins.
func pluginDirs(cfg config.Config) []string {
	dirs := append([]string(nil), pluginDirFlag...)
	dirs = append(dirs, cfg.Plugins.Dirs...)
	return append(dirs, installDir(cfg))
}

func installDir(cfg config.Config) string { return filepath.Join(cfg.DataDir, "plugins") }

func pluginOptions(cfg config.Config, log zerolog.Logger) *plugins.Options {
	return &plugins.Options{Dirs: pluginDirs(cfg), Eager: cfg.Plugins.Start == "eager", CallTimeout: cfg.Plugins.CallTimeout,
		AbandonGrace: cfg.Plugins.AbandonGrace, Logger: log,
		Taken: func(kind sdk.Kind, name string) string { return builtinNamed(cfg, kind, name) }}
}

// builtinNamed names the built-in of kind that has name ("the built-in
// strategy cot"), or "" for none: serve and solve register every built-in
// first and skip a plugin of the same name, so install refuses it and
// list and check say so. A built-in tool turned off with tools.disabled
// leaves its name free (a plugin may stand in for it).
func builtinNamed(cfg config.Config, kind sdk.Kind, name string) string {
	reg := standard.Registry()
	switch kind {
	case sdk.KindStrategy:
		if _, err := reg.Strategy(name); err == nil {
			return "the built-in strategy " + name
		}
	case sdk.KindEvaluator:
		if reg.HasEvaluator(name) {
			return "the built-in evaluator " + name
		}
	case sdk.KindTool:
		switch name {
		case "calc", "python":
			for _, d := range cfg.Tools.Disabled {
				if strings.TrimSpace(d) == name {
					return ""
				}
			}
			return "the built-in tool " + name
		case retrieval.ToolName:
			return "the built-in tool " + name
		}
	}
	return ""
}

// pluginsHook discovers the installed plugins and adds them to the app:
// strategies and evaluators to the registry (Source = plugin name), tools
// to the toolbox. Plugins start on first use (or now, with
// plugins.start: eager) and are stopped when the app closes.
func pluginsHook(ctx context.Context, a *app) error {
	mgr := plugins.New(pluginOptions(a.cfg, a.log))
	a.closers = append(a.closers, mgr.Close)
	mgr.Load() // problems are logged; good plugins still load
	mgr.Register(a.reg)
	if ts := mgr.Tools(); len(ts) > 0 {
		if err := addPluginTools(a, ts); err != nil {
			return err
		}
	}
	if a.cfg.Plugins.Start == "eager" {
		if err := mgr.Start(ctx); err != nil {
			a.log.Warn().Err(err).Msg("plugins that did not start are retried on first use")
		}
	}
	return nil
}

// addPluginTools registers plugin tools in the app's toolbox: the tools
// registry when there is one (Register), else a toolbox of their own.
func addPluginTools(a *app, ts []core.Tool) error {
	switch tb := a.tools.(type) {
	case nil:
		// No toolbox (the tools hook runs first and always makes one; this
		// is for an app built without it).
		reg := tools.NewRegistry(&tools.Options{Logger: a.log})
		a.tools = reg
		registerPluginTools(a, reg, ts)
	case *tools.Registry:
		registerPluginTools(a, tb, ts)
	case *toolList:
		tb.add(ts)
	default:
		l := &toolList{base: tb, byName: map[string]core.Tool{}}
		l.add(ts)
		a.tools = l
	}
	return nil
}

// registerPluginTools adds plugin tools to the tools registry, which
// validates their arguments against the schema from the manifest and caps
// their output. The plugin host stops a call at plugins.call_timeout,
// saying so (and restarts a plugin that keeps running it); the registry's
// own limit comes later, only for a host that does not.
func registerPluginTools(a *app, reg *tools.Registry, ts []core.Tool) {
	limit := a.cfg.Plugins.CallTimeout
	if limit <= 0 {
		limit = plugins.DefaultCallTimeout // what the host applies then
	}
	for _, t := range ts {
		if err := reg.Register(t, &tools.ToolOptions{Timeout: limit + 5*time.Second}); err != nil {
			a.log.Warn().Err(err).Str("plugin", t.Spec().Name).Msg("plugin tool not added")
		}
	}
}

// toolList is a toolbox of plugin tools, in front of another toolbox
// (tools of the base win on a name clash).
type toolList struct {
	base   core.Toolbox
	byName map[string]core.Tool
	order  []string
}

func (l *toolList) add(ts []core.Tool) {
	for _, t := range ts {
		name := t.Spec().Name
		if _, dup := l.byName[name]; dup {
			continue
		}
		if l.base != nil {
			if _, clash := l.base.Tool(name); clash {
				continue
			}
		}
		l.byName[name] = t
		l.order = append(l.order, name)
	}
}

// Tool implements core.Toolbox.
func (l *toolList) Tool(name string) (core.Tool, bool) {
	if l.base != nil {
		if t, ok := l.base.Tool(name); ok {
			return t, true
		}
	}
	t, ok := l.byName[name]
	return t, ok
}

// Specs implements core.Toolbox.
func (l *toolList) Specs() []core.ToolSpec {
	var out []core.ToolSpec
	if l.base != nil {
		out = l.base.Specs()
	}
	for _, n := range l.order {
		out = append(out, l.byName[n].Spec())
	}
	return out
}

func newPluginsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugins",
		Short: "List, check, install and remove plugins (tools, evaluators and strategies in their own processes)",
		Long: "Plugins add tools, evaluators and search strategies to Ponder as separate programs built with the\n" +
			"Go SDK (github.com/ponder-rlm/ponder/sdk). They live in DATA_DIR/plugins, in plugins.dirs\n" +
			"(PONDER_PLUGIN_DIRS) and in --plugin-dir; each is checked against its sha256 before it starts.\n" +
			"See docs/plugins.md.",
	}
	cmd.AddCommand(newPluginsListCmd(), newPluginsCheckCmd(), newPluginsInstallCmd(), newPluginsRemoveCmd())
	return cmd
}

// pluginRow is one line of `ponder plugins list`.
type pluginRow struct {
	Name    string   `json:"name"`
	Kind    sdk.Kind `json:"kind"`
	Version string   `json:"version"`
	State   string   `json:"state"`
	Dir     string   `json:"dir"`
	Summary string   `json:"summary,omitempty"`
	Error   string   `json:"error,omitempty"`
	// ShadowedBy is the directory of the plugin of the same name that is
	// used instead of this one (found first).
	ShadowedBy string `json:"shadowed_by,omitempty"`
}

// binaryState is list's state of a plugin whose binary is not fit to
// start, with why; "" when it is.
func binaryState(m plugins.Manifest) (state, why string) {
	err := plugins.VerifyBinary(m)
	switch {
	case err == nil:
		return "", ""
	case errors.Is(err, plugins.ErrChecksum):
		return "checksum mismatch", oneLine(err)
	case errors.Is(err, plugins.ErrNotExecutable):
		return "not executable", oneLine(err)
	}
	return "refused", oneLine(err)
}

func newPluginsListCmd() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List installed plugins: name, kind, version and state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			found, problems := plugins.Discover(pluginDirs(cfg))
			var rows []pluginRow
			for _, m := range found {
				row := pluginRow{Name: m.Name, Kind: m.Kind, Version: m.Version, Dir: m.Dir, Summary: m.Summary, State: "ready"}
				if state, why := binaryState(m); state != "" {
					row.State, row.Error = state, why
				} else if by := builtinNamed(cfg, m.Kind, m.Name); by != "" {
					// Installed before the built-in came (or while
					// tools.disabled freed its name): never loaded.
					row.State, row.Error = "name taken", fmt.Sprintf("%s has its name: serve and solve skip this plugin; rename it and install it again", by)
				}
				rows = append(rows, row)
			}
			for _, p := range problems {
				var sh *plugins.ShadowedError
				if errors.As(p, &sh) {
					// A good plugin, unused: one of its name comes
					// first. It is listed as itself, so that an author
					// sees which copy serve and solve run.
					m := sh.Manifest
					rows = append(rows, pluginRow{Name: m.Name, Kind: m.Kind, Version: m.Version, Dir: m.Dir, Summary: m.Summary,
						State: "shadowed", ShadowedBy: sh.By,
						Error: fmt.Sprintf("not used: shadowed by the %s in %s, which is found first (--plugin-dir, then plugins.dirs, then DATA_DIR/plugins)", m.Name, sh.By)})
					continue
				}
				rows = append(rows, pluginRow{Name: "?", State: "invalid", Error: oneLine(p)})
			}
			w := cmd.OutOrStdout()
			if jsonOut {
				if rows == nil {
					rows = []pluginRow{}
				}
				return printJSON(w, map[string]any{"plugins": rows, "dirs": pluginDirs(cfg)})
			}
			if len(rows) == 0 {
				fmt.Fprintf(w, "no plugins installed (searched %v); install one with `ponder plugins install PATH`\n", pluginDirs(cfg))
				return nil
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tKIND\tVERSION\tSTATE\tDIR")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.Kind, r.Version, r.State, r.Dir)
			}
			tw.Flush()
			for _, r := range rows {
				if r.Error != "" {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s\n", r.Name, r.Error)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the plugins as JSON")
	return cmd
}

func newPluginsCheckCmd() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "check PATH|NAME",
		Short: "Check a plugin binary or an installed plugin: checksum, handshake, describe and a test call",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			target, err := checkTarget(cfg, args[0], cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			log := newLogger(cfg.Log, cmd.ErrOrStderr())
			rep, err := plugins.Check(cmd.Context(), target, pluginOptions(cfg, log))
			if err != nil {
				return fmt.Errorf("check failed: %w", err)
			}
			// The check ran the plugin on its own; serve and solve would
			// skip it.
			var taken error
			if by := builtinNamed(cfg, rep.Manifest.Kind, rep.Manifest.Name); by != "" {
				taken = fmt.Errorf("check failed: plugin %s: %w by %s: serve and solve skip it; rename it", rep.Manifest.Name, plugins.ErrNameTaken, by)
			}
			w := cmd.OutOrStdout()
			if jsonOut {
				if err := printJSON(w, rep); err != nil {
					return err
				}
				return taken
			}
			m := rep.Manifest
			fmt.Fprintf(w, "binary     %s (sha256 %s)\n", m.Path(), m.SHA256)
			if rep.Installed {
				fmt.Fprintf(w, "checksum   matches the manifest\n")
			} else {
				fmt.Fprintf(w, "checksum   not installed (install with `ponder plugins install %s`)\n", asPath(args[0]))
			}
			fmt.Fprintf(w, "handshake  ok: protocol %d, ready in %.1f ms\n", m.ProtocolVersion, rep.ReadyMS)
			fmt.Fprintf(w, "describe   %s\n", describe(m))
			for _, p := range m.Params {
				fmt.Fprintf(w, "           param %s (%s, %s): %s\n", p.Name, p.Type, paramDefault(p.Default), p.Description)
			}
			fmt.Fprintf(w, "test call  %s\n", rep.TestCall)
			if taken != nil {
				return taken
			}
			fmt.Fprintln(w, "ok")
			return nil
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the report as JSON")
	return cmd
}

// isPath says whether a command-line argument is a file's path rather
// than a plugin's name: one with a slash (./upper, bin/plugins/upper),
// "." or "..". A plugin's name never has one, so "upper" is the installed
// plugin upper even where the folder holds a file named upper (the
// tutorial's does: `go build -o upper`), and "./upper" is that file.
func isPath(arg string) bool {
	return strings.ContainsRune(arg, '/') || strings.ContainsRune(arg, filepath.Separator) || arg == "." || arg == ".."
}

// asPath writes a file named by a bare name as a path (upper: ./upper),
// for the commands check suggests.
func asPath(arg string) string {
	if isPath(arg) {
		return arg
	}
	return "." + string(filepath.Separator) + arg
}

// installedPlugin is the plugin named name that serve and solve would
// load (the first found), if any.
func installedPlugin(cfg config.Config, name string) (plugins.Manifest, bool) {
	found, _ := plugins.Discover(pluginDirs(cfg))
	for _, m := range found {
		if m.Name == name {
			return m, true
		}
	}
	return plugins.Manifest{}, false
}

// checkTarget is what `plugins check ARG` checks: a path (see isPath) is
// that file or plugin directory; a bare name is the installed plugin of
// that name, or, when none has it, the file of that name in this folder.
// When both exist, the installed plugin is checked and note says how to
// check the file instead.
func checkTarget(cfg config.Config, arg string, note io.Writer) (string, error) {
	_, statErr := os.Stat(arg)
	if isPath(arg) {
		if errors.Is(statErr, os.ErrNotExist) {
			// Exit 1, as for a missing trace or document: the command
			// line is fine, what it names is not there.
			return "", fmt.Errorf("plugin %s: no such file or directory", arg)
		}
		return arg, nil
	}
	if m, ok := installedPlugin(cfg, arg); ok {
		if statErr == nil {
			fmt.Fprintf(note, "note: checking the installed plugin %s (%s), not the file %s in this folder; to check that file, run `ponder plugins check %s`\n",
				arg, m.Dir, arg, asPath(arg))
		}
		return m.Dir, nil
	}
	if statErr != nil {
		return "", fmt.Errorf("plugin %q: no installed plugin of that name and no such file here (see `ponder plugins list`)", arg)
	}
	return arg, nil
}

// describe is check's line on what a plugin says it is: kind, name,
// version and its summary, when it has one.
func describe(m plugins.Manifest) string {
	s := fmt.Sprintf("%s %q version %s", m.Kind, m.Name, m.Version)
	if m.Summary != "" {
		s += ": " + m.Summary
	}
	return s
}

// paramDefault says what a parameter defaults to in check's listing; an
// empty string is shown quoted (it read "(string, default )").
func paramDefault(v any) string {
	switch v := v.(type) {
	case nil:
		return "no default"
	case string:
		if v == "" || strings.TrimSpace(v) != v {
			return fmt.Sprintf("default %q", v)
		}
	}
	return fmt.Sprintf("default %v", v)
}

func newPluginsInstallCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "install PATH",
		Short: "Install a plugin binary: copy it into the plugin directory and write its manifest with its sha256",
		Example: `  go build -o bin/plugins/wordcount ./examples/plugins/wordcount
  ponder plugins install bin/plugins/wordcount`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if dir == "" {
				dir = installDir(cfg)
				if err := ensureDataDir(cfg.DataDir); err != nil {
					return err
				}
			}
			if _, err := os.Stat(args[0]); err != nil && !isPath(args[0]) {
				// install takes a binary's path, a bare name a file in
				// this folder; one that is not here may be meant as an
				// installed plugin's name.
				if m, ok := installedPlugin(cfg, args[0]); ok {
					return fmt.Errorf("install failed: no file %s in this folder; %s is the name of the plugin installed in %s: install takes the path of a plugin binary (a new build, e.g. %s)",
						args[0], args[0], m.Dir, asPath(args[0]))
				}
			}
			log := newLogger(cfg.Log, cmd.ErrOrStderr())
			m, err := plugins.Install(cmd.Context(), args[0], dir, pluginOptions(cfg, log))
			if err != nil {
				return fmt.Errorf("install failed: %w", err)
			}
			printInstalled(cmd.OutOrStdout(), m)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "plugin directory to install into (default DATA_DIR/plugins)")
	return cmd
}

func printInstalled(w io.Writer, m plugins.Manifest) {
	fmt.Fprintf(w, "installed %s %s (%s) in %s\nsha256 %s\n", m.Name, m.Version, m.Kind, m.Dir, m.SHA256)
	switch m.Kind {
	case sdk.KindStrategy:
		fmt.Fprintf(w, "use it:  ponder solve --strategy %s \"PROBLEM\"\n", m.Name)
	case sdk.KindTool:
		fmt.Fprintf(w, "try it:  ponder tools call %s --args '{...}'\nuse it:  ponder solve --strategy react --tools %s \"PROBLEM\"\n", m.Name, m.Name)
	case sdk.KindEvaluator:
		fmt.Fprintf(w, "use it:  as an evaluator parameter of a strategy, e.g. --param evaluator=%s\n", m.Name)
	}
}

// removeHint names the command that removes the plugin at path (its
// directory, or its binary there), or says where to find names.
func removeHint(cfg config.Config, path string) string {
	m, err := plugins.ReadManifest(path)
	if err != nil {
		m, err = plugins.ReadManifest(filepath.Dir(path))
		if err == nil && m.Binary != filepath.Base(path) {
			err = errors.New("not its binary")
		}
	}
	if err != nil {
		return " (see `ponder plugins list`)"
	}
	if def, _ := filepath.Abs(installDir(cfg)); filepath.Dir(m.Dir) == def {
		return fmt.Sprintf(": run `ponder plugins remove %s`", m.Name)
	}
	return fmt.Sprintf(": run `ponder plugins remove --dir %s %s`", filepath.Dir(m.Dir), m.Name)
}

func newPluginsRemoveCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove an installed plugin",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			name := args[0]
			if isPath(name) {
				// remove deletes an installed plugin, by name; it never
				// takes a path, lest a file be mistaken for a plugin.
				return usageError("plugin %s: remove takes an installed plugin's name, not a path%s", name, removeHint(cfg, name))
			}
			if err := sdk.ValidName(name); err != nil {
				return usageError("plugin %v", err)
			}
			if dir == "" {
				dir = installDir(cfg)
			}
			if err := plugins.Remove(dir, name); err != nil {
				// Not installed there is exit 1, as for a missing trace or
				// document; say where a plugin of that name is, if
				// anywhere (--plugin-dir, plugins.dirs).
				if errors.Is(err, plugins.ErrNotInstalled) {
					found, _ := plugins.Discover(pluginDirs(cfg))
					abs, _ := filepath.Abs(dir)
					for _, m := range found {
						if m.Name == name && filepath.Dir(m.Dir) != abs {
							return fmt.Errorf("%w; it is in %s (remove it with --dir %s)", err, m.Dir, filepath.Dir(m.Dir))
						}
					}
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", name)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "plugin directory to remove it from (default DATA_DIR/plugins)")
	return cmd
}
