package main

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ponder-rlm/ponder/config"
)

func init() { extraCommands = append(extraCommands, newConfigCmd) }

func newConfigCmd() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the effective configuration (defaults < file < PONDER_* < flags), where each setting came from, and validate it",
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
				sources, err := settingSources(cmd, fields)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				for i, f := range fields {
					v := fmt.Sprint(f.Value)
					if _, ok := f.Value.([]map[string]any); ok {
						// tools.mcp_servers: as JSON, not Go's struct syntax.
						b, err := json.Marshal(f.Value)
						if err != nil {
							return err
						}
						v = string(b)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Path, v, sources[i], f.Env)
				}
				tw.Flush()
			}
			return cfg.Validate()
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print as JSON (settings and values only)")
	return cmd
}

// globalFlags are the settings a flag of every command sets.
var globalFlags = map[string]string{"log.level": "log-level", "log.format": "log-format", "data_dir": "data-dir",
	"llm.base_url": "llm-url", "llm.model": "model", "llm.concurrency": "llm-concurrency"}

// settingSources says where each of fields (the effective configuration's,
// in Fields' order) came from: a flag, its variable, the config file, or
// the default. A file's value equal to the default reads as the default.
func settingSources(cmd *cobra.Command, fields []config.Field) ([]string, error) {
	fileOnly, err := config.Load(g.configPath, nil)
	if err != nil {
		return nil, err
	}
	inFile, defaults := config.Fields(fileOnly), config.Fields(config.Default())
	env := map[string]bool{}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		env[k] = true
	}
	out := make([]string, len(fields))
	for i, f := range fields {
		switch {
		case globalFlags[f.Path] != "" && cmd.Flags().Changed(globalFlags[f.Path]):
			out[i] = "flag --" + globalFlags[f.Path]
		case f.Env != "" && env[f.Env]:
			out[i] = "env"
		case !reflect.DeepEqual(inFile[i].Value, defaults[i].Value):
			out[i] = "file"
		default:
			out[i] = "default"
		}
	}
	return out, nil
}
