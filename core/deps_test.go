package core_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCoreImportsNoTransport guards the dependency direction: core and its
// sub-packages import no transport, plugin, storage or LLM-client package.
// The outer packages implement core's interfaces, never the reverse.
func TestCoreImportsNoTransport(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/ponder-rlm/ponder/core/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{
		"net/http", "net/rpc", "os/exec", "database/sql", "plugin",
		"google.golang.org/grpc", "github.com/hashicorp/go-plugin", "github.com/mark3labs/mcp-go",
		"github.com/sashabaranov/go-openai", "go.etcd.io/bbolt", "github.com/qdrant/go-client",
		"github.com/ponder-rlm/ponder/llm", "github.com/ponder-rlm/ponder/server",
		"github.com/ponder-rlm/ponder/plugins", "github.com/ponder-rlm/ponder/retrieval",
		"github.com/ponder-rlm/ponder/tools",
	}
	deps := strings.Fields(string(out))
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				t.Errorf("core depends on %s", d)
			}
		}
	}
	// zerolog needs package net for IP fields; core itself must not.
	direct, err := exec.Command("go", "list", "-f", "{{.ImportPath}}: {{join .Imports \" \"}}", "github.com/ponder-rlm/ponder/core/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, direct)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(direct)), "\n") {
		pkg, imports, _ := strings.Cut(line, ": ")
		for _, imp := range strings.Fields(imports) {
			if imp == "net" || strings.HasPrefix(imp, "net/") {
				t.Errorf("%s imports %s", pkg, imp)
			}
		}
	}
	if len(deps) < 10 {
		t.Fatalf("go list returned too little to be a real dependency list: %v", deps)
	}
}
