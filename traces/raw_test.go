package traces_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/traces"
)

func TestRawServesTheStoredDocument(t *testing.T) {
	t.Parallel()
	st, err := traces.Open(t.TempDir(), 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := solveInto(t, st, "What is 3 + 4?")
	b, err := st.Raw(res.TraceID)
	if err != nil {
		t.Fatal(err)
	}
	var tr core.Trace
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatal(err)
	}
	if tr.ID != res.TraceID || tr.Answer != "7" || tr.Structure.Len() != 3 {
		t.Fatalf("raw trace: id %s answer %q %d nodes", tr.ID, tr.Answer, tr.Structure.Len())
	}
	for _, id := range []string{"0123456789abcdef", "../../etc/passwd", ""} {
		if _, err := st.Raw(id); !errors.Is(err, traces.ErrNotFound) {
			t.Errorf("Raw(%q): %v, want ErrNotFound", id, err)
		}
	}
}
