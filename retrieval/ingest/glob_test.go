package ingest

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// globTree is a folder with what a folder walk skips: a hidden folder, a
// hidden file, node_modules, and a hidden folder deeper down.
var globTree = []string{
	"gl/a.md", "gl/sub/b.md", "gl/.hidden.md", "gl/.git/x.md", "gl/.notes/n.md",
	"gl/node_modules/pkg/r.md", "gl/sub/.hidden/c.md", "gl/sub/node_modules/q.md",
}

// Globs reach what a folder walk reaches: "**" and wildcards do not stand
// for a hidden name or node_modules ("gl/**/*.md" took in gl/.git/x.md and
// gl/node_modules/pkg/r.md, which `ingest gl` leaves out); a pattern that
// spells such a name out reaches it.
func TestGlobsSkipWhatAFolderWalkSkips(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, f := range globTree {
		write(t, dir, f, "# "+f+"\n\ntext\n")
	}
	rel := func(paths []string) []string {
		out := []string{}
		for _, p := range paths {
			r, err := filepath.Rel(dir, p)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, filepath.ToSlash(r))
		}
		slices.Sort(out)
		return out
	}
	walk, _ := Expand([]string{filepath.Join(dir, "gl")})
	if got, want := rel(walk), []string{"gl/a.md", "gl/sub/b.md"}; !slices.Equal(got, want) {
		t.Fatalf("folder walk: %q, want %q", got, want)
	}
	for _, tc := range []struct {
		pattern string
		want    []string
	}{
		{"gl/**/*.md", rel(walk)},
		{"gl/**", rel(walk)},
		{"gl/*/*.md", []string{"gl/sub/b.md"}},
		{"gl/*.md", []string{"gl/a.md"}},
		{"gl/*/*/*.md", nil},
		// Named, they are reached.
		{"gl/.git/**", []string{"gl/.git/x.md"}},
		{"gl/.*/*.md", []string{"gl/.git/x.md", "gl/.notes/n.md"}},
		{"gl/.*.md", []string{"gl/.hidden.md"}},
		{"gl/**/.hidden/*.md", []string{"gl/sub/.hidden/c.md"}},
		{"gl/**/node_modules/*.md", []string{"gl/sub/node_modules/q.md"}},
		{"gl/**/node_modules/*/*.md", []string{"gl/node_modules/pkg/r.md"}},
		{"gl/node_modules/*/*.md", []string{"gl/node_modules/pkg/r.md"}},
		// "**" stands for no hidden folder, even when the rest names
		// another: gl/.git/ is not crossed to reach a .hidden below it.
		{"gl/**/.hidden.md", []string{"gl/.hidden.md"}},
	} {
		files, missing := Expand([]string{filepath.Join(dir, filepath.FromSlash(tc.pattern))})
		want := tc.want
		if want == nil {
			want = []string{}
		}
		if got := rel(files); !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", tc.pattern, got, want)
		}
		if len(want) == 0 && (len(missing) != 1 || missing[0].Reason != "no file matches this pattern") {
			t.Errorf("%s: missing %+v, want no file matches", tc.pattern, missing)
		}
	}
}

// A glob's pruning follows the same rule: a hidden file ingested by name
// and gone since is not the glob's to remove.
func TestGlobPrunesOnlyWhatItReaches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	for _, f := range []string{"gl/a.md", "gl/.git/x.md"} {
		write(t, dir, f, "# "+f+"\n\ntext\n")
	}
	st := openStore(t)
	in := New(st, &Options{Collection: "c"})
	hidden := filepath.Join(dir, "gl", ".git", "x.md")
	if _, err := in.Run(ctx, []string{hidden}, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(hidden); err != nil {
		t.Fatal(err)
	}
	sum, err := in.Run(ctx, []string{filepath.Join(dir, "gl", "**", "*.md")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Added != 1 || sum.Removed != 0 {
		t.Errorf("summary %+v, want gl/a.md added and nothing removed", sum)
	}
	if got := sources(t, st, "c"); !slices.Contains(got, hidden) {
		t.Errorf("stored %q: the hidden file ingested by name was removed", got)
	}
}
