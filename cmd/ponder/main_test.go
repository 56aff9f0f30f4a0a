package main

import (
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/ponder-rlm/ponder/internal/testutil"
)

// Flags Ponder cannot read exit with status 2, as other usage errors do.
func TestBadFlagsAreUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"solve", "--timeout", "soon", "2+2?"},
		{"solve", "--budget-calls", "many", "2+2?"},
		{"solve", "--no-such-flag", "2+2?"},
		{"--llm-concurrency", "lots", "config"},
		{"trace", "list", "--jsn"},
	} {
		r := runPonder(t, "", nil, args...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "ponder: ") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and the error", args, r.code, r.stderr)
		}
	}
}

// A wrong number of arguments, or a subcommand that does not exist, is a
// usage error (status 2) in every command, as the docs promise; cobra
// made it 1, and a group given an unknown subcommand printed its help and
// exited 0. The table must name every command: one added later without a
// row fails here.
func TestWrongArgumentCountIsAUsageError(t *testing.T) {
	t.Parallel()
	wrong := map[string][][]string{
		"ponder":                       {{"no-such-command"}},
		"ponder collections":           {{"lst"}},
		"ponder collections delete":    {{}, {"a", "b"}},
		"ponder collections list":      {{"x"}},
		"ponder completion":            {{"tcsh"}},
		"ponder completion bash":       {{"x"}},
		"ponder completion fish":       {{"x"}},
		"ponder completion powershell": {{"x"}},
		"ponder completion zsh":        {{"x"}},
		"ponder config":                {{"x"}},
		"ponder docs":                  {{"remove"}},
		"ponder docs delete":           {{"x"}},
		"ponder eval":                  {{"runs/x"}},
		"ponder eval report":           {{}, {"a", "b"}},
		"ponder ingest":                {{}},
		"ponder plugins":               {{"lst"}},
		"ponder plugins check":         {{}, {"a", "b"}},
		"ponder plugins install":       {{}, {"a", "b"}},
		"ponder plugins list":          {{"x"}},
		"ponder plugins remove":        {{}, {"a", "b"}},
		"ponder search":                {{}},
		"ponder serve":                 {{"x"}},
		"ponder sim-llm":               {{"x"}},
		"ponder strategies":            {{"x"}},
		"ponder tools":                 {{"run"}},
		"ponder tools call":            {{}, {"a", "b"}},
		"ponder tools list":            {{"x"}},
		"ponder trace":                 {{"show"}},
		"ponder trace get":             {{}, {"a", "b"}},
		"ponder trace list":            {{"x"}},
	}
	// These take any number: a problem's words, trace files, topics.
	anyCount := map[string]bool{"ponder solve": true, "ponder export": true, "ponder trace view": true, "ponder help": true}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if _, ok := wrong[c.CommandPath()]; !ok && !anyCount[c.CommandPath()] {
			t.Errorf("%s: no wrong command line in this test's table", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
	for path, lines := range wrong {
		for _, extra := range lines {
			args := append(strings.Fields(path)[1:], extra...)
			t.Run(strings.Join(append([]string{"ponder"}, args...), " "), func(t *testing.T) {
				t.Parallel()
				r := runPonder(t, "", nil, args...)
				if r.code != 2 || !strings.HasPrefix(r.stderr, "ponder: ") || r.stdout != "" {
					t.Errorf("exit %d, stdout %q, stderr %q; want 2 and the error alone", r.code, r.stdout, r.stderr)
				}
			})
		}
	}
}

// A group with no subcommand named still shows its help, and succeeds.
func TestGroupWithoutSubcommandShowsHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{}, {"trace"}, {"tools"}, {"plugins"}} {
		r := runPonder(t, "", nil, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "Available Commands:") {
			t.Errorf("ponder %v: exit %d, stdout %q, stderr %q; want its help", args, r.code, r.stdout, r.stderr)
		}
	}
	r := runPonder(t, "", nil, "trace", "lst")
	if !strings.Contains(r.stderr, `unknown command "lst" for "ponder trace"; did you mean`) || !strings.Contains(r.stderr, "list") {
		t.Errorf("ponder trace lst: stderr %q, want a suggestion", r.stderr)
	}
}

// A group's usage names its commands ("ponder trace [command]"), not the
// "[flags]" line cobra writes for a runnable command (strictArgs makes
// groups runnable); a command that runs keeps its use line.
func TestUsageLines(t *testing.T) {
	t.Parallel()
	r := runPonder(t, "", nil, "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "Usage:\n  ponder [command]\n\n") {
		t.Errorf("ponder --help: exit %d, stdout %q; want the usage line ponder [command] alone", r.code, r.stdout)
	}
	// The commands that only group others; ponder eval runs and groups.
	groups := map[string]bool{"ponder": true, "ponder collections": true, "ponder completion": true, "ponder docs": true,
		"ponder plugins": true, "ponder tools": true, "ponder trace": true}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		u := c.UsageString()
		usage, _, _ := strings.Cut(strings.TrimPrefix(u, "Usage:\n"), "\n\n")
		var want []string
		if !groups[c.CommandPath()] {
			want = append(want, "  "+c.UseLine())
		}
		if c.HasAvailableSubCommands() {
			want = append(want, "  "+c.CommandPath()+" [command]")
		}
		if got := strings.Split(usage, "\n"); !slices.Equal(got, want) {
			t.Errorf("%s: usage lines %q, want %q", c.CommandPath(), got, want)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
}

// A flag's help shows its value's type (or the name its usage gives in
// backquotes, which pflag takes for the value's name): a usage that quoted
// a command in backquotes read "--plugin-dir ponder plugins" in every
// command's help.
func TestFlagHelpValueNames(t *testing.T) {
	t.Parallel()
	flagName := regexp.MustCompile(`--([a-z0-9][a-z0-9-]*)`)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		fs := c.LocalFlags() // with the persistent flags c defines
		for _, m := range flagName.FindAllStringSubmatch(fs.FlagUsages(), -1) {
			if f := fs.Lookup(m[1]); f != nil && strings.Contains(f.Usage, "`") {
				t.Errorf("%s --%s: usage %q quotes in backquotes, which its help shows as the value's name", c.CommandPath(), f.Name, f.Usage)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
}

// exited waits up to d for cmd to exit and returns its status, or -1 when
// it is still running.
func exited(waited <-chan error, d time.Duration) int {
	select {
	case err := <-waited:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			return -2
		}
		return 0
	case <-time.After(d):
		return -1
	}
}

// The first SIGINT or SIGTERM stops gracefully; when that hangs (here a
// client that never finishes sending its request, which the server waits
// for up to server.shutdown_timeout), a second one quits at once, saying
// so, with the shell's status for the signal. signal.NotifyContext used
// to swallow the second one, and only kill -9 helped. A signal that comes
// right after the first (echo) is the same one delivered twice, as
// timeout(1) sends its SIGTERM to Ponder and then to Ponder's process
// group: it quit at once, without the best answer so far.
func TestSecondSignalQuitsAtOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sig, echo syscall.Signal
		status    int
		says      string
	}{
		{sig: syscall.SIGINT, status: 130, says: "ponder: interrupted again: quitting at once"},
		{sig: syscall.SIGTERM, status: 143, says: "ponder: terminated again: quitting at once"},
		{sig: syscall.SIGTERM, echo: syscall.SIGINT, status: 143, says: "ponder: terminated again: quitting at once"},
	} {
		name := tc.sig.String()
		if tc.echo != 0 {
			name += " twice at once"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data := t.TempDir()
			serving, log, cmd, waited := startServe(t, data, "PONDER_SHUTDOWN_TIMEOUT=2m")
			var m struct{ Addr string }
			_ = json.Unmarshal(serving, &m)
			a := strings.TrimPrefix(m.Addr, "http://")
			// The start says where the data goes.
			if want, _ := json.Marshal(data); !strings.Contains(log.String(), `"data_dir":`+string(want)) {
				t.Errorf("the start does not name the data dir %s:\n%s", data, log.String())
			}
			// A request whose body never comes: its handler waits.
			conn, err := net.Dial("tcp", a)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: "+a+
				"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\""); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond) // the request reaches its handler

			_ = cmd.Process.Signal(tc.sig)
			if tc.echo != 0 {
				_ = cmd.Process.Signal(tc.echo)
			}
			if code := exited(waited, 500*time.Millisecond); code != -1 {
				t.Fatalf("the graceful stop did not wait for the request (exit %d), so nothing here hangs: %s", code, log.String())
			}
			// The log says the shutdown began, and why, by the signal's name
			// (of two sent at once, the kernel delivers the lower-numbered
			// first: either may be the one that counts).
			want := `"signal":"` + map[syscall.Signal]string{syscall.SIGINT: "SIGINT", syscall.SIGTERM: "SIGTERM"}[tc.sig] + `","runs_cancelled":0,`
			if tc.echo != 0 {
				want = `","runs_cancelled":0,`
			}
			if !strings.Contains(log.String(), want) || !strings.Contains(log.String(), `"message":"shutting down"`) {
				t.Errorf("the log does not say the shutdown began (%s):\n%s", want, log.String())
			}
			_ = cmd.Process.Signal(tc.sig)
			code := exited(waited, 10*time.Second)
			if code != tc.status {
				t.Fatalf("after a second %s: exit %d (-1: still running), want %d; stderr:\n%s", tc.sig, code, tc.status, log.String())
			}
			if !strings.Contains(log.String(), tc.says) {
				t.Errorf("stderr does not say %q:\n%s", tc.says, log.String())
			}
		})
	}
}

// Ctrl-C while solve waits for its problem on stdin (a pipe whose writer
// never closes it) ends the wait: reading stdin did not heed it.
func TestSolveInterruptedWhileReadingStdin(t *testing.T) {
	t.Parallel()
	code, log := signalWhileReadingStdin(t, os.Interrupt, []string{"PONDER_LLM_BASE_URL=" + closedPort(t)}, "What is 2+", "solve")
	if code != 130 {
		t.Fatalf("exit %d (-1: still running) after one Ctrl-C, want 130; stderr:\n%s", code, log)
	}
	if !strings.Contains(log, "interrupted while reading the problem from stdin") {
		t.Errorf("stderr does not say what was interrupted:\n%s", log)
	}
}

// signalWhileReadingStdin starts ponder with args and a private data dir,
// writes input to its stdin, a pipe it leaves open until the test is over,
// sends sig once ponder is reading it, and returns the exit status (-1:
// still running 10s later) and stderr.
func signalWhileReadingStdin(t *testing.T, sig os.Signal, env []string, input string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(ponderBin, args...)
	cmd.Env = append(append(cleanEnv(), "PONDER_DATA_DIR="+t.TempDir()), env...)
	cmd.Dir = t.TempDir()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close() })
	var log testutil.LockedBuffer
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	if _, err := io.WriteString(stdin, input); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // ponder is reading stdin
	_ = cmd.Process.Signal(sig)
	return exited(waited, 10*time.Second), log.String()
}

// `ponder config` warns of a PONDER_* variable no setting reads and prints
// no MCP server's secret.
func TestConfigCommandWarnsAndHidesSecrets(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "ponder.yaml")
	yaml := "tools:\n  mcp_servers:\n    - name: gh\n      url: https://example.com/mcp\n      bearer: very-secret-bearer\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runPonder(t, "", []string{"PONDER_LLM_MODLE=x"}, "config", "--config", file)
	if r.code != 0 || !strings.Contains(r.stderr, "ponder: warning: PONDER_LLM_MODLE is not a setting and is ignored; did you mean PONDER_LLM_MODEL?") {
		t.Fatalf("status %d, stderr %q: want a warning naming PONDER_LLM_MODEL", r.code, r.stderr)
	}
	if strings.Contains(r.stdout, "very-secret") || !strings.Contains(r.stdout, `"bearer":"(set)"`) {
		t.Fatalf("tools.mcp_servers printed its secret or not at all:\n%s", r.stdout)
	}
}

// `ponder config` says where each setting came from, flag > env > file >
// default.
func TestConfigCommandSources(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "ponder.yaml")
	if err := os.WriteFile(file, []byte("llm:\n  model: from-file\n  temperature: 0.5\n  concurrency: 2\n  n: no\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runPonder(t, "", []string{"PONDER_LLM_TEMPERATURE=0.2", "PONDER_LLM_CONCURRENCY=5"}, "config", "--config", file, "--llm-concurrency", "3")
	if r.code != 0 {
		t.Fatalf("status %d: %s", r.code, r.stderr)
	}
	for _, want := range [][]string{
		{"llm.model", "from-file", "file", "PONDER_LLM_MODEL"},
		{"llm.n", "no", "file", "PONDER_LLM_N"},
		{"llm.temperature", "0.2", "env", "PONDER_LLM_TEMPERATURE"},
		{"llm.concurrency", "3", "flag", "--llm-concurrency", "PONDER_LLM_CONCURRENCY"},
		{"llm.timeout", "2m0s", "default", "PONDER_LLM_TIMEOUT"},
	} {
		found := false
		for _, line := range strings.Split(r.stdout, "\n") {
			if strings.Join(strings.Fields(line), " ") == strings.Join(want, " ") {
				found = true
			}
		}
		if !found {
			t.Errorf("no line %q in:\n%s", want, r.stdout)
		}
	}
}

// A command that returns its context's error when a signal stops it
// (ingest, tools call) exits with the signal's status and names the
// signal: it exited 1 saying "ingest stopped: context canceled", so a
// service manager or script read a stopped run as a failed one. The one
// signal stops ingest reading a stdin whose writer neither writes more
// nor closes it (`sleep 30 | ponder ingest -` ran until the input ended).
func TestCommandStoppedBySignalExitsWithItsStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sig    syscall.Signal
		status int
		says   string
	}{
		{syscall.SIGINT, 130, "ponder: ingest stopped: interrupted"},
		{syscall.SIGTERM, 143, "ponder: ingest stopped: terminated"},
	} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			t.Parallel()
			code, log := signalWhileReadingStdin(t, tc.sig, nil, "a document that is still being written", "ingest", "-q", "-")
			if code != tc.status {
				t.Fatalf("exit %d (-1: still running) after %s, want %d; stderr:\n%s", code, tc.sig, tc.status, log)
			}
			if !strings.Contains(log, tc.says) {
				t.Errorf("stderr does not say %q:\n%s", tc.says, log)
			}
		})
	}
}
