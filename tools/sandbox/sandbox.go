//go:build linux

// Package sandbox runs untrusted Python in a bubblewrap (bwrap) sandbox:
// new user, PID, network, IPC, UTS, cgroup and mount namespaces; the system
// (/usr) bound read-only and nothing else of the host visible (no /etc, no
// home directories, no host /tmp); a fresh size-limited tmpfs as the only
// writable place; only a loopback interface; an unprivileged uid; rlimits
// on CPU seconds, address space, processes, file size and open files; a
// wall-clock timeout after which the whole sandbox is killed; stdout and
// stderr capped. Run reports how the program ended (Result.Stop).
//
//	sb, err := sandbox.New(nil) // defaults: python3, bwrap, 10s, 512 MiB
//	res, err := sb.Run(ctx, "print(2**100)", nil)
//	// res.Stdout == "1267650600228229401496703205376\n", res.Stop == sandbox.StopExit
//
// Sessions keep a Python process, and its globals, alive between calls
// (see Session); Tool exposes both as the "python" tool.
//
// Limits of the guarantees are spelled out in docs/tools.md: there is no
// seccomp filter, so the kernel's whole system-call surface is reachable
// from inside (as an unprivileged user in its own namespaces), and memory is
// bounded per process (address space) times the process limit, not by a
// cgroup.
package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/tools/reap"
)

// Defaults of Options.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultCPUSeconds  = 10
	DefaultMemoryBytes = 512 << 20
	DefaultMaxProcs    = 16
	DefaultMaxOutput   = 64 << 10
	DefaultTmpBytes    = 64 << 20
	DefaultOpenFiles   = 64
	// nobody: the unprivileged uid the sandbox runs as when Ponder runs as
	// root, outside and inside the sandbox.
	nobody = 65534
)

// Options configure a Sandbox. The zero value means the defaults.
type Options struct {
	// Python is the interpreter: a path, or a name looked up in
	// /usr/local/bin, /usr/bin and /bin before $PATH (default "python3").
	Python string
	// Bwrap is the bubblewrap binary (default "bwrap" on $PATH).
	Bwrap string
	// Timeout is the wall-clock limit of one run (default 10s). A run may
	// ask for less, never more.
	Timeout time.Duration
	// CPUSeconds limits CPU time (RLIMIT_CPU; default 10).
	CPUSeconds int
	// MemoryBytes limits each process's address space (RLIMIT_AS; default
	// 512 MiB).
	MemoryBytes int64
	// MaxProcs limits processes and threads inside the sandbox
	// (RLIMIT_NPROC; default 16).
	MaxProcs int
	// MaxOutput caps stdout and stderr, each, in bytes (default 64 KiB);
	// a program that writes more is stopped.
	MaxOutput int
	// TmpBytes is the size of the writable /tmp (default 64 MiB); it also
	// bounds a single file (RLIMIT_FSIZE).
	TmpBytes int64
	// OpenFiles limits open file descriptors (RLIMIT_NOFILE; default 64).
	OpenFiles int
	// ReadOnlyPaths are more host paths to bind read-only at the same place
	// (a virtual environment's site-packages, data files).
	ReadOnlyPaths []string
	// MaxParallel bounds concurrent runs; more wait (default: the number
	// of CPUs, at least 2).
	MaxParallel int
	// MaxSessions bounds live sessions (default 16); SessionIdle closes a
	// session unused for that long (default 10m).
	MaxSessions int
	SessionIdle time.Duration
	Logger      zerolog.Logger
}

// Stop says why a run ended.
type Stop string

// Stop reasons.
const (
	StopExit         Stop = "exit"            // the program exited by itself (ExitCode says how)
	StopTimeout      Stop = "timeout"         // the wall-clock limit was reached; everything was killed
	StopCPU          Stop = "cpu_limit"       // RLIMIT_CPU was reached
	StopMemory       Stop = "memory_limit"    // an allocation failed at the address-space limit
	StopOutput       Stop = "output_limit"    // stdout or stderr passed MaxOutput; everything was killed
	StopFileSize     Stop = "file_size_limit" // a file passed RLIMIT_FSIZE
	StopSignal       Stop = "signal"          // killed by another signal (Result.Signal)
	StopCancelled    Stop = "cancelled"       // the caller's context ended
	StopSessionEnded Stop = "session_ended"   // the session's process exited (os._exit, a crash)
)

// Result is how a run went.
type Result struct {
	Stdout          string  `json:"stdout"`
	Stderr          string  `json:"stderr"`
	ExitCode        int     `json:"exit_code"`
	Signal          string  `json:"signal,omitempty"`
	Stop            Stop    `json:"stop"`
	Detail          string  `json:"detail,omitempty"` // a sentence on why it stopped
	StdoutTruncated bool    `json:"stdout_truncated,omitempty"`
	StderrTruncated bool    `json:"stderr_truncated,omitempty"`
	DurationMS      float64 `json:"duration_ms"`
	// Session names the session the code ran in; SessionRestarted says
	// the session's earlier state was lost (it had been stopped).
	Session          string `json:"session,omitempty"`
	SessionRestarted bool   `json:"session_restarted,omitempty"`
}

// OK reports whether the program exited by itself with status 0.
func (r Result) OK() bool { return r.Stop == StopExit && r.ExitCode == 0 }

// NoOutput is the text of a program that ran cleanly and printed nothing.
const NoOutput = "[no output: the program ran and printed nothing; print() the values you need]"

// Text renders the result for a policy: stdout, then stderr under a
// "[stderr]" line, then a bracketed status line unless the run was OK
// (NoOutput when it was OK and printed nothing).
func (r Result) Text() string {
	var b strings.Builder
	if r.SessionRestarted {
		b.WriteString("[session restarted: variables from earlier calls are gone]\n")
	}
	b.WriteString(r.Stdout)
	if r.StdoutTruncated {
		b.WriteString("\n[stdout truncated]")
	}
	if r.Stderr != "" {
		if b.Len() > 0 && !strings.HasSuffix(b.String(), "\n") {
			b.WriteString("\n")
		}
		b.WriteString("[stderr]\n" + r.Stderr)
		if r.StderrTruncated {
			b.WriteString("\n[stderr truncated]")
		}
	}
	if r.OK() && r.Stdout == "" && r.Stderr == "" {
		// An empty observation reads as a lost result (and some
		// endpoints refuse a tool message with no content): say that the
		// program ran and printed nothing, the usual mistake of ending on
		// an expression as in a notebook.
		b.WriteString(NoOutput)
	}
	if !r.OK() {
		if b.Len() > 0 && !strings.HasSuffix(b.String(), "\n") {
			b.WriteString("\n")
		}
		if r.Stop == StopExit {
			fmt.Fprintf(&b, "[exit status %d]", r.ExitCode)
		} else {
			fmt.Fprintf(&b, "[stopped: %s: %s]", r.Stop, r.Detail)
		}
	}
	return b.String()
}

// RunOptions tune one run.
type RunOptions struct {
	// Stdin is the program's standard input (default: empty).
	Stdin string
	// Timeout lowers the sandbox's wall-clock limit for this run.
	Timeout time.Duration
}

// ErrUnavailable is wrapped when the sandbox cannot be set up (no bwrap, no
// python, user namespaces disabled).
var ErrUnavailable = errors.New("sandbox unavailable")

// Sandbox runs code. It is safe for concurrent use.
type Sandbox struct {
	opts     Options
	python   string
	bwrap    string
	baseArgs []string
	cred     *syscall.Credential
	slots    chan struct{}
	log      zerolog.Logger

	sessions *sessions
}

// New checks the binaries and prepares the sandbox; it runs nothing.
func New(opts *Options) (*Sandbox, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Python == "" {
		o.Python = "python3"
	}
	if o.Bwrap == "" {
		o.Bwrap = "bwrap"
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.CPUSeconds <= 0 {
		o.CPUSeconds = DefaultCPUSeconds
	}
	if o.MemoryBytes <= 0 {
		o.MemoryBytes = DefaultMemoryBytes
	}
	if o.MaxProcs <= 0 {
		o.MaxProcs = DefaultMaxProcs
	}
	if o.MaxOutput <= 0 {
		o.MaxOutput = DefaultMaxOutput
	}
	if o.TmpBytes <= 0 {
		o.TmpBytes = DefaultTmpBytes
	}
	if o.OpenFiles <= 0 {
		o.OpenFiles = DefaultOpenFiles
	}
	if o.MaxParallel <= 0 {
		o.MaxParallel = max(2, runtime.NumCPU())
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = 16
	}
	if o.SessionIdle <= 0 {
		o.SessionIdle = 10 * time.Minute
	}
	bw, err := exec.LookPath(o.Bwrap)
	if err != nil {
		return nil, fmt.Errorf("%w: bubblewrap %q not found (install the Debian/Ubuntu package bubblewrap, or set tools.sandbox.bwrap): %v", ErrUnavailable, o.Bwrap, err)
	}
	py, err := findPython(o.Python)
	if err != nil {
		return nil, err
	}
	// What is under the sandbox's own /tmp, /dev or /proc is hidden there
	// (its installation too: that is the interpreter's directory or one
	// above it, and the root is refused).
	if m := coveredBy(py); m != "" {
		return nil, fmt.Errorf("%w: python %s is under %s, which the sandbox replaces with its own (an empty %s), so it could not run there: install it elsewhere (e.g. /opt) or set tools.sandbox.python to one in /usr", ErrUnavailable, py, m, m)
	}
	for _, p := range o.ReadOnlyPaths {
		if abs, err := filepath.Abs(p); err == nil && coveredBy(abs) != "" {
			return nil, fmt.Errorf("%w: tools.sandbox.read_only_paths: %s is under %s, which the sandbox replaces with its own, so it would not be seen there", ErrUnavailable, abs, coveredBy(abs))
		}
	}
	s := &Sandbox{opts: o, python: py, bwrap: bw, slots: make(chan struct{}, o.MaxParallel), log: o.Logger}
	if os.Geteuid() == 0 {
		// As root, bwrap would run the code as the real root (no
		// RLIMIT_NPROC, host-root-owned files): drop to nobody first.
		s.cred = &syscall.Credential{Uid: nobody, Gid: nobody, NoSetGroups: false, Groups: []uint32{}}
	}
	s.baseArgs, err = s.buildArgs()
	if err != nil {
		return nil, err
	}
	s.sessions = newSessions(s)
	s.warnProcs()
	return s, nil
}

// Python returns the interpreter's path on the host.
func (s *Sandbox) Python() string { return s.python }

// Options returns the sandbox's options with defaults filled in.
func (s *Sandbox) Options() Options { return s.opts }

func findPython(name string) (string, error) {
	var p string
	if strings.ContainsRune(name, '/') {
		p = name
	} else {
		for _, dir := range []string{"/usr/local/bin", "/usr/bin", "/bin"} {
			c := filepath.Join(dir, name)
			if st, err := os.Stat(c); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				p = c
				break
			}
		}
		if p == "" {
			lp, err := exec.LookPath(name)
			if err != nil {
				return "", fmt.Errorf("%w: python %q not found (install python3 or set tools.sandbox.python): %v", ErrUnavailable, name, err)
			}
			p = lp
		}
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("%w: python %q: %v", ErrUnavailable, p, err)
	}
	if isScript(real) {
		return "", fmt.Errorf("%w: python %s is a script (a pyenv shim?), not an interpreter: set tools.sandbox.python to the real binary, e.g. /usr/bin/python3", ErrUnavailable, real)
	}
	return real, nil
}

// isScript reports whether the file at path starts with "#!", reading only
// those two bytes (an interpreter binary is megabytes).
func isScript(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [2]byte
	_, err = io.ReadFull(f, b[:])
	return err == nil && string(b[:]) == "#!"
}

// pythonPrefix is what the sandbox shows of an interpreter outside /usr:
// its installation, the directory above its bin/ when that holds Python's
// library (lib/python3.X/os.py, the landmark Python looks for), as in
// pyenv, conda or a python-build-standalone tree; else the binary alone.
// The directory above bin/ is not shown unless it is an installation: for
// ~/bin/python3 it is the home directory, with ~/.ssh in it (and the
// sandbox's uid owns Ponder's files). An installation at the root or in
// a home directory itself (./configure --prefix=$HOME) is refused.
func pythonPrefix(python string) (string, error) {
	prefix := filepath.Dir(filepath.Dir(python))
	if filepath.Base(filepath.Dir(python)) != "bin" {
		return python, nil
	}
	landmarks, _ := filepath.Glob(filepath.Join(prefix, "lib", "python3*", "os.py"))
	if len(landmarks) == 0 {
		return python, nil
	}
	home, _ := os.UserHomeDir()
	if prefix == "/" || home != "" && filepath.Clean(home) == prefix {
		return "", fmt.Errorf("%w: python %s is installed in %s, which the sandbox would show whole (a home directory, or the root): install it in a directory of its own, or set tools.sandbox.python to one in /usr", ErrUnavailable, python, prefix)
	}
	return prefix, nil
}

// coveredBy names the sandbox's own mount (its /tmp, /dev or /proc) that
// would hide a host path bound at the same place, or "": bwrap mounts
// those after the binds, so an interpreter in the host's /tmp failed with
// bwrap's bare "execvp ...: No such file or directory".
func coveredBy(path string) string {
	for _, m := range []string{"/tmp", "/dev", "/proc"} {
		if path == m || strings.HasPrefix(path, m+"/") {
			return m
		}
	}
	return ""
}

func (s *Sandbox) buildArgs() ([]string, error) {
	help, _ := exec.Command(s.bwrap, "--help").CombinedOutput()
	has := func(flag string) bool { return bytes.Contains(help, []byte(flag)) }
	a := []string{
		"--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534",
		"--die-with-parent", "--new-session", "--hostname", "sandbox",
	}
	if has("--disable-userns") {
		a = append(a, "--disable-userns")
	}
	a = append(a, "--ro-bind", "/usr", "/usr")
	for _, d := range []string{"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"} {
		st, err := os.Lstat(d)
		if err != nil {
			continue
		}
		if st.Mode()&os.ModeSymlink != 0 {
			t, err := os.Readlink(d)
			if err != nil {
				return nil, fmt.Errorf("%w: read link %s: %v", ErrUnavailable, d, err)
			}
			a = append(a, "--symlink", t, d)
		} else if st.IsDir() {
			a = append(a, "--ro-bind", d, d)
		}
	}
	binds := map[string]bool{}
	if !strings.HasPrefix(s.python, "/usr/") {
		// An interpreter outside /usr: bind its installation prefix, or
		// the binary alone when it is in none.
		prefix, err := pythonPrefix(s.python)
		if err != nil {
			return nil, err
		}
		binds[prefix] = true
		a = append(a, "--ro-bind", prefix, prefix)
	}
	for _, p := range s.opts.ReadOnlyPaths {
		abs, err := filepath.Abs(p)
		if err != nil || binds[abs] {
			continue
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("%w: tools.sandbox.read_only_paths: %v", ErrUnavailable, err)
		}
		binds[abs] = true
		a = append(a, "--ro-bind", abs, abs)
	}
	size := func(n int64) []string {
		if has("--size") {
			return []string{"--size", fmt.Sprint(n)}
		}
		return nil
	}
	a = append(a, "--proc", "/proc", "--dev", "/dev")
	a = append(a, size(min(s.opts.TmpBytes, 8<<20))...)
	a = append(a, "--tmpfs", "/dev/shm", "--remount-ro", "/dev")
	a = append(a, size(s.opts.TmpBytes)...)
	a = append(a, "--tmpfs", "/tmp", "--remount-ro", "/", "--chdir", "/tmp",
		"--clearenv", "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin", "--setenv", "HOME", "/tmp",
		"--setenv", "TMPDIR", "/tmp", "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONIOENCODING", "utf-8",
		"--json-status-fd", "4", "--")
	return a, nil
}

// driver is the Python that runs first inside the sandbox: it says it
// started on fd 5 (bwrap set up the sandbox), reads the program from fd 3, sets the rlimits (soft and hard, so the program cannot
// raise them), and runs it as /tmp/main.py, or, for a session, runs cells
// read from fd 3 one per line. Before any of the program runs it closes
// every descriptor but stdin, stdout, stderr (and a session's fd 3): a
// descriptor Ponder inherited without close-on-exec (from a shell, a
// service manager) passes through bwrap, and would give the program a
// host file or pipe.
const driver = `import os, sys, resource as R
def _lim(k, v, h=None):
    try: R.setrlimit(k, (v, v if h is None else h))
    except (ValueError, OSError) as e: print("sandbox: rlimit", k, e, file=sys.stderr)
def _closefds(keep):
    try: fds = [int(x) for x in os.listdir("/proc/self/fd")]
    except (OSError, ValueError): os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX")); return
    for fd in fds:
        if fd > keep:
            try: os.close(fd)
            except OSError: pass
os.write(5, b"ready")
os.close(5)
_mode = sys.argv[1]
_cpu = int(sys.argv[2])
if _mode == "run":
    with open(3, "rb") as f: _src = f.read()
    with open("/tmp/main.py", "wb") as f: f.write(_src)
    _closefds(2)
else:
    _closefds(3)
_lim(R.RLIMIT_CPU, _cpu, _cpu + 1 if _mode == "run" else _cpu * 20)
_lim(R.RLIMIT_AS, int(sys.argv[3]))
_lim(R.RLIMIT_NPROC, int(sys.argv[4]))
_lim(R.RLIMIT_FSIZE, int(sys.argv[5]))
_lim(R.RLIMIT_NOFILE, int(sys.argv[6]))
_lim(R.RLIMIT_CORE, 0)
sys.stdout.reconfigure(line_buffering=True)
sys.path.insert(0, "/tmp")
def _report(e):
    import traceback
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == "<string>":
        tb = tb.tb_next
    traceback.print_exception(type(e), e, tb)
def _exec(src, name, g):
    try:
        exec(compile(src, name, "exec"), g)
        return 0
    except SystemExit as e:
        c = e.code
        if c is None: return 0
        if isinstance(c, int): return c & 255
        print(c, file=sys.stderr); return 1
    except BaseException as e:
        _report(e); return 1
if _mode == "run":
    sys.argv = ["/tmp/main.py"]
    # The program is module __main__, as python main.py makes it:
    # unittest.main(), doctest.testmod() and pickle look it up there.
    _m = type(sys)("__main__")
    _m.__file__, _m.__builtins__ = "/tmp/main.py", __builtins__
    sys.modules["__main__"] = _m
    _c = _exec(_src, "/tmp/main.py", _m.__dict__)
    sys.stdout.flush(); sys.stderr.flush()
    os._exit(_c)
import json, io
_ctl = open(3, "rb")
_tok = sys.argv[7].encode()
_g = {"__name__": "__main__", "__builtins__": __builtins__}
_n = 0
for _line in _ctl:
    _req = json.loads(_line)
    _n += 1
    _name = "/tmp/cell%d.py" % _n
    try:
        with open(_name, "w") as f: f.write(_req["code"])
    except OSError: pass
    _u = R.getrusage(R.RUSAGE_SELF)
    _lim(R.RLIMIT_CPU, min(int(_u.ru_utime + _u.ru_stime) + _cpu, _cpu * 20), _cpu * 20)
    sys.stdin = io.StringIO(_req.get("stdin", ""))
    _c = _exec(_req["code"], _name, _g)
    try: sys.stdout.flush()
    except Exception: pass
    try: sys.stderr.flush()
    except Exception: pass
    os.write(2, b"\x00" + _tok + b"\x00")
    os.write(1, b"\x00" + _tok + b"\x00" + json.dumps({"exit": _c}).encode() + b"\n")
`

func (s *Sandbox) command(mode, token string) *exec.Cmd {
	args := append([]string(nil), s.baseArgs...)
	args = append(args, s.python, "-I", "-c", driver, mode,
		fmt.Sprint(s.opts.CPUSeconds), fmt.Sprint(s.opts.MemoryBytes), fmt.Sprint(s.opts.MaxProcs),
		fmt.Sprint(s.opts.TmpBytes), fmt.Sprint(s.opts.OpenFiles), token)
	cmd := exec.Command(s.bwrap, args...)
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: s.cred}
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

func (s *Sandbox) acquire(ctx context.Context) error {
	select {
	case s.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Sandbox) release() { <-s.slots }

// Run runs code as a fresh program. The error is for runs that could not
// start (the sandbox is unavailable) or whose context ended; a program that
// failed, was killed or timed out is a Result with Stop and ExitCode set.
func (s *Sandbox) Run(ctx context.Context, code string, ro *RunOptions) (Result, error) {
	var o RunOptions
	if ro != nil {
		o = *ro
	}
	timeout := s.opts.Timeout
	if o.Timeout > 0 && o.Timeout < timeout {
		timeout = o.Timeout
	}
	if err := s.acquire(ctx); err != nil {
		return Result{Stop: StopCancelled, Detail: "cancelled while waiting for a free sandbox"}, err
	}
	defer s.release()

	cmd := s.command("run", "-")
	codeR, codeW, err := os.Pipe()
	if err != nil {
		return Result{}, fmt.Errorf("sandbox: pipe: %w", err)
	}
	statR, statW, err := os.Pipe()
	if err != nil {
		codeR.Close()
		codeW.Close()
		return Result{}, fmt.Errorf("sandbox: pipe: %w", err)
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		codeR.Close()
		codeW.Close()
		statR.Close()
		statW.Close()
		return Result{}, fmt.Errorf("sandbox: pipe: %w", err)
	}
	cmd.ExtraFiles = []*os.File{codeR, statW, readyW}
	cmd.Stdin = strings.NewReader(o.Stdin)
	over := make(chan struct{})
	var overOnce sync.Once
	onOver := func() { overOnce.Do(func() { close(over) }) }
	stdout := &capped{max: s.opts.MaxOutput, over: onOver}
	stderr := &capped{max: s.opts.MaxOutput, over: onOver}
	cmd.Stdout, cmd.Stderr = stdout, stderr

	start := time.Now()
	err = cmd.Start()
	codeR.Close()
	statW.Close()
	readyW.Close()
	if err != nil {
		codeW.Close()
		statR.Close()
		readyR.Close()
		return Result{}, fmt.Errorf("%w: start %s: %v", ErrUnavailable, s.bwrap, err)
	}
	readyc := make(chan bool, 1)
	go func() { readyc <- readReady(readyR); readyR.Close() }()
	go func() {
		// The program reads its code first; a closed pipe (it died) ends this.
		_, _ = io.WriteString(codeW, code)
		codeW.Close()
	}()
	statc := make(chan bwrapStatus, 1)
	go func() { statc <- readStatus(statR); statR.Close() }()
	waitc := make(chan error, 1)
	go func() { waitc <- cmd.Wait() }()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var stop Stop
	var detail string
	var waitErr error
	select {
	case waitErr = <-waitc:
	case <-timer.C:
		stop, detail = StopTimeout, fmt.Sprintf("wall-clock limit of %s reached; all of the sandbox's processes were killed", timeout)
	case <-over:
		stop, detail = StopOutput, fmt.Sprintf("wrote more than %d bytes of output; all of the sandbox's processes were killed", s.opts.MaxOutput)
	case <-ctx.Done():
		stop, detail = StopCancelled, "the caller cancelled; all of the sandbox's processes were killed"
	}
	if stop != "" {
		killGroup(cmd)
		waitErr = <-waitc
	}
	st := <-statc
	st.started = <-readyc
	// bubblewrap exits before its child, the sandbox's PID 1, which is
	// orphaned at the end of every run.
	reap.Pid(st.childPid)
	res := Result{
		Stdout: stdout.String(), Stderr: stderr.String(),
		StdoutTruncated: stdout.truncated(), StderrTruncated: stderr.truncated(),
		DurationMS: float64(time.Since(start).Microseconds()) / 1000,
	}
	res.ExitCode = exitCode(cmd, waitErr)
	if !st.started && stop == "" {
		msg := strings.TrimSpace(res.Stderr)
		if msg == "" && waitErr != nil {
			msg = waitErr.Error()
		}
		return Result{}, fmt.Errorf("%w: bubblewrap could not set up the sandbox: %s", ErrUnavailable, firstLine(msg))
	}
	if st.exited {
		res.ExitCode = st.exitCode
	}
	if stop != "" {
		res.Stop, res.Detail = stop, detail
		res.ExitCode = -1
	} else {
		s.classify(&res)
	}
	s.log.Debug().Str("stop", string(res.Stop)).Int("exit", res.ExitCode).Float64("ms", res.DurationMS).Msg("sandbox run")
	if stop == StopCancelled {
		return res, ctx.Err()
	}
	return res, nil
}

// classify names the stop of a program that ended by itself.
func (s *Sandbox) classify(r *Result) {
	r.Stop = StopExit
	code := r.ExitCode
	if code > 128 && code < 128+65 {
		sig := syscall.Signal(code - 128)
		r.Signal = sigName(sig)
		switch sig {
		case syscall.SIGXCPU:
			r.Stop, r.Detail = StopCPU, fmt.Sprintf("used its %d CPU seconds", s.opts.CPUSeconds)
		case syscall.SIGXFSZ:
			r.Stop, r.Detail = StopFileSize, fmt.Sprintf("wrote a file larger than %d bytes", s.opts.TmpBytes)
		case syscall.SIGKILL:
			r.Stop, r.Detail = StopSignal, "killed (SIGKILL; the CPU hard limit sends it too)"
		default:
			r.Stop, r.Detail = StopSignal, "killed by "+r.Signal
		}
		return
	}
	switch {
	case code == 0:
	case lastLineHas(r.Stderr, "MemoryError"):
		r.Stop, r.Detail = StopMemory, fmt.Sprintf("ran out of its %d MiB address space", s.opts.MemoryBytes>>20)
	case lastLineHas(r.Stderr, "OSError: [Errno 27]"):
		// Python ignores SIGXFSZ, so the limit surfaces as EFBIG.
		r.Stop, r.Detail = StopFileSize, fmt.Sprintf("wrote a file larger than %d bytes", s.opts.TmpBytes)
	}
}

func lastLineHas(s, prefix string) bool {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return strings.HasPrefix(s, prefix)
}

func sigName(s syscall.Signal) string {
	names := map[syscall.Signal]string{
		syscall.SIGKILL: "SIGKILL", syscall.SIGSEGV: "SIGSEGV", syscall.SIGABRT: "SIGABRT",
		syscall.SIGXCPU: "SIGXCPU", syscall.SIGXFSZ: "SIGXFSZ", syscall.SIGTERM: "SIGTERM",
		syscall.SIGBUS: "SIGBUS", syscall.SIGPIPE: "SIGPIPE", syscall.SIGINT: "SIGINT",
		syscall.SIGFPE: "SIGFPE", syscall.SIGILL: "SIGILL", syscall.SIGHUP: "SIGHUP",
	}
	if n, ok := names[s]; ok {
		return n
	}
	return fmt.Sprintf("signal %d", int(s))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func exitCode(cmd *exec.Cmd, err error) int {
	if cmd.ProcessState != nil {
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return cmd.ProcessState.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// killGroup kills bwrap's process group. The sandboxed processes live in
// their own session inside a PID namespace; bwrap's death takes its PID 1
// with it (--die-with-parent), and the kernel kills every process of a PID
// namespace whose PID 1 dies.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Process.Kill()
}

// readReady reports whether the driver said it started.
func readReady(r io.Reader) bool {
	b, _ := io.ReadAll(io.LimitReader(r, 16))
	return string(b) == "ready"
}

type bwrapStatus struct {
	started  bool // the driver started: bwrap set the sandbox up
	exited   bool
	exitCode int
	childPid int // bwrap's child, the sandbox's PID 1
}

// readStatus reads bwrap's --json-status-fd stream for {"exit-code": N},
// the program's status (128+N when a signal killed it).
func readStatus(r io.Reader) bwrapStatus {
	var st bwrapStatus
	dec := json.NewDecoder(bufio.NewReader(io.LimitReader(r, 1<<16)))
	for {
		var m map[string]json.RawMessage
		if err := dec.Decode(&m); err != nil {
			return st
		}
		if v, ok := m["child-pid"]; ok {
			_ = json.Unmarshal(v, &st.childPid)
		}
		if v, ok := m["exit-code"]; ok {
			if err := json.Unmarshal(v, &st.exitCode); err == nil {
				st.exited = true
			}
		}
	}
}

// capped keeps the first max bytes written and calls over once more
// arrive; it never fails a write, so the writer drains until it is killed.
type capped struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	max   int
	extra int64
	over  func()
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	room := c.max - c.buf.Len()
	if room >= len(p) {
		c.buf.Write(p)
		c.mu.Unlock()
		return len(p), nil
	}
	if room > 0 {
		c.buf.Write(p[:room])
	}
	c.extra += int64(len(p) - max(room, 0))
	c.mu.Unlock()
	c.over()
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.ToValidUTF8(c.buf.String(), "\uFFFD")
}

func (c *capped) truncated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.extra > 0
}

// Close ends every session.
func (s *Sandbox) Close() error {
	s.sessions.closeAll()
	return nil
}
