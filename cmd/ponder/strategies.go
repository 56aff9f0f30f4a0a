package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/text"
)

func newStrategiesCmd() *cobra.Command {
	var jsonOut, evaluators bool
	cmd := &cobra.Command{
		Use:   "strategies",
		Short: "List reasoning strategies (and evaluators) with their parameters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			a, err := newApp(cmd.Context(), cfg, newLogger(cfg.Log, cmd.ErrOrStderr()))
			if err != nil {
				return err
			}
			defer a.Close()
			w := cmd.OutOrStdout()
			if jsonOut {
				return printJSON(w, map[string]any{"strategies": a.reg.Strategies(), "evaluators": a.reg.Evaluators()})
			}
			for _, s := range a.reg.Strategies() {
				printSpec(w, s.Name, s.Source, s.Summary, s.Params)
			}
			if evaluators {
				fmt.Fprintln(w, "Evaluators:")
				fmt.Fprintln(w)
				for _, e := range a.reg.Evaluators() {
					printSpec(w, e.Name, e.Source, e.Summary, e.Params)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print strategies and evaluators as JSON")
	cmd.Flags().BoolVar(&evaluators, "evaluators", false, "also list evaluators")
	return cmd
}

// specWidth is the width printSpec wraps to: descriptions run to several
// sentences, and a table aligned to the longest one is unreadable.
const specWidth = 100

// printSpec writes a strategy or evaluator: its summary, then each
// parameter with its type, default and range in columns, and its
// description below, wrapped to specWidth.
//
// Plugins write specs: what they say is shown through text.Terminal.
func printSpec(w io.Writer, name, source, summary string, params []core.ParamSpec) {
	name, source, summary = text.Terminal(name), text.Terminal(source), text.Terminal(summary)
	src := ""
	if source != "" && source != "builtin" {
		src = " (" + source + ")"
	}
	fmt.Fprintf(w, "%s%s\n", name, src)
	writeWrapped(w, "  ", summary)
	wName, wType := 0, 0
	for _, p := range params {
		wName, wType = max(wName, len(p.Name)), max(wType, len(p.Type))
	}
	for _, p := range params {
		var extra []string
		if d, ok := p.Default.(string); ok && d == "" {
			extra = append(extra, `default ""`)
		} else if p.Default != nil {
			extra = append(extra, fmt.Sprintf("default %v", p.Default))
		}
		if p.Min != nil {
			extra = append(extra, fmt.Sprintf("min %v", *p.Min))
		}
		if p.Max != nil {
			extra = append(extra, fmt.Sprintf("max %v", *p.Max))
		}
		if len(p.Enum) > 0 {
			extra = append(extra, "one of "+strings.Join(p.Enum, "|"))
		}
		head := fmt.Sprintf("    %-*s  %-*s", wName, p.Name, wType, p.Type)
		if len(extra) > 0 {
			head += "  (" + strings.Join(extra, ", ") + ")"
		}
		fmt.Fprintln(w, text.Terminal(strings.TrimRight(head, " ")))
		writeWrapped(w, "        ", text.Terminal(p.Description))
	}
	fmt.Fprintln(w)
}

// writeWrapped writes text word by word after indent, in lines of at most
// specWidth columns (a longer word gets a line of its own).
func writeWrapped(w io.Writer, indent, text string) {
	line, empty := indent, true
	for _, word := range strings.Fields(text) {
		if !empty && len(line)+1+len(word) > specWidth {
			fmt.Fprintln(w, line)
			line, empty = indent, true
		}
		if !empty {
			line += " "
		}
		line += word
		empty = false
	}
	if !empty {
		fmt.Fprintln(w, line)
	}
}
