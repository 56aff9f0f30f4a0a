package evaluator

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/tasks"
)

func init() {
	builtins = append(builtins, func() core.EvaluatorSpec { return UnitTestSpec(nil) })
}

// CodeRunner runs a Python program in a sandbox. core does not import
// tools/: cmd/ponder registers UnitTestSpec with the python sandbox behind
// this interface.
type CodeRunner interface {
	RunCode(ctx context.Context, code string, timeout time.Duration) (CodeRun, error)
}

// TestRunner is a CodeRunner that is told which part of the program is
// the tests, so that it can pass a test program that ends itself once its
// checks ran (unittest.main(), sys.exit(0) after the asserts) and fail a
// candidate that exits before them. The unittest verifier uses it when its
// runner has it.
type TestRunner interface {
	RunTests(ctx context.Context, program, tests string, timeout time.Duration) (CodeRun, error)
}

// CodeRun is how a program ran.
type CodeRun struct {
	Stdout, Stderr string
	ExitCode       int
	// Stop says why it ended: "exit" when it exited by itself, else the
	// limit that stopped it (timeout, memory_limit, ...).
	Stop string
}

// Passed reports a clean exit with status 0.
func (r CodeRun) Passed() bool { return r.Stop == "exit" && r.ExitCode == 0 }

// ErrNoSandbox is returned by the unit-test verifier when no sandbox was
// wired in.
var ErrNoSandbox = errors.New("unittest: no sandbox is configured (the python tool needs bubblewrap and python3; see `ponder tools list`)")

// UnitTest is a programmatic verifier for code tasks: it runs the
// candidate program of the path's last node together with the task's tests
// in the sandbox. Passing scores 1, failing -1 (Correct says which);
// Detail names the failure (the assertion, the exception, the limit).
type UnitTest struct {
	Runner CodeRunner
	// Tests is the test code; empty means the task's Truth.
	Tests string
	// EntryPoint, when the tests define check(candidate) (HumanEval), is
	// the function passed to it.
	EntryPoint string
	Timeout    time.Duration
}

var _ core.Evaluator = UnitTest{}

// UnitTestSpec registers the unit-test verifier running code with r (nil:
// every evaluation fails with ErrNoSandbox).
func UnitTestSpec(r CodeRunner) core.EvaluatorSpec {
	return core.EvaluatorSpec{
		Name: "unittest",
		Summary: "runs the candidate program with the task's unit tests (the truth, or the tests parameter) in the python " +
			"sandbox: 1 when they pass, -1 when they fail",
		Params: []core.ParamSpec{
			{Name: "tests", Type: core.ParamString, Default: "", Description: "test code (default: the task's truth); assert statements, or a check(candidate) function"},
			{Name: "entry_point", Type: core.ParamString, Default: "", Description: "function the tests' check(candidate) is called with (HumanEval)"},
			{Name: "timeout", Type: core.ParamDuration, Default: "10s", Description: "wall-clock limit of one test run"},
		},
		New: func(p core.Params) (core.Evaluator, error) {
			return UnitTest{Runner: r, Tests: p.String("tests"), EntryPoint: p.String("entry_point"), Timeout: p.Duration("timeout")}, nil
		},
	}
}

var checkDef = regexp.MustCompile(`(?m)^def check\s*\(`)

// Program assembles what the sandbox runs: the candidate (completed from
// the problem's prompt when it only has a function body), the tests, and
// the call of check(entry_point) when the tests define check.
func (u UnitTest) Program(problem, candidate, tests string) string {
	code, t := u.parts(problem, candidate, tests)
	return code + "\n\n" + t
}

// parts are the program's two parts: the candidate, and the tests with
// the call of check.
func (u UnitTest) parts(problem, candidate, tests string) (code, t string) {
	code = candidate
	if u.EntryPoint != "" && !regexp.MustCompile(`(?m)^\s*def\s+`+regexp.QuoteMeta(u.EntryPoint)+`\s*\(`).MatchString(code) {
		// A HumanEval-style completion: the body of the prompt's function.
		code = problem + code
	}
	t = tests + "\n"
	if u.EntryPoint != "" && checkDef.MatchString(tests) {
		t += "\ncheck(" + u.EntryPoint + ")\n"
	}
	return code, t
}

// PathFree implements core.PathFree.
func (UnitTest) PathFree() bool { return true }

// Evaluate implements core.Evaluator.
func (u UnitTest) Evaluate(ctx context.Context, req core.EvalRequest) (core.Evaluation, error) {
	tests := u.Tests
	if tests == "" {
		tests = req.Task.Truth
	}
	last, ok := req.LastNode()
	if strings.TrimSpace(tests) == "" || !ok {
		return core.Evaluation{}, core.ErrNotApplicable
	}
	if u.Runner == nil {
		return core.Evaluation{}, ErrNoSandbox
	}
	candidate, ok := tasks.ExtractProgram(last.Content)
	if !ok && last.Kind == core.KindToolCall {
		candidate, ok = last.Content, strings.TrimSpace(last.Content) != ""
	}
	if !ok {
		return core.Evaluation{}, core.ErrNotApplicable
	}
	timeout := u.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	code, t := u.parts(req.Task.Problem, candidate, tests)
	var run CodeRun
	var err error
	if tr, ok := u.Runner.(TestRunner); ok {
		run, err = tr.RunTests(ctx, code, t, timeout)
	} else {
		run, err = u.Runner.RunCode(ctx, code+"\n\n"+t, timeout)
	}
	if err != nil {
		return core.Evaluation{}, fmt.Errorf("unittest: %w", err)
	}
	pass := run.Passed()
	ev := core.Evaluation{Score: -1, Kind: core.ScoreVerifier, Correct: &pass}
	if pass {
		ev.Score = 1
		ev.Detail = "tests passed"
		return ev, nil
	}
	ev.Detail = failure(run)
	return ev, nil
}

// failure names why the tests failed in one line.
func failure(r CodeRun) string {
	if r.Stop != "exit" && r.Stop != "" {
		return "stopped: " + r.Stop
	}
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	if last == "" {
		return fmt.Sprintf("exit status %d", r.ExitCode)
	}
	// Show the failing assert line with a bare AssertionError.
	if last == "AssertionError" {
		for i := len(lines) - 2; i >= 0; i-- {
			if l := strings.TrimSpace(lines[i]); strings.HasPrefix(l, "assert") {
				return "AssertionError: " + l
			}
		}
	}
	return last
}
