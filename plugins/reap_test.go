//go:build linux

package plugins

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/sdk"
	"github.com/ponder-rlm/ponder/tools/toolstest"
)

// TestNoZombiesWhenReaper runs plugins as Ponder does as a container's
// PID 1 (a child subreaper: orphans are re-parented to it), in each
// isolation this host allows, the process-group fallback included: a
// plugin with helpers is started, crashed, abandoned on a hung call,
// killed from outside, restarted, fails its start, is inspected through a
// wrapper script that does not exec it, and is closed. Every process that
// outlived its parent, which Ponder is then the one to wait for, is
// waited for: none is left a zombie.
func TestNoZombiesWhenReaper(t *testing.T) {
	// Not parallel: the subreaper attribute and pluginIsolation are the
	// whole test process's, and parallel tests wait for this one.
	toolstest.AsReaper(t)
	for _, iso := range []isolation{isolateGroup, isolatePID, isolateUserPID} {
		t.Run(strings.ReplaceAll(iso.String(), " ", "-"), func(t *testing.T) {
			if iso != isolateGroup {
				if err := allowed(iso); err != nil {
					t.Skipf("not allowed here: %v", err)
				}
			}
			saved := pluginIsolation
			pluginIsolation = func() (isolation, error) { return iso, nil }
			t.Cleanup(func() { pluginIsolation = saved })
			toolstest.NoZombiesLeft(t, "nothing yet") // a clean start

			// A tool plugin whose calls start helpers (daemons too in a
			// namespace: a process group does not stop them), run directly
			// and by a wrapper script that does not exec it, so that
			// killing the script orphans the plugin.
			kinds := []string{"child"}
			if iso != isolateGroup {
				kinds = append(kinds, "setsid", "orphan")
			}
			dir, wdir := t.TempDir(), t.TempDir()
			installMode(t, dir, "echo", sdk.KindTool, "tool")
			wm := installMode(t, wdir, "echo", sdk.KindTool, "tool")
			script := filepath.Join(wm.Dir, "plugin.sh")
			writeScript(t, script, "tool", false, 0o755)
			writeTestManifest(t, wm.Dir, "echo", sdk.KindTool, "plugin.sh", nil)
			for _, d := range []string{dir, wdir} {
				m := newTestManager(t, Options{Dirs: []string{d}, CallTimeout: 300 * time.Millisecond,
					AbandonGrace: 100 * time.Millisecond, HealthInterval: -1})
				p, _ := m.Plugin("echo")
				spawn := func() {
					t.Helper()
					for _, kind := range kinds {
						args := `{"spawn":"` + kind + `"}`
						res, err := callEcho(t, m, "echo", args)
						for deadline := time.Now().Add(3 * time.Second); err != nil && time.Now().Before(deadline); {
							time.Sleep(50 * time.Millisecond) // a restart's back-off, a death not yet noticed
							res, err = callEcho(t, m, "echo", args)
						}
						if err != nil || res.IsError {
							t.Fatalf("spawn %s: %+v, %v", kind, res, err)
						}
						if pid, err := strconv.Atoi(res.Text); err == nil {
							t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
						}
					}
				}
				spawn()
				if _, err := callEcho(t, m, "echo", `{"crash":true}`); err == nil {
					t.Fatal("crash: no error")
				}
				spawn()
				hung := p.Status().PID
				if _, err := callEcho(t, m, "echo", `{"hang":true}`); !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("hang: %v", err)
				}
				waitGone(t, hung) // abandoned: killed once its grace is over
				spawn()
				pid := p.Status().PID
				// Killed from outside (the script with its plugin, which
				// the script's death alone leaves serving): the next call
				// restarts it.
				if d == wdir {
					syscall.Kill(-pid, syscall.SIGKILL)
				} else {
					syscall.Kill(pid, syscall.SIGKILL)
				}
				waitGone(t, pid)
				spawn()
				if st := p.Status(); st.Starts != 4 {
					t.Fatalf("%s: want 4 starts: %+v", d, st)
				}
				m.Close()
			}
			if _, _, err := Inspect(context.Background(), script, &Options{}); err != nil {
				t.Fatalf("Inspect: %v", err)
			}

			// A plugin whose helper, started before it serves, holds its
			// output; one that starts a helper and never serves.
			hdir, sdir := t.TempDir(), t.TempDir()
			installMode(t, hdir, "echo", sdk.KindTool, "tool-helper")
			installMode(t, sdir, "echo", sdk.KindTool, "tool-helper-stuck-start")
			pidfile := filepath.Join(t.TempDir(), "helper.pid")
			env := []string{"ECHO_HELPER_PIDFILE=" + pidfile}
			hm := newTestManager(t, Options{Dirs: []string{hdir}, Env: env, HealthInterval: -1})
			if res, err := callEcho(t, hm, "echo", `{"text":"hi"}`); err != nil || res.Text != "hi" {
				t.Fatalf("helper plugin: %+v, %v", res, err)
			}
			helperPid(t, pidfile)
			if _, err := callEcho(t, hm, "echo", `{"crash":true}`); err == nil {
				t.Fatal("helper plugin crash: no error")
			}
			sm := newTestManager(t, Options{Dirs: []string{sdir}, Env: env, StartTimeout: 500 * time.Millisecond})
			sp, _ := sm.Plugin("echo")
			if _, err := sp.Remote(context.Background()); !errors.Is(err, ErrNotPlugin) {
				t.Fatalf("stuck start: %v", err)
			}
			helperPid(t, pidfile)

			hm.Close()
			sm.Close()
			toolstest.NoZombiesLeft(t, iso.String()+": plugins started, crashed, abandoned, killed, restarted, inspected and closed")
		})
	}
}
