package toolstest

import (
	"os"
	"path/filepath"
	"strings"
)

// ProcessesWith lists the host processes whose command line contains s:
// tests mark what they start with a unique string and check that nothing
// with it is left running.
func ProcessesWith(s string) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), s) {
			out = append(out, e.Name())
		}
	}
	return out
}
