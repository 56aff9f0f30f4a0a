package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ponder-rlm/ponder/config"
)

func init() { extraCommands = append(extraCommands, newConfigCmd) }

func newConfigCmd() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the effective configuration (defaults < file < PONDER_* < flags) and validate it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			fields := config.Fields(cfg)
			w := cmd.OutOrStdout()
			if jsonOut {
				m := map[string]any{}
				for _, f := range fields {
					m[f.Path] = f.Value
				}
				if err := printJSON(w, m); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				for _, f := range fields {
					v := fmt.Sprint(f.Value)
					if _, ok := f.Value.([]map[string]any); ok {
						// tools.mcp_servers: as JSON, not Go's struct syntax.
						b, err := json.Marshal(f.Value)
						if err != nil {
							return err
						}
						v = string(b)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", f.Path, v, f.Env)
				}
				tw.Flush()
			}
			return cfg.Validate()
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print as JSON")
	return cmd
}
