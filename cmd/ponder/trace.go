package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/text"
	"github.com/ponder-rlm/ponder/server"
	"github.com/ponder-rlm/ponder/server/ui"
	"github.com/ponder-rlm/ponder/traces"
)

func init() {
	extraCommands = append(extraCommands, newTraceCmd)
}

// newTraceCmd groups the commands over saved traces: view them in the
// browser, list and print them.
func newTraceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "trace",
		Short: "View, list and print the traces of reasoning runs",
		Long: "Every run leaves a trace (docs/trace.md): its structure, every event, usage. `ponder serve` shows live\n" +
			"and recent runs at /ui; `ponder trace view` shows saved ones in the same page without a server.",
	}
	cmd.AddCommand(newTraceViewCmd(), newTraceListCmd(), newTraceGetCmd())
	return cmd
}

func newTraceViewCmd() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "view [FILE|ID]...",
		Short: "Open saved traces in the web viewer (serves on a loopback port until Ctrl-C)",
		Long: "view serves the trace viewer for trace files (from `ponder solve --trace FILE`) or trace ids from the\n" +
			"data directory; with no arguments, every trace in the data directory. It prints a URL to open: it\n" +
			"carries a random access token, so other users of this machine cannot read your traces.",
		Example: "  ponder solve --strategy self-consistency --trace run.json \"What is 17 * 23?\"\n" +
			"  ponder trace view run.json\n" +
			"  ponder trace view 3f2a9c0d4b1e8a77 --addr 127.0.0.1:7801",
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			return runTraceView(cmd.Context(), cmd, cfg, addr, args)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:0", "listen address (port 0: any free port)")
	return cmd
}

func newTraceListCmd() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the traces kept in the data directory, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			st, err := dataStore(cfg)
			if err != nil {
				return err
			}
			list := st.List()
			w := cmd.OutOrStdout()
			if jsonOut {
				return printJSON(w, list)
			}
			if len(list) == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "no traces in %s yet: runs of `ponder serve` and `ponder solve` are kept there\n", traceDir(cfg))
				return nil
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTARTED\tSTATUS\tSTRATEGY\tCALLS\tANSWER\tPROBLEM")
			for _, s := range list {
				// A trace's answer and problem are whatever the model and
				// the client wrote: shown, never obeyed.
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", text.Terminal(s.ID), s.Started.Local().Format("2006-01-02 15:04:05"),
					text.Terminal(string(s.Status)), text.Terminal(s.Strategy), s.Usage.LLMCalls,
					shorten(text.OneLine(text.Terminal(s.Answer)), 20), shorten(text.OneLine(text.Terminal(s.Problem)), 60))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print a JSON array of run summaries")
	return cmd
}

func newTraceGetCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Print a trace from the data directory as JSON (docs/trace.schema.json)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if !isTraceID(args[0]) {
				// A malformed id is a bad command line (exit 2); a
				// well-formed one that is not there is a failure (exit 1,
				// see exitError), as a missing document is for `docs
				// delete`: the trace may have been pushed out since.
				return usageError("%q is not a trace id (16 hex digits, as `ponder trace list` shows them)", args[0])
			}
			st, err := dataStore(cfg)
			if err != nil {
				return err
			}
			t, err := st.Get(args[0])
			if err != nil {
				if errors.Is(err, traces.ErrDamaged) {
					return fmt.Errorf("trace %s is in %s but cannot be read: %w", args[0], traceDir(cfg), err)
				}
				if errors.Is(err, traces.ErrNotFound) {
					return fmt.Errorf("trace %s is not in %s: see `ponder trace list`", args[0], traceDir(cfg))
				}
				return err
			}
			if out != "" {
				return traces.WriteFile(out, t)
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", " ")
			return enc.Encode(t)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the trace to this file instead of stdout")
	return cmd
}

func traceDir(cfg config.Config) string { return filepath.Join(cfg.DataDir, "traces") }

// dataStore opens the data directory's trace store (as `ponder serve`
// keeps it) for reading.
func dataStore(cfg config.Config) (*traces.Store, error) {
	if _, err := os.Stat(traceDir(cfg)); errors.Is(err, os.ErrNotExist) {
		return traces.Open("", cfg.Server.TracesKept, nil) // empty: nothing to list
	}
	return traces.Open(traceDir(cfg), cfg.Server.TracesKept, nil)
}

// runTraceView serves the viewer over the named traces until ctx ends.
func runTraceView(ctx context.Context, cmd *cobra.Command, cfg config.Config, addr string, args []string) error {
	log := newLogger(cfg.Log, cmd.ErrOrStderr())
	st, first, cleanup, err := viewStore(cfg, args, log)
	if err != nil {
		return err
	}
	defer cleanup()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return usageError("listen on %s: %v (pick another --addr)", addr, err)
	}
	token, err := randomToken()
	if err != nil {
		ln.Close()
		return err
	}
	done := make(chan struct{})
	h := ui.Handler(st, &ui.Options{Logger: log, Done: done})
	srv := &http.Server{Handler: viewerGuard(h, token, ln.Addr().(*net.TCPAddr)), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	u := url.URL{Scheme: "http", Host: strings.TrimPrefix(server.ListenURL(addr, ln.Addr()), "http://"), Path: "/ui/", RawQuery: "token=" + token}
	if first != "" {
		u.Fragment = "run=" + first
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Trace viewer: %s\n", u.String())
	fmt.Fprintln(cmd.ErrOrStderr(), "Open the URL in a browser; Ctrl-C stops the viewer.")
	select {
	case err := <-errc:
		close(done)
		return fmt.Errorf("trace viewer: %w", err)
	case <-ctx.Done():
	}
	close(done) // ends the page's event streams, so shutdown does not wait for them
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("stop trace viewer: %w", err)
	}
	<-errc
	return nil
}

// viewStore returns a store holding the traces args name (files or ids in
// the data dir; none: the data dir's store itself), the id to open first,
// and a cleanup.
func viewStore(cfg config.Config, args []string, log zerolog.Logger) (*traces.Store, string, func(), error) {
	if len(args) == 0 {
		st, err := dataStore(cfg)
		if err != nil {
			return nil, "", nil, err
		}
		first := ""
		if l := st.List(); len(l) > 0 {
			first = l[0].ID
		} else {
			log.Warn().Str("dir", traceDir(cfg)).Msg("no traces yet: pass a trace file, or run `ponder solve` or `ponder serve` first")
		}
		return st, first, func() {}, nil
	}
	var data *traces.Store
	var loaded []*core.Trace
	for _, a := range args {
		t, err := traces.ReadFile(a)
		if errors.Is(err, os.ErrNotExist) && isTraceID(a) {
			if data == nil {
				if data, err = dataStore(cfg); err != nil {
					return nil, "", nil, err
				}
			}
			t, err = data.Get(a)
			if errors.Is(err, traces.ErrDamaged) {
				err = fmt.Errorf("trace %s is in %s but cannot be read: %w", a, traceDir(cfg), err)
			} else if errors.Is(err, traces.ErrNotFound) {
				err = fmt.Errorf("trace %s is not in %s: see `ponder trace list`", a, traceDir(cfg))
			}
		} else if errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("%s: no such file, and not a trace id (16 hex digits) either", a)
		}
		if err != nil {
			// Exit 1: what the command line names is missing or
			// unreadable; the command line itself is fine.
			return nil, "", nil, err
		}
		loaded = append(loaded, t)
	}
	// The viewer reads from a store: a private temporary one holds the
	// named traces for as long as it runs.
	dir, err := os.MkdirTemp("", "ponder-trace-view-")
	if err != nil {
		return nil, "", nil, fmt.Errorf("trace view: %w", err)
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	st, err := traces.Open(dir, len(loaded)+1, &traces.Options{Logger: log})
	if err != nil {
		cleanup()
		return nil, "", nil, err
	}
	seen := map[string]bool{}
	for _, t := range loaded {
		// A file's id names it in the store: one that is no trace id
		// ("../../x" wrote outside the store), or that two files share,
		// is replaced for the viewer, which does not write the file.
		if !traces.ValidID(t.ID) || seen[t.ID] {
			t.ID = core.NewTraceID()
		}
		seen[t.ID] = true
		st.Finish(t)
	}
	return st, loaded[0].ID, cleanup, nil
}

func isTraceID(s string) bool {
	if len(s) != 16 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

func randomToken() (string, error) {
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make access token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// viewerGuard protects `ponder trace view`: a request must name this
// server in Host (no DNS rebinding) and carry the access token, as
// ?token= (which sets the viewer's login cookie, not the token, and
// redirects to drop it from the address bar), that cookie, or a bearer token.
func viewerGuard(next http.Handler, token string, at *net.TCPAddr) http.Handler {
	logins := server.NewUISessions()
	port := fmt.Sprint(at.Port)
	anyHost := at.IP.IsUnspecified()
	hostOK := func(h string) bool {
		if anyHost {
			return true // the token alone guards a server bound to every interface
		}
		host, p, err := net.SplitHostPort(h)
		if err != nil || p != port {
			return false
		}
		ip := net.ParseIP(host)
		return host == "localhost" || (ip != nil && (ip.IsLoopback() || ip.Equal(at.IP)))
	}
	same := func(s string) bool { return subtle.ConstantTimeCompare([]byte(s), []byte(token)) == 1 }
	deny := func(w http.ResponseWriter, status int, msg string) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		io.WriteString(w, msg+"\n")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hostOK(r.Host) {
			deny(w, http.StatusMisdirectedRequest, fmt.Sprintf("host %q is not this trace viewer: open the URL `ponder trace view` printed", r.Host))
			return
		}
		if r.URL.Path == "/" {
			// The login cookie is scoped to /ui: / only sends there
			// (with its ?token=, if any).
			u := url.URL{Path: "/ui/", RawQuery: r.URL.RawQuery}
			http.Redirect(w, r, u.RequestURI(), http.StatusFound)
			return
		}
		if q := r.URL.Query(); q.Has("token") {
			if !same(q.Get("token")) {
				deny(w, http.StatusForbidden, "wrong token: open the URL `ponder trace view` printed")
				return
			}
			logins.Login(w, r)
			q.Del("token")
			u := *r.URL
			u.RawQuery = q.Encode()
			http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
			return
		}
		bearer, hasBearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !logins.Valid(r) && !(hasBearer && same(bearer)) {
			deny(w, http.StatusUnauthorized, "this trace viewer needs its access token: open the URL `ponder trace view` printed")
			return
		}
		next.ServeHTTP(w, r)
	})
}
