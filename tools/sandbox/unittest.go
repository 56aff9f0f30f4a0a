//go:build linux

package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/ponder-rlm/ponder/core/evaluator"
)

// UnitTestRunner runs the unittest verifier's programs (HumanEval's
// grader among them) in the sandbox. A program passes only when its tests
// ran to their end: a candidate that exits with status 0 before them (at
// import, or inside the function the tests call) would otherwise pass
// with no check run.
type UnitTestRunner struct{ Sandbox *Sandbox }

var _ evaluator.TestRunner = UnitTestRunner{}

// EarlyExit is the stderr line of a program that exited with status 0
// before its tests finished.
const EarlyExit = "the program exited before its tests finished (sys.exit, exit() or os._exit ran outside the tests' " +
	"own code): not passed"

// testsHarness is the program the sandbox runs: it is given the
// candidate and the tests (base64, so that neither can end the other's
// string) and runs them as module __main__, the candidate as
// /tmp/main.py and the tests as /tmp/tests.py (tracebacks and inspect
// show their own lines). It reads the end-of-run nonce from stdin before
// any of the candidate runs, so the nonce is in no file the program can
// read and the candidate's stdin is empty, as in a plain run; it binds
// what it uses (exec, compile, os._exit, sys.exit, ...) before the
// candidate runs, so that a candidate that shadows or patches them does
// not change how the tests are run or judged, and it puts back a sys.exit
// the candidate replaced (unittest.main reports failure through it). It
// writes the mark when the tests end: by running to their last line, or
// by an exit with status 0 raised by the tests' own code (their code
// objects, not the file name they claim) through the standard library
// only (unittest.main(), sys.exit(0), exit()); a frame of the candidate
// or of code it compiled (exec, eval) in the way is the candidate's exit.
// unittest.main() ending with no test run or with skipped tests (a
// candidate can raise unittest.SkipTest) is not passed. Other failures
// show the traceback from the candidate's or the tests' first frame.
//
// What no harness inside the candidate's process can guard against, and
// this one does not: a candidate that looks for the nonce itself (in the
// harness's frame, from the function the tests call), patches the test
// machinery while the tests call it (unittest's asserts, sys.exit),
// returns objects that equal anything (__eq__ always True), or is itself
// an exit of the standard library (f = sys.exit, f = exit) called with 0.
// The mark stops programs that exit before their tests end, by accident
// or as a cheap reward hack; it is no sandbox against a program written
// to forge it.
const testsHarness = `
def _ponder_run(_cand, _tests, exec=exec, compile=compile, SystemExit=SystemExit, BaseException=BaseException,
                int=int, bool=bool, type=type, getattr=getattr, set=set, len=len):
    import base64, linecache, os, sys, traceback
    mark = sys.stdin.readline().strip()
    cand = base64.b64decode(_cand).decode("utf-8", "replace")
    tests = base64.b64decode(_tests).decode("utf-8", "replace")
    write, _exit, sys_exit, show = os.write, os._exit, sys.exit, traceback.print_exception
    stdlib = os.path.dirname(os.__file__) + os.sep
    here, g = sys._getframe().f_code, globals()
    for name, src in (("/tmp/main.py", cand), ("/tmp/tests.py", tests)):
        linecache.cache[name] = (len(src), None, src.splitlines(True), name)
    try:
        with open("/tmp/main.py", "w") as f:
            f.write(cand)
    except BaseException:
        pass

    def fail(e):
        try:
            show(type(e), e, e.__traceback__.tb_next)
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            pass
        _exit(1)

    try:
        exec(compile(cand, "/tmp/main.py", "exec", 0, True), g)
    except SystemExit:
        raise
    except BaseException as e:
        fail(e)
    code = compile(tests, "/tmp/tests.py", "exec", 0, True)
    own, todo = set(), [code]
    while todo:
        c = todo.pop()
        own.add(c)
        todo.extend(k for k in c.co_consts if type(k) is type(code))
    sys.exit = sys_exit
    try:
        exec(code, g)
    except SystemExit as e:
        frames, tb = [], e.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code is not here:
                frames.append(tb.tb_frame)
            tb = tb.tb_next
        for fr in frames:
            c = fr.f_code
            f = c.co_filename
            if c not in own and not (f.startswith(stdlib) and "-packages" not in f) and not f.startswith("<frozen "):
                raise
        if not (e.code is None or (type(e.code) in (int, bool) and e.code == 0)):
            raise
        for fr in frames:
            r = getattr(fr.f_locals.get("self"), "result", None) if fr.f_code.co_name == "runTests" else None
            if r is not None and (r.testsRun == 0 or len(r.skipped) > 0):
                msg = "no tests ran" if r.testsRun == 0 else "%d of %d tests skipped" % (len(r.skipped), r.testsRun)
                write(2, ("unittest: " + msg + ": not passed\n").encode())
                _exit(1)
    except BaseException as e:
        fail(e)
    try:
        sys.stdout.flush()
    except BaseException:
        pass
    if mark:
        write(1, ("\n[ponder: tests ran to the end " + mark + "]\n").encode())
`

// RunCode implements evaluator.CodeRunner: the whole program must run to
// its last line.
func (r UnitTestRunner) RunCode(ctx context.Context, code string, timeout time.Duration) (evaluator.CodeRun, error) {
	return r.RunTests(ctx, code, "", timeout)
}

// RunTests implements evaluator.TestRunner: program runs, then tests; it
// passes when it exits with status 0 and the tests ran to their end, or
// ended themselves with status 0.
func (r UnitTestRunner) RunTests(ctx context.Context, program, tests string, timeout time.Duration) (evaluator.CodeRun, error) {
	var nb [16]byte
	if _, err := rand.Read(nb[:]); err != nil {
		return evaluator.CodeRun{}, fmt.Errorf("sandbox: random mark: %w", err)
	}
	nonce := hex.EncodeToString(nb[:])
	mark := "\n[ponder: tests ran to the end " + nonce + "]\n"
	prog := testsHarness + "\n_ponder_run(\"" + base64.StdEncoding.EncodeToString([]byte(program)) + "\", \"" +
		base64.StdEncoding.EncodeToString([]byte(tests)) + "\")\n"
	res, err := r.Sandbox.Run(ctx, prog, &RunOptions{Timeout: timeout, Stdin: nonce + "\n"})
	run := evaluator.CodeRun{Stdout: res.Stdout, Stderr: res.Stderr, ExitCode: res.ExitCode, Stop: string(res.Stop)}
	if i := strings.LastIndex(run.Stdout, mark); i >= 0 {
		run.Stdout = run.Stdout[:i] + run.Stdout[i+len(mark):]
	} else if err == nil && run.Passed() {
		run.ExitCode = 1
		if run.Stderr != "" && !strings.HasSuffix(run.Stderr, "\n") {
			run.Stderr += "\n"
		}
		run.Stderr += EarlyExit
	}
	return run, err
}
