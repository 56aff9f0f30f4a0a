package plugins

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/sdk"
)

// installScript lays out plugin name in root with a shell script for its
// binary that runs this test binary as the plugin mode names, at mode.
func installScript(t *testing.T, root, name string, kind sdk.Kind, mode string, perm os.FileMode) Manifest {
	t.Helper()
	dir := filepath.Join(root, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeScript(t, filepath.Join(dir, "plugin.sh"), mode, true, perm)
	return writeTestManifest(t, dir, name, kind, "plugin.sh", nil)
}

// A plugin binary without its execute permission (a copy that lost it, a
// chmod 644) was listed "ready", and every start failed with "fork/exec
// …: permission denied". VerifyBinary, which list and check use, says it
// is not executable and how to fix it; the checksum comes first.
func TestVerifyBinary(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		perm   os.FileMode
		tamper bool
		is     error
		want   []string
	}{
		{name: "executable", perm: 0o755},
		{name: "owner only", perm: 0o700},
		{name: "not executable", perm: 0o644, is: ErrNotExecutable,
			want: []string{"plugin echo: not executable: ", "plugin.sh has mode -rw-r--r--, without execute permission", "run `chmod +x ", "or install it again with `ponder plugins install PATH`"}},
		{name: "changed and not executable", perm: 0o644, tamper: true, is: ErrChecksum, want: []string{"checksum mismatch"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := installScript(t, t.TempDir(), "echo", sdk.KindTool, "tool", tt.perm)
			if tt.tamper {
				if err := os.WriteFile(m.Path(), []byte("#!/bin/sh\n"), tt.perm); err != nil {
					t.Fatal(err)
				}
			}
			err := VerifyBinary(m)
			if tt.is == nil {
				if err != nil {
					t.Fatalf("VerifyBinary: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.is) {
				t.Fatalf("VerifyBinary: %v, want %v", err, tt.is)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("VerifyBinary: %v\nwant %q in it", err, w)
				}
			}
			if tt.is == ErrNotExecutable && !strings.Contains(err.Error(), "chmod +x "+m.Path()+"`") {
				t.Errorf("VerifyBinary: %v\nwant the binary's path in the chmod", err)
			}
		})
	}
}

// A start of a binary without its execute permission says so, and how to
// fix it, not "fork/exec …: permission denied"; the failed start is retried
// (it does not disable the plugin), so a chmod +x fixes it without a
// restart of Ponder.
func TestStartOfANonExecutablePlugin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := installScript(t, dir, "echo", sdk.KindTool, "tool", 0o644)
	mgr := newTestManager(t, Options{Dirs: []string{dir}, HealthInterval: -1})
	_, err := callEcho(t, mgr, "echo", `{"text":"hi"}`)
	if !errors.Is(err, ErrNotExecutable) || !strings.Contains(err.Error(), "run `chmod +x "+m.Path()+"`") {
		t.Fatalf("call of a plugin without execute permission: %v", err)
	}
	if err := os.Chmod(m.Path(), 0o755); err != nil {
		t.Fatal(err)
	}
	if res, err := callEcho(t, mgr, "echo", `{"text":"hi"}`); err != nil || res.Text != "hi" {
		t.Fatalf("call after chmod +x: %+v, %v", res, err)
	}
}
