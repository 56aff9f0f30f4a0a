//go:build linux

package sandbox

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestForkBombIsolation runs two fork bombs that keep their children in
// two sandboxes while a third runs ordinary code that needs processes and
// threads. Every sandbox runs as the same host uid; the kernel (5.14 on)
// counts RLIMIT_NPROC in each sandbox's own user namespace, so each bomb
// gets the whole max_procs and the ordinary code is not refused a fork.
// On a kernel that counted the uid's processes together, the bombs would
// share one max_procs and the ordinary code would fail.
func TestForkBombIsolation(t *testing.T) {
	t.Parallel()
	var u syscall.Utsname
	_ = syscall.Uname(&u)
	var rel []byte
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		rel = append(rel, byte(c))
	}
	if maj, min, ok := kernelVersion(string(rel)); ok && (maj < 5 || maj == 5 && min < 14) {
		t.Skipf("Linux %s shares max_procs between sandboxes (documented in docs/tools.md)", rel)
	}
	const procs = 16
	sb := newTestSandbox(t, func(o *Options) { o.MaxParallel = 3; o.MaxProcs = procs; o.Timeout = 5 * time.Second })
	const bomb = `import os, time
n = 0
t0 = time.time()
while time.time() - t0 < 2.5:
    try:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        n += 1
    except OSError:
        time.sleep(0.005)
print(n)`
	const work = `import threading, subprocess
out = []
ts = [threading.Thread(target=lambda i=i: out.append(i * i)) for i in range(8)]
for t in ts: t.start()
ps = [subprocess.Popen(["true"]) for _ in range(4)]
print(sum(out) if [t.join() for t in ts] else 0, [p.wait() for p in ps])`
	ctx := context.Background()
	var wg sync.WaitGroup
	forked := make([]int, 2)
	for i := range forked {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := sb.Run(ctx, bomb, nil)
			if err != nil || !res.OK() {
				t.Errorf("bomb %d: %v %s", i, err, res.Text())
				return
			}
			fmt.Sscan(res.Stdout, &forked[i])
		}()
	}
	time.Sleep(time.Second) // the bombs are at their limit by now
	for i := 0; i < 3; i++ {
		res, err := sb.Run(ctx, work, nil)
		if err != nil || !res.OK() || res.Stdout != "140 [0, 0, 0, 0]\n" {
			t.Errorf("ordinary code beside two fork bombs, run %d: %v\n%s", i, err, res.Text())
		}
	}
	wg.Wait()
	// The bomb's python and the sandbox's init count too.
	for i, n := range forked {
		if n < procs-4 || n >= procs {
			t.Errorf("bomb %d forked %d children; want %d to %d (its own max_procs of %d)", i, n, procs-4, procs-1, procs)
		}
	}
}

func TestProcsWarning(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kernel string
		limit  uint64
		want   string // in the warning; "" for none
	}{
		{kernel: "6.18.44-fc", limit: ^uint64(0)},
		{kernel: "5.14.0-427.el9.x86_64", limit: 4096},
		{kernel: "5.10.0-28-amd64", limit: 1 << 20, want: "for all sandboxes together"},
		{kernel: "4.19.0", limit: 1 << 20, want: "needs 5.14"},
		{kernel: "6.1.0", limit: 100, want: "ulimit -u 100"},
		{kernel: "weird", limit: 1 << 20},
	}
	for _, tt := range tests {
		got := procsWarning(tt.kernel, tt.limit, 288, 16)
		if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("procsWarning(%q, %d) = %q, want %q", tt.kernel, tt.limit, got, tt.want)
		}
	}
}
