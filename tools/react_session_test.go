package tools_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/tools/toolstest"
)

var secretRE = regexp.MustCompile(`secret (\d+)`)

// TestReActSessionLifetime runs two react runs at once, with real python
// in the sandbox, whose model names the same session ("main") in both:
// each run stores its secret in x and leaves a process running in its
// session, both runs wait for each other, then each prints x. A run must
// see only its own x, and when the runs end (answer, failure or
// cancellation) their sessions' processes must be gone.
func TestReActSessionLifetime(t *testing.T) {
	t.Parallel()
	marker := fmt.Sprintf("ponder-react-session-%d", time.Now().UnixNano())
	tests := []struct {
		name    string
		session string // the react parameter
		end     string // how the run ends: answer, fail, cancel
	}{
		{name: "own session", session: "true", end: "answer"},
		{name: "no session", session: "false", end: "answer"},
		{name: "run fails", session: "true", end: "fail"},
		{name: "run cancelled", session: "true", end: "cancel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			box, sb := toolbox(t)
			mark := marker + "-" + strings.ReplaceAll(tt.name, " ", "-")
			var stored, release sync.WaitGroup
			stored.Add(2)
			release.Add(1)
			var mu sync.Mutex
			alive := map[string]int{} // processes of the run's session seen while it ran
			offered := ""
			fake := toolstest.Start(t, func(r toolstest.Request) toolstest.Reply {
				secret := secretRE.FindStringSubmatch(r.Messages[1].Content)[1]
				switch r.Turns() {
				case 0:
					mu.Lock()
					for _, tool := range r.Tools {
						if tool.Function.Name == "python" {
							offered = string(tool.Function.Parameters)
						}
					}
					mu.Unlock()
					code := fmt.Sprintf("x = %s\nimport subprocess, sys\n"+
						"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(1000)', '%s-%s'])", secret, mark, secret)
					return toolstest.Call("python", fmt.Sprintf(`{"code":%q,"session":"main"}`, code))
				case 1:
					// The child may take a few milliseconds to show up (without a
					// session it died with its one-off sandbox).
					for t0 := time.Now(); tt.session == "true" && len(toolstest.ProcessesWith(mark+"-"+secret)) == 0 && time.Since(t0) < 2*time.Second; {
						time.Sleep(5 * time.Millisecond)
					}
					mu.Lock()
					alive[secret] = len(toolstest.ProcessesWith(mark + "-" + secret))
					mu.Unlock()
					stored.Done()
					stored.Wait() // both runs have stored their x
					switch tt.end {
					case "fail":
						return toolstest.Reply{Status: 400, Text: "no"}
					case "cancel":
						release.Wait()
					}
					return toolstest.Call("python", `{"code":"print(x)","session":"main"}`)
				}
				return toolstest.Text(`\boxed{` + strings.TrimSpace(r.LastToolResult()) + `}`)
			})
			t.Cleanup(func() {
				if tt.end == "cancel" {
					release.Done()
				}
			})
			eng := newEngine(t, fake.URL, box, nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.end == "cancel" {
				go func() {
					stored.Wait()
					time.Sleep(100 * time.Millisecond) // both runs wait for the LLM
					cancel()
				}()
			}
			secrets := []string{"1111", "2222"}
			results := make([]core.Result, len(secrets))
			errs := make([]error, len(secrets))
			var wg sync.WaitGroup
			for i, s := range secrets {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i], errs[i] = eng.Solve(ctx, core.Task{Problem: "secret " + s, Strategy: "react",
						Tools: []string{"python"}, Params: core.Params{"session": tt.session, "mode": "native"}})
				}()
			}
			wg.Wait()
			for i, s := range secrets {
				res, other := results[i], secrets[1-i]
				switch {
				case tt.end != "answer":
					if errs[i] == nil && res.Stopped == core.StopDone {
						t.Errorf("run %s: ended %s, want it to fail", s, res.Stopped)
					}
				case errs[i] != nil:
					t.Errorf("run %s: %v", s, errs[i])
				case strings.Contains(res.Answer, other):
					t.Errorf("run %s saw the other run's variable: answer %q", s, res.Answer)
				case tt.session == "true" && res.Answer != s:
					t.Errorf("run %s: answer %q, want its own x", s, res.Answer)
				case tt.session == "false" && !strings.Contains(res.Answer, "NameError"):
					t.Errorf("run %s without a session: answer %q, want a NameError (each call stands alone)", s, res.Answer)
				}
				if tt.session == "true" && alive[s] == 0 {
					t.Errorf("run %s: its session's process was not running while the run went on", s)
				}
			}
			if tt.session == "false" && strings.Contains(offered, "session") {
				t.Errorf("without a session the python tool is offered with a session argument: %s", offered)
			}
			if left := toolstest.ProcessesWith(mark); len(left) > 0 {
				t.Errorf("processes of the runs' sessions outlived the runs: pids %v", left)
			}
			if live := sb.Sessions(); len(live) > 0 {
				t.Errorf("sessions outlived the runs: %v", live)
			}
		})
	}
}
