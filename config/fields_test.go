package config_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/config"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md's settings table")

const begin, end = "<!-- settings:begin -->\n", "<!-- settings:end -->"

// TestConfigurationDocIsCurrent keeps docs/configuration.md's table in step
// with the Config struct: run `go test ./config -update` after adding a field.
func TestConfigurationDocIsCurrent(t *testing.T) {
	const path = "../docs/configuration.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the %q … %q markers", path, begin, end)
	}
	want := doc[:i+len(begin)] + config.Markdown() + doc[j:]
	if want == doc {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("%s is out of date with config.Config: run go test ./config -update", path)
}

// Fields shows no secret: the secret settings, URLs' passwords, and an MCP
// server's bearer token, headers and environment (printed whole before).
func TestFieldsHideSecrets(t *testing.T) {
	t.Parallel()
	c := config.Default()
	c.LLM.APIKey, c.Server.Token = "sk-very-secret", "tok"
	c.Server.Tokens = []string{"very-secret-t1", "very-secret-t2"}
	c.LLM.BaseURL = "http://user:pw-very-secret@127.0.0.1:8000/v1"
	c.Retrieval.QdrantURL, c.Retrieval.EmbedURL = "https://q:very-secret-q@q:6334", "http://e:very-secret-e@e/v1"
	c.Tools.MCPServers = []config.MCPServer{
		{Name: "gh", URL: "https://u:very-secret-url@example.com/mcp?api_key=very-secret-query", Bearer: "very-secret-bearer",
			Headers: map[string]string{"X-Api-Key": "very-secret-header"}, Timeout: 5 * time.Second},
		{Name: "fs", Command: "npx", Args: []string{"-y", "server"}, Env: map[string]string{"GITHUB_TOKEN": "very-secret-env"}},
	}
	var servers string
	for _, f := range config.Fields(c) {
		b, err := json.Marshal(f.Value)
		if err != nil {
			t.Fatal(err)
		}
		if s := string(b); strings.Contains(s, "very-secret") || s == `"tok"` {
			t.Errorf("%s printed a secret: %s", f.Path, s)
		}
		if f.Path == "tools.mcp_servers" {
			servers = string(b)
		}
		if f.Path == "llm.base_url" && f.Value != "http://user:xxxxx@127.0.0.1:8000/v1" {
			t.Errorf("llm.base_url = %v", f.Value)
		}
	}
	// What is not secret is still shown, as the file writes it.
	for _, want := range []string{`"name":"gh"`, `"url":"https://u:xxxxx@example.com/mcp?api_key=xxxxx"`, `"bearer":"(set)"`, `"X-Api-Key":"(set)"`, `"timeout":"5s"`, `"args":["-y","server"]`, `"GITHUB_TOKEN":"(set)"`} {
		if !strings.Contains(servers, want) {
			t.Errorf("tools.mcp_servers = %s, want %s in it", servers, want)
		}
	}
}

// An MCP server's arguments show what runs, without the secrets servers
// take as arguments: an option's value (--api-key sk-..., --token=...),
// a variable passed on (docker -e GITHUB_TOKEN=...), a header, a
// well-known key given bare, a database URL's password.
func TestFieldsHideSecretArgs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"no secret", []string{"-y", "@modelcontextprotocol/server-filesystem", "/data", "--max-tokens", "512"},
			[]string{"-y", "@modelcontextprotocol/server-filesystem", "/data", "--max-tokens", "512"}},
		{"option then value", []string{"server.py", "--api-key", "abc123", "--port", "8080"},
			[]string{"server.py", "--api-key", "(set)", "--port", "8080"}},
		{"option=value", []string{"--token=abc123", "--client_secret=s3", "--apiKey=k", "--verbose=true"},
			[]string{"--token=(set)", "--client_secret=(set)", "--apiKey=(set)", "--verbose=true"}},
		{"short option", []string{"-p", "hunter2-pwd", "--password", "hunter2"},
			[]string{"-p", "hunter2-pwd", "--password", "(set)"}},
		{"docker -e", []string{"run", "-i", "--rm", "-e", "GITHUB_PERSONAL_ACCESS_TOKEN=abc123", "-e", "GITHUB_TOOLSETS=repos", "ghcr.io/github/github-mcp-server"},
			[]string{"run", "-i", "--rm", "-e", "GITHUB_PERSONAL_ACCESS_TOKEN=(set)", "-e", "GITHUB_TOOLSETS=repos", "ghcr.io/github/github-mcp-server"}},
		{"env name only", []string{"-e", "GITHUB_TOKEN", "image"}, []string{"-e", "GITHUB_TOKEN", "image"}},
		{"header", []string{"mcp-remote", "https://example.com/mcp", "--header", "X-Team: blue", "-H", "Authorization: Bearer abc123"},
			[]string{"mcp-remote", "https://example.com/mcp", "--header", "X-Team: (set)", "-H", "Authorization: (set)"}},
		{"header whole", []string{"Authorization:Bearer abc123"}, []string{"Authorization: (set)"}},
		{"bare well-known keys", []string{"sk-proj-abc123", "ghp_abc123", "--key-less", "--model=sk-live"},
			[]string{"(set)", "(set)", "--key-less", "--model=(set)"}},
		{"database url", []string{"postgresql://ponder:abc123@db:5432/app?sslpassword=abc123"},
			[]string{"postgresql://ponder:xxxxx@db:5432/app?sslpassword=xxxxx"}},
		{"database url option", []string{"--db=postgres://ponder:abc123@db/app"}, []string{"--db=postgres://ponder:xxxxx@db/app"}},
		{"switch off", []string{"--no-auth", "server.py"}, []string{"--no-auth", "server.py"}},
		{"switch then secret option", []string{"--use-auth", "--token", "abc123"}, []string{"--use-auth", "--token", "(set)"}},
		{"secret option last", []string{"serve", "--token"}, []string{"serve", "--token"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := config.Default()
			c.Tools.MCPServers = []config.MCPServer{{Name: "s", Command: "cmd", Args: tc.args}}
			for _, f := range config.Fields(c) {
				if f.Path != "tools.mcp_servers" {
					continue
				}
				got := f.Value.([]map[string]any)[0]["args"]
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("args %q shown as %q, want %q", tc.args, got, tc.want)
				}
			}
		})
	}
}
