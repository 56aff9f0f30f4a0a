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
// candidate prints is the program's alone. A candidate that reads its
// stdin, shadows or patches what the harness uses, exits from code it
// compiled, or skips the tests does not pass by it.
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
	const stdinForger = "import os, sys\nn = sys.stdin.readline().strip()\n" +
		"os.write(1, ('\\n[ponder: tests ran to the end ' + n + ']\\n').encode())\nos._exit(0)\n"
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
		// The nonce is read before the candidate runs: its stdin is
		// empty, as in a plain run, and holds no nonce to forge the mark.
		{"reads its stdin, right", "import sys\ndata = sys.stdin.read()\ndef f(x):\n    return x + 1 + len(data)\n", check, "f", true, "tests passed"},
		{"the mark forged from stdin", stdinForger, check, "f", false, "exited before its tests finished"},
		// What the harness uses is bound before the candidate runs.
		{"shadows compile", "def compile(*a, **k):\n    return 'pass'\ndef f(x):\n    return x\n", check, "f", false, "AssertionError: assert candidate(1) == 2"},
		{"shadows exec", "def exec(*a, **k):\n    pass\ndef f(x):\n    return x\n", check, "f", false, "AssertionError: assert candidate(1) == 2"},
		{"patches base64", "import base64\nbase64.b64decode = lambda s: b''\ndef f(x):\n    return x\n", check, "f", false, "AssertionError: assert candidate(1) == 2"},
		{"patches os._exit", "import os\nos._exit = lambda c: None\ndef f(x):\n    return x\n", check, "f", false, "AssertionError: assert candidate(1) == 2"},
		{"patches sys.exit, unittest.main", "import sys\nsys.exit = lambda *a: None\n" + wrong, unittestMain, "", false, "FAILED (failures=1)"},
		// An exit from code the candidate compiled is the candidate's.
		{"sys.exit(0) in exec'd code", "exec('def f(x):\\n    raise SystemExit(0)')\n", exitAfterAsserts, "", false, "exited before its tests finished"},
		{"exit() in eval'd code", "f = eval('lambda x: exit()')\n", check, "f", false, "exited before its tests finished"},
		{"unittest.SkipTest", "import unittest\ndef f(x):\n    raise unittest.SkipTest('no')\n", unittestMain, "", false, "unittest: 1 of 1 tests skipped: not passed"},
		{"no test ran", "import unittest\nf = unittest.main\n", "def check(candidate):\n    assert candidate(0) == 1\n", "f", false, "unittest: no tests ran: not passed"},
		{"exit() after the asserts, right", right, "assert f(1) == 2\nexit(0)\n", "", true, "tests passed"},
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
