//go:build linux

package plugins

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestNamespaceTakesDaemonsDown: in each PID namespace setting this host
// allows (the probe picks the first; an unprivileged Ponder gets the user
// and PID one), a daemon the process started (setsid, its parent gone)
// dies when the process is killed. In a process group alone it would not.
func TestNamespaceTakesDaemonsDown(t *testing.T) {
	t.Parallel()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, iso := range []isolation{isolatePID, isolateUserPID} {
		t.Run(iso.String(), func(t *testing.T) {
			t.Parallel()
			if err := allowed(iso); err != nil {
				t.Skipf("not allowed here: %v", err)
			}
			cmd := exec.Command(self, modeFlag+"daemon")
			cmd.SysProcAttr = procAttr(iso)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Wait()
			defer cmd.Process.Kill()
			line, err := bufio.NewReader(out).ReadString('\n')
			daemon, aerr := strconv.Atoi(strings.TrimSpace(line))
			if err != nil || aerr != nil || !alive(daemon) {
				t.Fatalf("daemon pid %q: %v, %v", line, err, aerr)
			}
			t.Cleanup(func() { syscall.Kill(daemon, syscall.SIGKILL) })
			cmd.Process.Kill()
			waitGone(t, daemon)
		})
	}
}
