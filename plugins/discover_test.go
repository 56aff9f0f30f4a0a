package plugins

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/sdk"
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

// A plugin of a name found earlier is valid but unused: Discover says so
// with a *ShadowedError carrying its manifest and the directory of the
// plugin that is used, which `plugins list` shows as itself ("shadowed"),
// not as a nameless invalid row.
func TestDiscoverShadowed(t *testing.T) {
	first, second := t.TempDir(), t.TempDir()
	installMode(t, first, "echo", sdk.KindTool, "tool")
	installMode(t, second, "echo", sdk.KindTool, "tool")
	installMode(t, second, "other", sdk.KindTool, "tool")
	found, problems := Discover([]string{first, second})
	if len(found) != 2 || found[0].Dir != filepath.Join(first, "echo") || found[1].Name != "other" {
		t.Fatalf("found %+v", found)
	}
	var sh *ShadowedError
	if len(problems) != 1 || !errors.As(problems[0], &sh) {
		t.Fatalf("problems %v, want one *ShadowedError", problems)
	}
	if sh.Manifest.Name != "echo" || sh.Manifest.Dir != filepath.Join(second, "echo") || sh.By != filepath.Join(first, "echo") {
		t.Errorf("shadowed %+v by %s", sh.Manifest, sh.By)
	}
	if want := "plugin echo in " + filepath.Join(second, "echo") + " ignored: already found in " + filepath.Join(first, "echo"); sh.Error() != want {
		t.Errorf("error %q, want %q", sh.Error(), want)
	}
}
