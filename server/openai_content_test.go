package server

import (
	"testing"

	"github.com/ponder-rlm/ponder/core"
)

// A choice's content is its answer; without one, the last step only when a
// budget or time limit stopped the search (finish_reason length says it is
// cut short). A search cancelled before an answer (the server shutting
// down) sent its half-way move as the answer with finish_reason stop.
func TestAnswerContent(t *testing.T) {
	t.Parallel()
	path := []core.Node{{Kind: core.KindProblem, Content: "4 9 10 13"}, {Kind: core.KindStep, Content: " 10 - 4 = 6 (left: 4 6) "}}
	for _, c := range []struct {
		res  core.Result
		want string
	}{
		{core.Result{Answer: "24", Stopped: core.StopDone, BestPath: path}, "24"},
		{core.Result{Answer: "24", Stopped: core.StopCancelled, BestPath: path}, "24"},
		{core.Result{Stopped: core.StopBudget, BestPath: path}, "10 - 4 = 6 (left: 4 6)"},
		{core.Result{Stopped: core.StopTimeout, BestPath: path}, "10 - 4 = 6 (left: 4 6)"},
		{core.Result{Stopped: core.StopCancelled, BestPath: path}, ""},
		{core.Result{Stopped: core.StopError, BestPath: path}, ""},
	} {
		if got := answerContent(c.res); got != c.want {
			t.Errorf("answer %q, stopped %s: content %q, want %q", c.res.Answer, c.res.Stopped, got, c.want)
		}
	}
}
