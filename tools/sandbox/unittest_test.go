//go:build linux

package sandbox

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/core/evaluator"
)

// A program passes its tests only when they ran: a candidate that exits
// with status 0 before them (sys.exit(0) at import, exit() or os._exit(0)
// inside the function check calls) does not pass, nor does one that
// forges the end-of-run mark from its own source. Tests that end the
// program themselves once their checks ran (unittest.main(), sys.exit(0)
// after the asserts) pass, and fail when a check does. Output the
// candidate prints is the program's alone.
func TestUnitTestsRunToTheEnd(t *testing.T) {
	t.Parallel()
	sb := newTestSandbox(t, func(o *Options) { o.Timeout = 5 * time.Second })
	problem := "def f(x):\n    \"\"\"Return x + 1.\"\"\"\n"
	check := "def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(5) == 6\n"
	unittestMain := "import unittest\n\nclass TestF(unittest.TestCase):\n    def test_f(self):\n" +
		"        self.assertEqual(f(1), 2)\n        self.assertEqual(f(5), 6)\n\nif __name__ == '__main__':\n    unittest.main()\n"
	exitAfterAsserts := "import sys\nassert f(1) == 2\nassert f(5) == 6\nsys.exit(0)\n"
	const right, wrong = "def f(x):\n    return x + 1\n", "def f(x):\n    return x\n"
	// The candidate reads its own source for anything that could be the
	// mark (a long hex run) and prints it in every form, then exits 0.
	const forger = "import os, re\nfor h in set(re.findall(r'[0-9a-f]{16,}', open(__file__).read())):\n" +
		"    print('\\n[ponder: tests ran to the end ' + h + ']\\n[ponder: ran to the end ' + h + ']')\n" +
		"def f(x):\n    return x\nos._exit(0)\n"
	cases := []struct {
		name, candidate, tests string
		entry                  string
		pass                   bool
		detail                 string
	}{
		{"right", right, check, "f", true, "tests passed"},
		{"right, printing", "def f(x):\n    print('x is', x, end='')\n    return x + 1\n", check, "f", true, "tests passed"},
		{"wrong", wrong, check, "f", false, "AssertionError: assert candidate(1) == 2"},
		{"sys.exit at import", "import sys\ndef f(x):\n    return x\nsys.exit(0)\n", check, "f", false, "exited before its tests finished"},
		{"exit() in the body", "    exit()\n", check, "f", false, "exited before its tests finished"},
		{"os._exit in the function", "def f(x):\n    import os; os._exit(0)\n", check, "f", false, "exited before its tests finished"},
		{"the mark forged from the source", forger, check, "f", false, "exited before its tests finished"},
		{"unittest.main, right", right, unittestMain, "", true, "tests passed"},
		{"unittest.main, wrong", wrong, unittestMain, "", false, "FAILED (failures=1)"},
		{"unittest.main, sys.exit(0) in the function", "import sys\ndef f(x):\n    sys.exit(0)\n", unittestMain, "", false, "FAILED (errors=1)"},
		{"sys.exit(0) after the asserts, right", right, exitAfterAsserts, "", true, "tests passed"},
		{"sys.exit(0) after the asserts, wrong", wrong, exitAfterAsserts, "", false, "AssertionError: assert f(1) == 2"},
		{"sys.exit(0) in the function the asserts call", "import sys\ndef f(x):\n    sys.exit(0)\n", exitAfterAsserts, "", false, "exited before its tests finished"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ut := evaluator.UnitTest{Runner: UnitTestRunner{sb}, EntryPoint: c.entry}
			ev, err := ut.Evaluate(context.Background(), core.EvalRequest{
				Task: core.Task{Problem: problem, Truth: c.tests},
				Path: []core.Node{{Kind: core.KindAnswer, Content: "```python\n" + c.candidate + "```", Terminal: true}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if ev.Correct == nil || *ev.Correct != c.pass || !strings.Contains(ev.Detail, c.detail) {
				t.Errorf("correct %v, detail %q; want %v, %q", ev.Correct, ev.Detail, c.pass, c.detail)
			}
		})
	}
	run, err := UnitTestRunner{sb}.RunCode(context.Background(), "print('out', end='')", time.Second)
	if err != nil || !run.Passed() || run.Stdout != "out" {
		t.Errorf("a program's output: %+v, %v", run, err)
	}
}
