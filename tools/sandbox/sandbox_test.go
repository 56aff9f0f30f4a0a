//go:build linux

package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/tools/toolstest"
)

// newTestSandbox returns a sandbox with short limits so hostile programs
// are stopped quickly.
func newTestSandbox(t testing.TB, mod func(*Options)) *Sandbox {
	t.Helper()
	o := &Options{Timeout: 3 * time.Second, CPUSeconds: 2, MemoryBytes: 256 << 20, MaxOutput: 16 << 10, TmpBytes: 8 << 20}
	if mod != nil {
		mod(o)
	}
	sb, err := New(o)
	if err != nil {
		t.Fatalf("sandbox unavailable (run scripts/deps.sh for bubblewrap and python3): %v", err)
	}
	t.Cleanup(func() { sb.Close() })
	return sb
}

func run(t *testing.T, sb *Sandbox, code string) Result {
	t.Helper()
	res, err := sb.Run(context.Background(), code, nil)
	if err != nil {
		t.Fatalf("Run(%q): %v", code, err)
	}
	return res
}

// stillWorks checks that a normal program runs after a hostile one.
func stillWorks(t *testing.T, sb *Sandbox) {
	t.Helper()
	res := run(t, sb, "print(6*7)")
	if !res.OK() || res.Stdout != "42\n" {
		t.Fatalf("a normal program after the hostile one: %+v", res)
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, nil)
	tests := []struct {
		name, code, stdin string
		stdout, stderr    string
		exit              int
	}{
		{name: "big int", code: "print(2**100)", stdout: "1267650600228229401496703205376\n"},
		{name: "stdin", code: "import sys; print(sys.stdin.read().upper())", stdin: "abc", stdout: "ABC\n"},
		{name: "exit status", code: "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)", stdout: "out\n", stderr: "err\n", exit: 3},
		{name: "exit message", code: "raise SystemExit('bye')", stderr: "bye\n", exit: 1},
		{name: "traceback", code: "x = 1\n1/x0", stderr: "NameError", exit: 1},
		{name: "syntax error", code: "def f(:\n", stderr: "SyntaxError", exit: 1},
		{name: "unicode", code: "print('π ≈ 3.14159')", stdout: "π ≈ 3.14159\n"},
		{name: "main", code: "print(__name__, __file__)", stdout: "__main__ /tmp/main.py\n"},
		{name: "tmp is writable", code: "open('/tmp/a.txt','w').write('hi'); print(open('/tmp/a.txt').read())", stdout: "hi\n"},
		{name: "local import", code: "open('/tmp/helper.py','w').write('X = 5'); import helper; print(helper.X)", stdout: "5\n"},
		{name: "subprocess", code: "import subprocess; print(subprocess.run(['echo','hi'],capture_output=True,text=True).stdout, end='')", stdout: "hi\n"},
		{name: "unprivileged", code: "import os; print(os.getuid(), os.geteuid())", stdout: "65534 65534\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := sb.Run(context.Background(), tt.code, &RunOptions{Stdin: tt.stdin})
			if err != nil {
				t.Fatal(err)
			}
			if res.Stdout != tt.stdout || !strings.Contains(res.Stderr, tt.stderr) || res.ExitCode != tt.exit || res.Stop != StopExit {
				t.Errorf("got stdout %q stderr %q exit %d stop %s; want stdout %q, stderr containing %q, exit %d",
					res.Stdout, res.Stderr, res.ExitCode, res.Stop, tt.stdout, tt.stderr, tt.exit)
			}
			if tt.name == "traceback" && strings.Contains(res.Stderr, "<string>") {
				t.Errorf("the traceback shows the driver's frames:\n%s", res.Stderr)
			}
		})
	}
}

// TestHostile runs hostile programs: each must be contained, reported
// with a clear stop reason, and followed by a normal run that works.
func TestHostile(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, nil)
	home, _ := os.UserHomeDir()
	hostDir := t.TempDir()
	hostFile := filepath.Join(hostDir, "escaped")
	token := fmt.Sprintf("ponder-leftover-%d", time.Now().UnixNano())

	// A listener on the host's loopback that the sandbox must not reach.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted sync.WaitGroup
	var hits int
	var hitsMu sync.Mutex
	accepted.Add(1)
	go func() {
		defer accepted.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			hitsMu.Lock()
			hits++
			hitsMu.Unlock()
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port

	tests := []struct {
		name  string
		code  string
		stop  Stop
		check func(t *testing.T, r Result)
	}{
		{name: "fork bomb", stop: StopTimeout, code: `import os
while True:
    try:
        os.fork()
    except OSError:
        pass`},
		{name: "fork bomb that gives up", stop: StopExit, code: `import os, sys
n = 0
try:
    while True:
        if os.fork() == 0:
            import time; time.sleep(30)
        n += 1
except OSError as e:
    print("refused after", n, "forks:", e.strerror)
    sys.exit(0)`, check: func(t *testing.T, r Result) {
			if !strings.Contains(r.Stdout, "refused after") {
				t.Errorf("the process limit did not refuse a fork: %q", r.Stdout)
			}
		}},
		{name: "memory bomb", stop: StopMemory, code: `x = []
while True:
    x.append(bytearray(16 << 20))`},
		{name: "sleep forever", stop: StopTimeout, code: "import time\ntime.sleep(10**6)"},
		{name: "output flood", stop: StopOutput, code: "while True:\n    print('flood ' * 100)", check: func(t *testing.T, r Result) {
			if !r.StdoutTruncated || len(r.Stdout) > 16<<10 {
				t.Errorf("flood output %d bytes, truncated %v", len(r.Stdout), r.StdoutTruncated)
			}
		}},
		{name: "stderr flood", stop: StopOutput, code: "import sys\nwhile True:\n    sys.stderr.write('x' * 4096)"},
		{name: "network", stop: StopExit, code: fmt.Sprintf(`import socket
print(sorted(n for _, n in socket.if_nameindex()))
s = socket.socket()
s.settimeout(2)
try:
    s.connect(("127.0.0.1", %d))
    print("CONNECTED")
except OSError as e:
    print("refused:", type(e).__name__)`, port), check: func(t *testing.T, r Result) {
			if !strings.HasPrefix(r.Stdout, "['lo']\n") || strings.Contains(r.Stdout, "CONNECTED") {
				t.Errorf("network is visible: %q", r.Stdout)
			}
		}},
		{name: "read shadow and home", stop: StopExit, code: fmt.Sprintf(`import os
for p in ["/etc/shadow", "/etc/passwd", %q, "/root", "/home", "/proc/1/environ"]:
    try:
        with open(p) as f:
            print("READ", p, len(f.read()))
    except Exception as e:
        try:
            print("LISTED", p, os.listdir(p)[:3])
        except Exception as e2:
            print("denied", p, type(e2).__name__)`, home), check: func(t *testing.T, r Result) {
			for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
				if strings.HasPrefix(line, "READ") || strings.HasPrefix(line, "LISTED") {
					if strings.Contains(line, "/proc/1/environ") {
						continue // the sandbox's own PID 1 (bwrap), its environment is empty
					}
					t.Errorf("host file visible: %s", line)
				}
			}
		}},
		{name: "write outside tmp", stop: StopExit, code: fmt.Sprintf(`import os
for p in ["/x", "/usr/x", "/etc/x", "/dev/x", %q, "/proc/sys/kernel/hostname"]:
    try:
        with open(p, "w") as f:
            f.write("escaped")
        print("WROTE", p)
    except Exception as e:
        print("denied", p, type(e).__name__)`, hostFile), check: func(t *testing.T, r Result) {
			if strings.Contains(r.Stdout, "WROTE") {
				t.Errorf("wrote outside /tmp: %q", r.Stdout)
			}
			if _, err := os.Stat(hostFile); err == nil {
				t.Errorf("%s appeared on the host", hostFile)
			}
		}},
		{name: "kill the parent", stop: StopExit, code: fmt.Sprintf(`import os, signal
for pid in (os.getppid(), 1, %d):
    try:
        os.kill(pid, signal.SIGKILL)
        print("signalled", pid)
    except OSError as e:
        print("could not signal", pid, type(e).__name__)
try:
    os.kill(-1, signal.SIGKILL)
except OSError:
    pass
print("alive")`, os.Getpid()), check: func(t *testing.T, r Result) {
			if !strings.Contains(r.Stdout, "alive") {
				t.Errorf("the program itself did not finish: %q", r.Stdout)
			}
		}},
		{name: "fill the disk", stop: StopExit, code: `import os, errno
total = 0
for d in ("/tmp", "/dev/shm"):
    try:
        with open(d + "/fill", "wb") as f:
            while True:
                f.write(b"\0" * (1 << 20))
                f.flush()
                total += 1 << 20
    except OSError as e:
        print(d, "full:", errno.errorcode.get(e.errno, e.errno))
print("wrote", total >> 20, "MiB")`, check: func(t *testing.T, r Result) {
			if !strings.Contains(r.Stdout, "/tmp full: ENOSPC") && !strings.Contains(r.Stdout, "/tmp full: EFBIG") {
				t.Errorf("filling /tmp was not stopped by its size: %q", r.Stdout)
			}
		}},
		{name: "big file", stop: StopFileSize, code: `import signal
with open("/tmp/big", "wb") as f:
    f.seek(64 << 20)
    f.write(b"x")`},
		{name: "daemon left behind", stop: StopExit, code: fmt.Sprintf(`import subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1000)", %q], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print("started")`, token), check: func(t *testing.T, r Result) {
			time.Sleep(200 * time.Millisecond)
			if pids := toolstest.ProcessesWith(token); len(pids) > 0 {
				t.Errorf("processes outlived the sandbox: %v", pids)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			res := run(t, sb, tt.code)
			if res.Stop != tt.stop {
				t.Errorf("stop = %s (%s), want %s; exit %d\nstdout: %.300s\nstderr: %.300s", res.Stop, res.Detail, tt.stop, res.ExitCode, res.Stdout, res.Stderr)
			}
			if el := time.Since(start); el > 8*time.Second {
				t.Errorf("took %s to stop", el)
			}
			if res.Stop != StopExit && (res.Detail == "" || !strings.Contains(res.Text(), string(res.Stop))) {
				t.Errorf("the stop is not reported clearly: %q", res.Text())
			}
			if tt.check != nil {
				tt.check(t, res)
			}
			stillWorks(t, sb)
		})
	}
	t.Cleanup(func() {
		ln.Close()
		accepted.Wait()
		if hits > 0 {
			t.Errorf("the sandbox reached the host's listener %d times", hits)
		}
	})
}

// TestCPULimit has a sandbox of its own: under the hostile suite's load a
// CPU second takes longer than a wall-clock one.
func TestCPULimit(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, func(o *Options) { o.CPUSeconds = 1; o.Timeout = 30 * time.Second })
	res := run(t, sb, "while True:\n    pass")
	if res.Stop != StopCPU || res.Signal != "SIGXCPU" || !strings.Contains(res.Text(), "CPU seconds") {
		t.Errorf("an infinite loop: %+v", res)
	}
	stillWorks(t, sb)
}

func TestTimeoutOption(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, nil)
	start := time.Now()
	res, err := sb.Run(context.Background(), "import time; print('before', flush=True); time.sleep(60)", &RunOptions{Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stop != StopTimeout || res.Stdout != "before\n" {
		t.Errorf("got %+v, want a timeout after printing before", res)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("a 300ms timeout took %s", el)
	}
	// A run cannot ask for more than the sandbox allows.
	res, err = sb.Run(context.Background(), "import time; time.sleep(60)", &RunOptions{Timeout: time.Hour})
	if err != nil || res.Stop != StopTimeout || res.DurationMS > 6000 {
		t.Errorf("an hour-long timeout was not capped: %+v, %v", res, err)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	res, err := sb.Run(ctx, "import time; time.sleep(60)", nil)
	if !errors.Is(err, context.Canceled) || res.Stop != StopCancelled {
		t.Errorf("got %+v, %v; want cancelled", res, err)
	}
	stillWorks(t, sb)
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	if _, err := New(&Options{Bwrap: "no-such-bwrap"}); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "bubblewrap") {
		t.Errorf("missing bwrap: %v", err)
	}
	if _, err := New(&Options{Python: "/no/such/python"}); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "python") {
		t.Errorf("missing python: %v", err)
	}
	// A bwrap that cannot set up the sandbox is a Go error, not a result.
	sb := newTestSandbox(t, func(o *Options) { o.ReadOnlyPaths = nil })
	sb.baseArgs = append([]string{"--bind", "/no/such/dir", "/x"}, sb.baseArgs...)
	_, err := sb.Run(context.Background(), "print(1)", nil)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "bubblewrap could not set up") {
		t.Errorf("a broken sandbox: %v", err)
	}
	_, err = sb.RunSession(context.Background(), "s", "print(1)", nil)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "bubblewrap could not set up") {
		t.Errorf("a broken sandbox's session: %v", err)
	}
}

func TestSession(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, nil)
	ctx := context.Background()
	steps := []struct {
		session, code  string
		stdout, stderr string
		stop           Stop
		restarted      bool
	}{
		{session: "a", code: "x = 41\nimport math", stop: StopExit},
		{session: "a", code: "x += 1\nprint(x, math.gcd(12, 18))", stdout: "42 6\n", stop: StopExit},
		{session: "b", code: "print('x' in globals())", stdout: "False\n", stop: StopExit},
		{session: "a", code: "print(x", stderr: "SyntaxError", stop: StopExit},
		{session: "a", code: "import sys; sys.exit(4)", stop: StopExit},
		{session: "a", code: "print(x, end='')", stdout: "42", stop: StopExit},
		{session: "a", code: "import time; time.sleep(60)", stop: StopTimeout},
		{session: "a", code: "print('x' in globals())", stdout: "False\n", stop: StopExit, restarted: true},
		{session: "a", code: "while True: print('flood')", stop: StopOutput},
		{session: "a", code: "y = 1", stop: StopExit, restarted: true},
		{session: "a", code: "import os; os._exit(9)", stop: StopSessionEnded},
		{session: "a", code: "print(1)", stdout: "1\n", stop: StopExit, restarted: true},
		{session: "b", code: "import subprocess; print(subprocess.run(['echo','sub'],capture_output=True,text=True).stdout, end='')", stdout: "sub\n", stop: StopExit},
	}
	for i, st := range steps {
		res, err := sb.RunSession(ctx, st.session, st.code, &RunOptions{Timeout: time.Second})
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if st.stop == StopOutput {
			res.Stdout = "" // the flood
		}
		if res.Stdout != st.stdout || !strings.Contains(res.Stderr, st.stderr) || res.Stop != st.stop || res.SessionRestarted != st.restarted {
			t.Errorf("step %d (%q): got stdout %q stderr %.200q stop %s restarted %v; want %q, %q, %s, %v",
				i, st.code, res.Stdout, res.Stderr, res.Stop, res.SessionRestarted, st.stdout, st.stderr, st.stop, st.restarted)
		}
		if i == 4 && res.ExitCode != 4 {
			t.Errorf("sys.exit(4) in a session: exit code %d", res.ExitCode)
		}
	}
	if got := sb.Sessions(); len(got) != 2 {
		t.Errorf("sessions = %v, want a and b", got)
	}
	sb.CloseSession("a")
	if got := sb.Sessions(); len(got) != 1 || got[0] != "b" {
		t.Errorf("after closing a: %v", got)
	}
}

func TestSessionLimits(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, func(o *Options) { o.MaxSessions = 2; o.SessionIdle = 300 * time.Millisecond })
	ctx := context.Background()
	for _, name := range []string{"a", "b", "c"} {
		if _, err := sb.RunSession(ctx, name, "v = 1", nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := sb.Sessions(); len(got) != 2 {
		t.Errorf("with MaxSessions 2: %v", got)
	}
	// a gave way to c: its next call says its variables are gone.
	res, err := sb.RunSession(ctx, "a", "print('v' in globals())", nil)
	if err != nil || res.Stdout != "False\n" || !res.SessionRestarted {
		t.Errorf("an evicted session's next call: %v %+v, want it marked restarted", err, res)
	}
	if res, _ := sb.RunSession(ctx, "a", "print(1)", nil); res.SessionRestarted {
		t.Errorf("the call after that is marked restarted too")
	}
	deadline := time.Now().Add(3 * time.Second)
	for len(sb.Sessions()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := sb.Sessions(); len(got) != 0 {
		t.Errorf("idle sessions were not closed: %v", got)
	}
}

func TestTool(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, nil)
	tool := sb.Tool()
	if tool.Spec().Name != "python" || !json.Valid(tool.Spec().Schema) {
		t.Fatalf("spec: %+v", tool.Spec())
	}
	tests := []struct {
		args, text string
		isErr      bool
	}{
		{`{"code":"print(2**100)"}`, "1267650600228229401496703205376\n", false},
		{`{"code":"import sys; sys.exit(2)"}`, "[exit status 2]", true},
		{`{"code":"import time; time.sleep(9)","timeout":0.2}`, "[stopped: timeout: wall-clock limit of 200ms reached", true},
		{`{"code":"z = 5","session":"t1"}`, "", false},
		{`{"code":"print(z * 2)","session":"t1"}`, "10\n", false},
		{`{"code":"print(input())","stdin":"hello"}`, "hello\n", false},
	}
	for _, tt := range tests {
		res, err := tool.Call(context.Background(), json.RawMessage(tt.args))
		if err != nil {
			t.Fatalf("%s: %v", tt.args, err)
		}
		if !strings.HasPrefix(res.Text, tt.text) || res.IsError != tt.isErr {
			t.Errorf("%s: got %q (error %v), want %q (error %v)", tt.args, res.Text, res.IsError, tt.text, tt.isErr)
		}
		if _, ok := res.Structured.(Result); !ok {
			t.Errorf("%s: structured result is %T", tt.args, res.Structured)
		}
	}
}

// TestInterpreterUnderTmp: an interpreter (or a read-only path) in the
// host's /tmp is hidden by the sandbox's own /tmp; New refuses it and says
// why, instead of every run failing with bwrap's "execvp ...: No such
// file or directory".
func TestInterpreterUnderTmp(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("/tmp", "ponder-python-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	py := filepath.Join(dir, "python3")
	if err := os.WriteFile(py, []byte("\x7fELF"), 0o755); err != nil { // not run: New refuses it first
		t.Fatal(err)
	}
	tests := []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"python", func(o *Options) { o.Python = py }, "python " + py + " is under /tmp, which the sandbox replaces with its own"},
		{"read-only path", func(o *Options) { o.ReadOnlyPaths = []string{dir} }, "tools.sandbox.read_only_paths: " + dir + " is under /tmp"},
	}
	for _, tt := range tests {
		o := &Options{}
		tt.mod(o)
		sb, err := New(o)
		if err == nil {
			sb.Close()
		}
		if !errors.Is(err, ErrUnavailable) || err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestToolTimeoutUnderANanosecond: a timeout that rounds to zero is
// refused (it fell back to the configured 10s), and one too large for a
// Duration is the configured one.
func TestToolTimeoutUnderANanosecond(t *testing.T) {
	t.Parallel()
	tool := newTestSandbox(t, nil).Tool()
	tests := []struct {
		args, text string
		isErr      bool
	}{
		{`{"code":"print(1)","timeout":1e-300}`, `python: argument "timeout": 1e-300 seconds is less than a nanosecond`, true},
		{`{"code":"print(1)","timeout":4e-10}`, `python: argument "timeout": 4e-10 seconds is less than a nanosecond`, true},
		{`{"code":"print(1)","timeout":1e300}`, "1\n", false},
	}
	for _, tt := range tests {
		res, err := tool.Call(context.Background(), json.RawMessage(tt.args))
		if err != nil || !strings.HasPrefix(res.Text, tt.text) || res.IsError != tt.isErr {
			t.Errorf("%s: got %q (error %v, %v), want %q (error %v)", tt.args, res.Text, res.IsError, err, tt.text, tt.isErr)
		}
	}
}

func ExampleSandbox_Run() {
	sb, err := New(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sb.Close()
	res, err := sb.Run(context.Background(), "print(2**100)", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(res.Stdout)
	fmt.Println(res.Stop, res.ExitCode)
	// Output:
	// 1267650600228229401496703205376
	// exit 0
}

// BenchmarkRunPrint1 is a sandboxed print(1) end to end: bwrap, namespaces,
// python start-up and teardown. It reports the median.
func BenchmarkRunPrint1(b *testing.B) {
	sb := newTestSandbox(b, nil)
	var ds []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		res, err := sb.Run(context.Background(), "print(1)", nil)
		if err != nil || res.Stdout != "1\n" {
			b.Fatalf("%+v %v", res, err)
		}
		ds = append(ds, time.Since(start))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "p50-ms")
}

// BenchmarkRunParallel2 runs print(1) from two goroutines and reports runs
// per second.
func BenchmarkRunParallel2(b *testing.B) {
	sb := newTestSandbox(b, func(o *Options) { o.MaxParallel = 2 })
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		n := b.N / 2
		if w == 0 {
			n = b.N - b.N/2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				res, err := sb.Run(context.Background(), "print(1)", nil)
				if err != nil || res.Stdout != "1\n" {
					b.Errorf("%+v %v", res, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "runs/s")
}

// BenchmarkSessionCell runs print(1) in a warm session.
func BenchmarkSessionCell(b *testing.B) {
	sb := newTestSandbox(b, nil)
	if _, err := sb.RunSession(context.Background(), "bench", "x = 1", nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		res, err := sb.RunSession(context.Background(), "bench", "print(x)", nil)
		if err != nil || res.Stdout != "1\n" {
			b.Fatalf("%+v %v", res, err)
		}
	}
}

func TestIsScript(t *testing.T) {
	dir := t.TempDir()
	shim := filepath.Join(dir, "shim")
	bin := filepath.Join(dir, "bin")
	short := filepath.Join(dir, "short")
	for p, body := range map[string]string{shim: "#!/bin/sh\nexec python3 \"$@\"\n", bin: "\x7fELF\x02\x01", short: "#"} {
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, want := range map[string]bool{shim: true, bin: false, short: false, filepath.Join(dir, "missing"): false} {
		if got := isScript(p); got != want {
			t.Errorf("isScript(%s) = %v, want %v", filepath.Base(p), got, want)
		}
	}
}

// TestInheritedDescriptors: a descriptor Ponder inherited without
// close-on-exec (a shell's redirection, a service manager's socket) passes
// through exec and bwrap; the program must not get it, in a run or a
// session.
func TestInheritedDescriptors(t *testing.T) {
	t.Parallel()
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("host secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(secret)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A high number no test opens; Dup3 without O_CLOEXEC, as a parent
	// process leaves it.
	const leaked = 251
	if err := syscall.Dup3(int(f.Fd()), leaked, 0); err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(leaked)
	sb := newTestSandbox(t, nil)
	code := fmt.Sprintf("import os\ntry:\n    os.fstat(%d); print('open')\nexcept OSError as e:\n    print('closed', e.errno)\n", leaked)
	res := run(t, sb, code)
	if res.Stdout != "closed 9\n" {
		t.Errorf("run: an inherited descriptor reached the program: %+v", res)
	}
	res, err = sb.RunSession(context.Background(), "fds", code, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "closed 9\n" {
		t.Errorf("session: an inherited descriptor reached the program: %+v", res)
	}
}

// An interpreter outside /usr is shown with its installation (the
// directory above bin/ when that holds lib/python3.X/os.py), else alone:
// for ~/bin/python3 the directory above bin/ is the home, whose ~/.ssh the
// sandbox could read (its uid owns the user's files). An installation
// that is a home directory itself is refused.
func TestPythonOutsideUsrShowsOnlyItsInstallation(t *testing.T) {
	dir := t.TempDir()
	file := func(p string) string {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	home := filepath.Join(dir, "home")
	t.Setenv("HOME", home)
	file("home/.ssh/id_ed25519")
	inst := filepath.Join(dir, "opt/python")
	file("opt/python/lib/python3.12/os.py")
	args := func(python string) ([]string, error) {
		s := &Sandbox{python: python, bwrap: "bwrap", opts: Options{TmpBytes: 1 << 20}}
		return s.buildArgs()
	}
	binds := func(a []string) []string {
		var out []string
		for i, x := range a {
			if x == "--ro-bind" && !strings.HasPrefix(a[i+1], "/usr") && !strings.HasPrefix(a[i+1], "/lib") && !strings.HasPrefix(a[i+1], "/bin") && !strings.HasPrefix(a[i+1], "/sbin") {
				out = append(out, a[i+1])
			}
		}
		return out
	}
	for python, want := range map[string]string{
		file("home/bin/python3"):       filepath.Join(home, "bin/python3"),
		file("home/py/python3"):        filepath.Join(home, "py/python3"),
		file("opt/python/bin/python3"): inst,
	} {
		a, err := args(python)
		if err != nil {
			t.Fatalf("%s: %v", python, err)
		}
		if got := binds(a); len(got) != 1 || got[0] != want {
			t.Errorf("%s: binds %q, want only %s", python, got, want)
		}
	}
	file("home/lib/python3.12/os.py")
	if a, err := args(filepath.Join(home, "bin/python3")); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "install it in a directory of its own") {
		t.Errorf("python installed in the home directory: %q, %v", binds(a), err)
	}
}

// TestNoOutputSaysSo: a program that ran cleanly and printed nothing (the
// notebook habit of ending on an expression) is told so, alone or in a
// session, instead of an empty observation; its stdout stays empty.
func TestNoOutputSaysSo(t *testing.T) {
	t.Parallel()
	tool := newTestSandbox(t, nil).Tool()
	for _, args := range []string{
		`{"code":"x = 6*7\nx"}`,
		`{"code":"y = 1","session":"quiet"}`,
		`{"code":"y + 1","session":"quiet"}`,
	} {
		res, err := tool.Call(context.Background(), json.RawMessage(args))
		if err != nil {
			t.Fatal(err)
		}
		if res.IsError || res.Text != NoOutput || res.Structured.(Result).Stdout != "" {
			t.Errorf("%s: got %q (error %v), want %q", args, res.Text, res.IsError, NoOutput)
		}
	}
	// Output, or a failure without any, is not "no output".
	for _, code := range []string{"print(1)", "import sys; sys.exit(2)"} {
		res, err := tool.Call(context.Background(), json.RawMessage(`{"code":"`+code+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(res.Text, "no output") {
			t.Errorf("%s: %q", code, res.Text)
		}
	}
}
