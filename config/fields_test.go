package config_test

import (
	"flag"
	"os"
	"strings"
	"testing"

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

func TestFieldsHideSecrets(t *testing.T) {
	t.Parallel()
	c := config.Default()
	c.LLM.APIKey, c.Server.Token = "sk-very-secret", "tok"
	for _, f := range config.Fields(c) {
		if s, ok := f.Value.(string); ok && (strings.Contains(s, "very-secret") || s == "tok") {
			t.Fatalf("%s printed a secret", f.Path)
		}
	}
}
