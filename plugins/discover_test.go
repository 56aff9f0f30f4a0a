package plugins

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDiscoverSaysWhatItCannotRead: a directory without a manifest is not
// a plugin and is passed over, but one whose manifest cannot be looked at
// (unreadable for Ponder's user; here a symlink loop, which fails for
// root too) is a problem `plugins list` and the log show, not a plugin
// that vanished without a word.
func TestDiscoverSaysWhatItCannotRead(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "notaplugin"), 0o755)
	loop := filepath.Join(dir, "looped")
	os.MkdirAll(loop, 0o755)
	if err := os.Symlink(ManifestFile, filepath.Join(loop, ManifestFile)); err != nil {
		t.Fatal(err)
	}
	found, problems := Discover([]string{dir})
	if len(found) != 0 || len(problems) != 1 || !strings.Contains(problems[0].Error(), "plugin directory "+loop+": ") {
		t.Fatalf("found %v, problems %v", found, problems)
	}
}
