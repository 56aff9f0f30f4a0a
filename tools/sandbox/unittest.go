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

// testsHarness runs after the candidate. It reads the end-of-run nonce
// from stdin (so that it is in no file the program can read: its source,
// its environment), runs the tests in the program's module, and writes
// the mark when they end: by running to their last line, or by an exit
// with status 0 of their own (unittest.main(), sys.exit(0) after the
// asserts) that no frame of the candidate's raised. Other failures show
// the tests' part of the traceback, as if they had been run alone.
const testsHarness = `

def _ponder_tests(_src):
    import base64, io, linecache, os, sys, traceback
    mark = sys.stdin.readline().strip()
    sys.stdin = io.StringIO("")
    src = base64.b64decode(_src).decode("utf-8", "replace")
    name = "/tmp/tests.py"
    linecache.cache[name] = (len(src), None, src.splitlines(True), name)
    here = sys._getframe().f_code
    try:
        exec(compile(src, name, "exec"), globals())
    except SystemExit as e:
        tb = e.__traceback__
        while tb is not None and (tb.tb_frame.f_code is here or tb.tb_frame.f_code.co_filename != here.co_filename):
            tb = tb.tb_next
        if tb is not None or e.code not in (None, 0):
            raise
    except BaseException as e:
        traceback.print_exception(type(e), e, e.__traceback__.tb_next)
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            pass
        os._exit(1)
    try:
        sys.stdout.flush()
    except BaseException:
        pass
    if mark:
        os.write(1, ("\n[ponder: tests ran to the end " + mark + "]\n").encode())
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
	prog := program + testsHarness + "\n_ponder_tests(\"" + base64.StdEncoding.EncodeToString([]byte(tests)) + "\")\n"
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
