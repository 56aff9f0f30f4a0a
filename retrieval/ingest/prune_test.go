package ingest

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ponder-rlm/ponder/retrieval"
)

// TestPruneGoneFiles: re-ingesting a folder or a glob removes the documents
// of its files that are gone, and nothing else.
func TestPruneGoneFiles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// change is done to the folder between the two runs; it returns
		// the arguments of the second run, relative to the folder.
		change      func(t *testing.T, root string) []string
		keepMissing bool
		removed     []string // relative to root
	}{
		{"deleted file", func(t *testing.T, root string) []string {
			rm(t, root, "docs/b.md")
			return []string{"docs"}
		}, false, []string{"docs/b.md"}},
		{"deleted subfolder", func(t *testing.T, root string) []string {
			if err := os.RemoveAll(filepath.Join(root, "docs/sub")); err != nil {
				t.Fatal(err)
			}
			return []string{"docs"}
		}, false, []string{"docs/sub/c.md"}},
		{"renamed file", func(t *testing.T, root string) []string {
			if err := os.Rename(filepath.Join(root, "docs/b.md"), filepath.Join(root, "docs/b2.md")); err != nil {
				t.Fatal(err)
			}
			return []string{"docs"}
		}, false, []string{"docs/b.md"}},
		// docs2 shares the prefix "docs" but is another folder.
		{"files gone outside the folder", func(t *testing.T, root string) []string {
			rm(t, root, "docs2/d.md")
			rm(t, root, "single.md")
			return []string{"docs"}
		}, false, nil},
		{"subfolder ingested", func(t *testing.T, root string) []string {
			rm(t, root, "docs/b.md")
			rm(t, root, "docs/sub/c.md")
			write(t, root, "docs/sub/new.md", "new file keeps the subfolder non-empty")
			return []string{"docs/sub"}
		}, false, []string{"docs/sub/c.md"}},
		// A file ingested by name that a folder walk skips is still there.
		{"hidden file ingested by name", func(t *testing.T, root string) []string {
			return []string{"docs"}
		}, false, nil},
		{"keep missing", func(t *testing.T, root string) []string {
			rm(t, root, "docs/b.md")
			return []string{"docs"}
		}, true, nil},
		{"file named, not the folder", func(t *testing.T, root string) []string {
			rm(t, root, "docs/b.md")
			return []string{"docs/a.md"}
		}, false, nil},
		// A glob prunes the files it matched that are gone, and only
		// those.
		{"glob", func(t *testing.T, root string) []string {
			rm(t, root, "docs/b.md")
			return []string{"docs/*.md"}
		}, false, []string{"docs/b.md"}},
		{"glob leaves what it does not match", func(t *testing.T, root string) []string {
			rm(t, root, "docs/sub/c.md")
			rm(t, root, "docs2/d.md")
			return []string{"docs/*.md"}
		}, false, nil},
		{"glob across folders", func(t *testing.T, root string) []string {
			rm(t, root, "docs/b.md")
			rm(t, root, "docs2/d.md")
			write(t, root, "docs2/e.md", "echo walrus")
			return []string{"*/*.md"}
		}, false, []string{"docs/b.md", "docs2/d.md"}},
		// docs2 shares the prefix "docs" but is outside docs/**.
		{"deep glob", func(t *testing.T, root string) []string {
			rm(t, root, "docs/sub/c.md")
			rm(t, root, "docs2/d.md")
			return []string{"docs/**/*.md"}
		}, false, []string{"docs/sub/c.md"}},
		{"glob of another type", func(t *testing.T, root string) []string {
			rm(t, root, "docs/b.md")
			write(t, root, "docs/notes.txt", "a text file")
			return []string{"docs/*.txt"}
		}, false, nil},
		// A glob that matches nothing now is more often a share that is
		// not mounted.
		{"glob matching nothing", func(t *testing.T, root string) []string {
			for _, f := range []string{"docs/a.md", "docs/b.md", "docs/.hidden.md"} {
				rm(t, root, f)
			}
			return []string{"docs/*.md"}
		}, false, nil},
		{"glob, keep missing", func(t *testing.T, root string) []string {
			rm(t, root, "docs/b.md")
			return []string{"docs/*.md"}
		}, true, nil},
		{"folder gone", func(t *testing.T, root string) []string {
			if err := os.RemoveAll(filepath.Join(root, "docs")); err != nil {
				t.Fatal(err)
			}
			return []string{"docs"}
		}, false, nil},
		// An empty folder is more often a share that is not mounted.
		{"folder emptied", func(t *testing.T, root string) []string {
			for _, f := range []string{"docs/a.md", "docs/b.md", "docs/sub/c.md", "docs/.hidden.md"} {
				rm(t, root, f)
			}
			return []string{"docs"}
		}, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			root := t.TempDir()
			for f, text := range map[string]string{"docs/a.md": "alpha walrus", "docs/b.md": "bravo walrus", "docs/sub/c.md": "charlie walrus",
				"docs/.hidden.md": "hidden walrus", "docs2/d.md": "delta walrus", "single.md": "single walrus"} {
				write(t, root, f, text)
			}
			st := openStore(t)
			in := New(st, &Options{Collection: "docs", KeepMissing: tc.keepMissing})
			abs := func(rel []string) []string {
				out := make([]string, len(rel))
				for i, r := range rel {
					out[i] = filepath.Join(root, r)
				}
				return out
			}
			if _, err := in.Run(ctx, abs([]string{"docs", "docs2", "single.md", "docs/.hidden.md"}), nil); err != nil {
				t.Fatal(err)
			}
			before, _ := st.Sources(ctx, "docs", "")
			if len(before) != 6 {
				t.Fatalf("first run stored %q", before)
			}
			sum, err := in.Run(ctx, abs(tc.change(t, root)), nil)
			if err != nil {
				t.Fatalf("second run: %v", err)
			}
			var removed []string
			for _, f := range sum.Files {
				if f.Status == Removed {
					rel, _ := filepath.Rel(root, f.Path)
					removed = append(removed, rel)
				}
			}
			if !slices.Equal(removed, tc.removed) || sum.Removed != len(tc.removed) {
				t.Fatalf("removed %q (count %d), want %q\n%+v", removed, sum.Removed, tc.removed, sum.Files)
			}
			after, _ := st.Sources(ctx, "docs", "")
			for _, src := range before {
				rel, _ := filepath.Rel(root, src)
				if slices.Contains(after, src) == slices.Contains(tc.removed, rel) {
					t.Fatalf("after the second run the collection holds %q; want all of %q but %q", after, before, tc.removed)
				}
			}
			// What was removed is not found any more.
			for _, rel := range tc.removed {
				hits, err := st.Search(ctx, "docs", retrieval.Query{Text: "walrus", K: 10, Filter: map[string]string{"source": filepath.Join(root, rel)}})
				if err != nil || len(hits) != 0 {
					t.Fatalf("search still finds %s: %v %v", rel, hits, err)
				}
			}
		})
	}
}

func write(t *testing.T, root, rel, text string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func rm(t *testing.T, root, rel string) {
	t.Helper()
	if err := os.Remove(filepath.Join(root, rel)); err != nil {
		t.Fatal(err)
	}
}
