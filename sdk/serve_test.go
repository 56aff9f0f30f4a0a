package sdk

import (
	"errors"
	"testing"
)

// The commands a plugin run by hand prints name it by a path: a bare word
// means an installed plugin to `ponder plugins check`, so a binary found
// on PATH was named as the installed one.
func TestSelfPath(t *testing.T) {
	found := func() (string, error) { return "/home/u/bin/upper", nil }
	lost := func() (string, error) { return "", errors.New("no /proc") }
	for _, c := range []struct {
		arg0 string
		exe  func() (string, error)
		want string
	}{
		{"./upper", found, "./upper"},
		{"/opt/plugins/upper", found, "/opt/plugins/upper"},
		{"upper", found, "/home/u/bin/upper"},
		{"upper", lost, "./upper"},
	} {
		if got := selfPath(c.arg0, c.exe); got != c.want {
			t.Errorf("selfPath(%q) = %q, want %q", c.arg0, got, c.want)
		}
	}
}
