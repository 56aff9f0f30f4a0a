package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ponder-rlm/ponder/core"
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

func printSpec(w io.Writer, name, source, summary string, params []core.ParamSpec) {
	src := ""
	if source != "" && source != "builtin" {
		src = " (" + source + ")"
	}
	fmt.Fprintf(w, "%s%s\n  %s\n", name, src, summary)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, p := range params {
		def := ""
		if p.Default != nil {
			def = fmt.Sprintf("default %v", p.Default)
		}
		var rng []string
		if p.Min != nil {
			rng = append(rng, fmt.Sprintf("min %v", *p.Min))
		}
		if p.Max != nil {
			rng = append(rng, fmt.Sprintf("max %v", *p.Max))
		}
		if len(p.Enum) > 0 {
			rng = append(rng, "one of "+strings.Join(p.Enum, "|"))
		}
		extra := strings.Join(append([]string{def}, rng...), ", ")
		fmt.Fprintf(tw, "    %s\t%s\t%s\t(%s)\n", p.Name, p.Type, p.Description, strings.Trim(extra, ", "))
	}
	tw.Flush()
	fmt.Fprintln(w)
}
