package server

import (
	"os/exec"
	"strings"
	"testing"
)

// The server reads what it needs of an LLM failure (the endpoint's HTTP
// status) through core's sentinels and methods the llm package's errors
// have, so it depends on no LLM client: it imported go-openai for its
// error types only.
func TestServerImportsNoLLMClient(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "github.com/ponder-rlm/ponder/server").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list returned too little to be a real dependency list: %v", deps)
	}
	for _, d := range deps {
		for _, f := range []string{"github.com/sashabaranov/go-openai", "github.com/ponder-rlm/ponder/llm"} {
			if d == f || strings.HasPrefix(d, f+"/") {
				t.Errorf("server depends on %s", d)
			}
		}
	}
}
