package ingest

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/retrieval"
)

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func sources(t *testing.T, st retrieval.Store, coll string) []string {
	t.Helper()
	srcs, err := st.Sources(context.Background(), coll, "")
	if err != nil {
		t.Fatal(err)
	}
	return srcs
}

// A symbolic link is one more name for a file: the file is stored once,
// under its own path, however many links reach it and whichever run
// reaches it (its folder, a folder holding a link to it, the link named
// by itself), and a copy stored under a link's path before is removed.
// A link to a file outside the folder stores that file under its real
// path. Real files and links.
func TestSymlinkedFileIsStoredOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	root := t.TempDir()
	docs, other := filepath.Join(root, "docs"), filepath.Join(root, "other")
	write(t, docs, "a.md", "# A\n\nThe vault code is 4711.\n")
	write(t, root, "elsewhere/e.md", "# E\n\nThe ferry leaves at noon.\n")
	symlink(t, "a.md", filepath.Join(docs, "link.md"))
	symlink(t, "../a.md", filepath.Join(docs, "sub", "up.md"))
	symlink(t, filepath.Join(root, "elsewhere", "e.md"), filepath.Join(docs, "out.md"))
	symlink(t, filepath.Join(docs, "a.md"), filepath.Join(other, "b.md"))
	a, e := filepath.Join(docs, "a.md"), filepath.Join(root, "elsewhere", "e.md")
	st := openStore(t)
	ing := New(st, &Options{Collection: "c"})
	want := []string{a, e}
	slices.Sort(want)

	for _, tc := range []struct {
		name  string
		paths []string
		added int
	}{
		{"the folder with the file and three links", []string{docs}, 2},
		{"a folder holding only a link to it", []string{other}, 0},
		{"the link named by itself", []string{filepath.Join(docs, "link.md")}, 0},
		{"a glob matching the file and a link", []string{filepath.Join(docs, "*.md")}, 0},
	} {
		sum, err := ing.Run(ctx, tc.paths, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if sum.Added != tc.added || sum.Skipped+sum.Failed+sum.Removed != 0 {
			t.Errorf("%s: %+v", tc.name, sum)
		}
		if got := sources(t, st, "c"); !slices.Equal(got, want) {
			t.Errorf("%s: stored %q, want each file once: %q", tc.name, got, want)
		}
	}
	hits, err := st.Search(ctx, "c", retrieval.Query{Text: "vault code", K: 5})
	if err != nil || len(hits) != 1 {
		t.Fatalf("one passage wanted, not one a link: %+v %v", hits, err)
	}

	// A document stored under a link's path (as ingest did before) goes
	// once the file is stored under its own; so does a broken link's.
	link := filepath.Join(docs, "link.md")
	legacy := func(src string) retrieval.Document {
		return retrieval.Document{Source: src, Hash: "old", Chunks: []retrieval.Chunk{{Text: "The vault code is 4711."}}}
	}
	symlink(t, filepath.Join(docs, "gone.md"), filepath.Join(docs, "dangling.md"))
	if err := st.Put(ctx, "c", []retrieval.Document{legacy(link), legacy(filepath.Join(docs, "dangling.md"))}); err != nil {
		t.Fatal(err)
	}
	sum, err := ing.Run(ctx, []string{docs}, nil)
	if err != nil {
		t.Fatal(err)
	}
	files := byPath(sum)
	if f := files["link.md"]; f.Status != Removed || !strings.Contains(f.Reason, "a symbolic link to "+a) {
		t.Errorf("copy stored under the link: %s %q, want removed", f.Status, f.Reason)
	}
	if f := files["dangling.md"]; f.Status != Removed || !strings.Contains(f.Reason, "broken symbolic link") {
		t.Errorf("copy stored under a broken link: %s %q, want removed", f.Status, f.Reason)
	}
	if got := sources(t, st, "c"); !slices.Equal(got, want) {
		t.Errorf("after the legacy copies: stored %q, want %q", got, want)
	}
}

// A broken link is reported, with its target, wherever a run meets it:
// a glob (which dropped it silently), a "**" glob, a folder, or named.
func TestBrokenLinksAreReported(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		path func(dir string) string
	}{
		{"glob", func(dir string) string { return filepath.Join(dir, "*.md") }},
		{"deep glob", func(dir string) string { return filepath.Join(dir, "**", "*.md") }},
		{"folder", func(dir string) string { return dir }},
		{"named", func(dir string) string { return filepath.Join(dir, "broken.md") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			write(t, dir, "ok.md", "# OK\n\nfine\n")
			symlink(t, filepath.Join(dir, "moved.md"), filepath.Join(dir, "broken.md"))
			sum, err := New(openStore(t), &Options{Collection: "c"}).Run(ctx, []string{tc.path(dir)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			f, ok := byPath(sum)["broken.md"]
			if !ok || f.Status != Skipped || f.Reason != "a broken symbolic link: its target "+filepath.Join(dir, "moved.md")+" does not exist" {
				t.Errorf("broken link: %+v (in %+v), want skipped naming its target", f, sum.Files)
			}
			// Two links to each other: their targets exist, so "does not
			// exist" (what was said) is wrong; the loop is named.
			loop := t.TempDir()
			symlink(t, filepath.Join(loop, "b.md"), filepath.Join(loop, "a.md"))
			symlink(t, filepath.Join(loop, "a.md"), filepath.Join(loop, "b.md"))
			write(t, loop, "ok.md", "# OK\n\nfine\n")
			path := tc.path(loop)
			if tc.name == "named" {
				path = filepath.Join(loop, "a.md")
			}
			sum, err = New(openStore(t), &Options{Collection: "c"}).Run(ctx, []string{path}, nil)
			if err != nil {
				t.Fatal(err)
			}
			f, ok = byPath(sum)["a.md"]
			if !ok || f.Status != Skipped || f.Reason != "a broken symbolic link: its target "+filepath.Join(loop, "b.md")+" leads back to it (a loop of symbolic links)" {
				t.Errorf("loop of links: %+v (in %+v), want skipped naming the loop", f, sum.Files)
			}
		})
	}
}

// A file that is refused as too large (it grew, or the limit was
// lowered) loses the chunks an earlier run stored: left, its stale text
// would go on grounding answers. The reason says so. Files and stdin.
func TestTooLargeRemovesTheVersionStoredBefore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	small := "# Vault\n\nThe vault code is 4711.\n"
	big := small + strings.Repeat("filler words here. ", 200)
	for _, tc := range []struct {
		name      string
		limit     int64 // the second run's max_file_bytes
		grow      bool  // the file grows past the limit (else the limit drops)
		stdin     bool
		wantFirst string
	}{
		{"file grew", 1000, true, false, "too large: 3"},
		{"limit lowered", 20, false, false, "too large: 3"},
		{"stdin grew", 1000, true, true, "too large: more than 1000 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			write(t, dir, "vault.md", small)
			st := openStore(t)
			run := func(limit int64, text string) Summary {
				t.Helper()
				o := &Options{Collection: "c", MaxFileBytes: limit}
				paths, in := []string{filepath.Join(dir, "vault.md")}, strings.NewReader("")
				if tc.stdin {
					o.StdinName, paths, in = "vault.md", []string{"-"}, strings.NewReader(text)
				}
				sum, err := New(st, o).Run(ctx, paths, in)
				if err != nil {
					t.Fatal(err)
				}
				return sum
			}
			if sum := run(1000, small); sum.Added != 1 {
				t.Fatalf("first run: %+v", sum)
			}
			text := small
			if tc.grow {
				text = big
				write(t, dir, "vault.md", big)
			}
			sum := run(tc.limit, text)
			f := sum.Files[0]
			if f.Status != Skipped || !strings.HasPrefix(f.Reason, tc.wantFirst) ||
				!strings.HasSuffix(f.Reason, "; the version ingested before was removed from the collection") {
				t.Errorf("second run: %s %q, want skipped as too large, saying the old version was removed", f.Status, f.Reason)
			}
			if hits, err := st.Search(ctx, "c", retrieval.Query{Text: "vault code", K: 5}); err != nil || len(hits) != 0 {
				t.Errorf("the old version still answers: %+v %v", hits, err)
			}
		})
	}
}

// Each chunk records its source's name, relative to the folder that holds
// what was ingested: what search_documents shows a remote client.
func TestSourceNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	root := t.TempDir()
	write(t, root, "team/handbook/ops/ports.md", "# Ports\n\nThe admin console listens on port 7443.\n")
	for _, tc := range []struct {
		name, path, stdin, want string
	}{
		{"folder", "team/handbook", "", "handbook/ops/ports.md"},
		{"folder named with a slash", "team/handbook/", "", "handbook/ops/ports.md"},
		{"glob", "team/handbook/**/*.md", "", "handbook/ops/ports.md"},
		{"file", "team/handbook/ops/ports.md", "", "ports.md"},
		{"stdin", "-", "notes/ports.md", "notes/ports.md"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t)
			paths, in := []string{filepath.Join(root, tc.path)}, strings.NewReader("")
			if tc.path == "-" {
				paths, in = []string{"-"}, strings.NewReader("# Ports\n\nThe admin console listens on port 7443.\n")
			}
			if _, err := New(st, &Options{Collection: "c", StdinName: tc.stdin}).Run(ctx, paths, in); err != nil {
				t.Fatal(err)
			}
			hits, err := st.Search(ctx, "c", retrieval.Query{Text: "admin console", K: 1})
			if err != nil || len(hits) != 1 || hits[0].Meta[retrieval.MetaName] != tc.want {
				t.Fatalf("hits %+v %v: want the name %s", hits, err, tc.want)
			}
		})
	}
}
