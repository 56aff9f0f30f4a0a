package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// newServeCmd runs Ponder's HTTP server. The MCP and OpenAI endpoints are
// added by the server package (see serverHandler); without it only /healthz
// answers.
func newServeCmd() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the reasoning server (MCP, OpenAI-compatible API, web trace viewer)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("addr") {
				cfg.Server.Addr = addr
			}
			log := newLogger(cfg.Log, cmd.ErrOrStderr())
			if err := ensureDataDir(cfg.DataDir); err != nil {
				return err
			}
			a, err := newApp(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			defer a.Close()
			mux := http.NewServeMux()
			mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"status":"ok","llm_configured":%t}`+"\n", a.policy != nil)
			})
			ln, err := net.Listen("tcp", cfg.Server.Addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w (is another ponder running? set --addr)", cfg.Server.Addr, err)
			}
			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
			log.Info().Str("addr", "http://"+ln.Addr().String()).Bool("llm", a.policy != nil).Msg("ponder serving")
			if a.policy == nil {
				log.Warn().Msg(errNoLLM.Error())
			}
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc:
				return err
			case <-cmd.Context().Done():
			}
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			log.Info().Msg("ponder stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "listen address (default 127.0.0.1:7800, env PONDER_ADDR)")
	return cmd
}
