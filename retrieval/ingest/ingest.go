// Package ingest reads documents (.md, .txt, .html, .pdf and source files)
// from files, folders, globs or stdin, chunks them by structure, embeds them
// when an embedder is configured, and stores them in a retrieval.Store.
//
//	ing := ingest.New(store, &ingest.Options{Collection: "docs"})
//	sum, err := ing.Run(ctx, []string{"./docs", "notes/*.md"}, nil)
//	for _, f := range sum.Files {
//		fmt.Println(f.Path, f.Status, f.Reason)
//	}
//
// Bad files (unreadable, binary, empty, too large, malformed) are skipped
// with a reason and never stop the run; re-ingesting an unchanged file is a
// no-op, and a changed one replaces its chunks.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/retrieval"
)

// Options configure an Ingester. The zero value is valid.
type Options struct {
	// Collection to ingest into (default "docs").
	Collection string
	Chunk      ChunkOptions
	// MaxFileBytes skips larger files (default 50 MiB).
	MaxFileBytes int64
	// Embedder, when set, adds dense vectors (else lexical only).
	Embedder retrieval.Embedder
	// BatchBytes: documents are stored in transactions of about this many
	// bytes of text, each chunk counting 512 bytes besides its text
	// (default 4 MiB). A document is never split across transactions.
	BatchBytes int
	// Workers read and chunk files in parallel (default GOMAXPROCS).
	Workers int
	// StdinName names the document read from "-" (default "stdin.txt");
	// its extension picks the reader.
	StdinName string
	// OnFile is called after each file is read (before it is stored).
	OnFile func(f FileResult)
	// OnStored is called after each batch is durably stored, with the
	// sources it held.
	OnStored func(sources []string)
	// KeepMissing keeps the documents of files that are gone from a
	// folder or glob being ingested (by default they are removed:
	// re-ingesting a folder or glob brings the collection in line with it).
	KeepMissing bool
	Logger      zerolog.Logger
	// Now is the clock (tests).
	Now func() time.Time
}

// Status of one file.
type Status string

// File statuses.
const (
	Added     Status = "added"
	Updated   Status = "updated"
	Unchanged Status = "unchanged"
	Skipped   Status = "skipped"
	Failed    Status = "failed" // read fine but could not be stored
	// Removed: the file is gone from a folder or glob being ingested, and its
	// document was removed from the collection.
	Removed Status = "removed"
)

// FileResult is what happened to one file.
type FileResult struct {
	Path   string `json:"path"`
	Status Status `json:"status"`
	Reason string `json:"reason,omitempty"`
	// Note says what was assumed in reading the file, e.g. "read as
	// Windows-1252: the file is not valid UTF-8".
	Note   string `json:"note,omitempty"`
	Bytes  int64  `json:"bytes"`
	Chunks int    `json:"chunks,omitempty"`
}

// Summary is the outcome of a run.
type Summary struct {
	Collection string       `json:"collection"`
	Files      []FileResult `json:"files"`
	Added      int          `json:"added"`
	Updated    int          `json:"updated"`
	Unchanged  int          `json:"unchanged"`
	Skipped    int          `json:"skipped"`
	Failed     int          `json:"failed"`
	Removed    int          `json:"removed"`
	Chunks     int          `json:"chunks"`
	Bytes      int64        `json:"bytes"`
	Seconds    float64      `json:"seconds"`
}

// chunkOverhead is what a chunk counts towards a batch besides its text:
// about what its record, postings and terms take in the store.
const chunkOverhead = 512

// Ingester ingests documents into one collection of a store.
type Ingester struct {
	store retrieval.Store
	o     Options
}

// New returns an Ingester writing to store.
func New(store retrieval.Store, o *Options) *Ingester {
	var opt Options
	if o != nil {
		opt = *o
	}
	if opt.Collection == "" {
		opt.Collection = "docs"
	}
	opt.Chunk = opt.Chunk.norm()
	if opt.MaxFileBytes <= 0 {
		opt.MaxFileBytes = 50 << 20
	}
	if opt.BatchBytes <= 0 {
		opt.BatchBytes = 4 << 20
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	if opt.StdinName == "" {
		opt.StdinName = "stdin.txt"
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Ingester{store: store, o: opt}
}

// Params fingerprints the settings that shape chunks: a document ingested
// with other settings is re-ingested even if its bytes did not change.
func (in *Ingester) Params() string {
	model := ""
	if in.o.Embedder != nil {
		model = in.o.Embedder.Model()
	}
	return fmt.Sprintf("v1 size=%d overlap=%d embed=%s", in.o.Chunk.Size, in.o.Chunk.Overlap, model)
}

// input is one thing to read: a file path, or stdin.
type input struct {
	path  string // absolute path, or StdinName for stdin
	name  string // the name shown to remote clients (see placed.name)
	stdin io.Reader
}

// Expand turns the command line's paths into files: folders are walked
// (hidden entries and node_modules skipped), globs expanded ("**" matches
// any depth; neither it nor a wildcard reaches what the walk skips unless
// the pattern names it), "-" is stdin. A symbolic link to a file is followed and the
// file listed once, under its own path (see anchor.place). Paths that
// match nothing, and broken links, are reported as skipped.
func Expand(paths []string) (files []string, missing []FileResult) {
	found, missing, _ := expand(paths)
	for _, f := range found {
		files = append(files, f.path)
	}
	return files, missing
}

// walked is a folder that Expand walked: Root (absolute) and the folders
// under it (Root itself included) that could not be read, whose files it
// may have missed.
type walked struct {
	Root       string
	Unreadable []string
	// Pattern is the absolute glob a run named (Root is then the folder
	// its matches lie under); Given is the glob as named.
	Pattern, Given string
	// at places the files found under Root.
	at anchor
}

// placed is a file a run found: path is where it is stored (its source),
// name what a remote client is shown instead (a path relative to the
// folder that holds what was named: docs/guide/a.md for the folder docs,
// a.md for a file named by itself), so that no server path leaks.
type placed struct{ path, name string }

// anchor is a folder a run named (a folder walked, a glob's root, or the
// folder of a file named): given is its absolute path as named, real the
// same with symbolic links resolved, and names are made relative to
// base, the folder that holds it (or, for a file named by itself, the
// file's own folder).
type anchor struct{ given, real, base string }

func newAnchor(dir, base string) anchor {
	a := anchor{given: dir, real: dir, base: base}
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		a.real = r
	}
	return a
}

// place says where the file at path (absolute, found under a.given) is
// stored. A symbolic link is one more name for a file, not another file:
// it is stored once, under its real path, expressed under the folder as
// named when it lies there (so a folder named through a link, or under
// /tmp on a system where that is a link, keeps the paths it had), else
// under the real path. A link and its target in one folder, or a link into
// a folder ingested too, so give one document, not two. A broken link is
// an error.
func (a anchor) place(path string) (string, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", err
	}
	if real == path {
		return path, nil
	}
	if rel, ok := relUnder(a.real, real); ok {
		return filepath.Join(a.given, rel), nil
	}
	return real, nil
}

// name is what a remote client is shown for the file stored at src and
// found at path: src relative to a.base when it lies under the folder
// named, else the path it was found at (a link to a file elsewhere).
func (a anchor) name(src, path string) string {
	for _, p := range []string{src, path} {
		if rel, ok := relUnder(a.base, p); ok {
			return filepath.ToSlash(rel)
		}
	}
	return filepath.Base(path)
}

// relUnder is p relative to base when p lies under base (or is base).
func relUnder(base, p string) (string, bool) {
	rel, err := filepath.Rel(base, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return rel, true
}

// brokenLink says why path, which os.Stat could not read (statErr), is a
// broken symbolic link ("" if it is not one): its target is missing, the
// links loop (which read as "does not exist" of a target that does), or
// the target cannot be reached.
func brokenLink(path string, statErr error) string {
	lst, err := os.Lstat(path)
	if err != nil || lst.Mode()&fs.ModeSymlink == 0 {
		return ""
	}
	target, err := os.Readlink(path)
	switch {
	case err != nil:
		return "a broken symbolic link"
	case errors.Is(statErr, syscall.ELOOP):
		return fmt.Sprintf("a broken symbolic link: its target %s leads back to it (a loop of symbolic links)", target)
	case statErr != nil && !errors.Is(statErr, fs.ErrNotExist):
		return fmt.Sprintf("a symbolic link whose target %s cannot be read: %s", target, errText(statErr))
	}
	return fmt.Sprintf("a broken symbolic link: its target %s does not exist", target)
}

// expand is Expand, also returning the folders it walked.
func expand(paths []string) (files []placed, missing []FileResult, dirs []walked) {
	seen := map[string]bool{}
	// add lists the file found at p under a. Only regular files are
	// placed by their target: anything else is listed as found, and
	// read says what it is.
	add := func(p string, a anchor) {
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		src := p
		if st, err := os.Stat(p); err != nil {
			if why := brokenLink(p, err); why != "" {
				missing = append(missing, FileResult{Path: p, Status: Skipped, Reason: why})
				return
			}
		} else if st.Mode().IsRegular() {
			if s, err := a.place(p); err == nil {
				src = s
			}
		}
		if !seen[src] {
			seen[src] = true
			files = append(files, placed{path: src, name: a.name(src, p)})
		}
	}
	for _, p := range paths {
		if p == "-" {
			if !seen["-"] {
				seen["-"] = true
				files = append(files, placed{path: "-"})
			}
			continue
		}
		st, err := os.Stat(p)
		switch {
		case err == nil && st.IsDir():
			// A folder named through a symbolic link is walked through
			// it (WalkDir does not follow a link at its root).
			root := p
			if lst, lerr := os.Lstat(p); lerr == nil && lst.Mode()&fs.ModeSymlink != 0 {
				root = p + string(filepath.Separator)
			}
			w := walked{Root: p}
			if abs, err := filepath.Abs(p); err == nil {
				w.Root = abs
			}
			w.at = newAnchor(w.Root, filepath.Dir(w.Root))
			_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					missing = append(missing, FileResult{Path: path, Status: Skipped, Reason: "unreadable: " + errText(err)})
					if abs, aerr := filepath.Abs(path); aerr == nil {
						w.Unreadable = append(w.Unreadable, abs)
					}
					return nil
				}
				if path != root && walkSkips(d.Name()) {
					if d.IsDir() {
						return filepath.SkipDir
					}
					return nil
				}
				// Not only regular files and links: a named pipe, socket
				// or device in the folder is reported as skipped (read
				// says what it is), as it is when named or globbed; the
				// walk passed over it without a word.
				if !d.IsDir() {
					add(path, w.at)
				}
				return nil
			})
			dirs = append(dirs, w)
		case err == nil:
			abs := p
			if a, err := filepath.Abs(p); err == nil {
				abs = a
			}
			add(abs, newAnchor(filepath.Dir(abs), filepath.Dir(abs)))
		case strings.ContainsAny(p, "*?["):
			matches, unreadable, gerr := glob(p)
			if gerr != nil {
				missing = append(missing, FileResult{Path: p, Status: Skipped, Reason: "bad pattern: " + gerr.Error()})
				continue
			}
			if len(matches) == 0 {
				missing = append(missing, FileResult{Path: p, Status: Skipped, Reason: "no file matches this pattern"})
			}
			// Sources are absolute, so the pattern they are matched
			// against when pruning is too.
			abs, aerr := filepath.Abs(p)
			if aerr != nil {
				abs = p
			}
			w := walked{Root: globRoot(abs), Pattern: abs, Given: p}
			w.at = newAnchor(w.Root, filepath.Dir(w.Root))
			for _, m := range matches {
				// A broken link matches too: add reports it.
				if st, err := os.Stat(m); err != nil || !st.IsDir() {
					add(m, w.at)
				}
			}
			if aerr == nil {
				for _, u := range unreadable {
					if a, err := filepath.Abs(u); err == nil {
						w.Unreadable = append(w.Unreadable, a)
					}
				}
				dirs = append(dirs, w)
			}
		default:
			reason := "unreadable: " + errText(err)
			if why := brokenLink(p, err); why != "" {
				reason = why
			}
			missing = append(missing, FileResult{Path: p, Status: Skipped, Reason: reason})
		}
	}
	return files, missing, dirs
}

// walkSkips says whether a folder walk passes over an entry of this name:
// hidden entries, and node_modules (a package manager's copy of other
// people's files, often tens of thousands of them). Globs use the same
// rule for what their wildcards reach (see named).
func walkSkips(name string) bool {
	return strings.HasPrefix(name, ".") || name == "node_modules"
}

// named says whether the pattern part p, which matches the path part s,
// may match it: a name a folder walk skips (walkSkips) is matched only by
// a part that spells out its first character (".git", ".*",
// "node_modules"), as a shell's "*" leaves out hidden names. "**", "*",
// "?" and "[...]" reach no further than a folder walk does: "docs/**/*.md"
// took in docs/.git/x.md and docs/node_modules/pkg/r.md, which
// `ingest docs` leaves out.
func named(p, s string) bool {
	return !walkSkips(s) || (p != "" && !strings.ContainsRune("*?[", rune(p[0])))
}

// matchParts says whether the path parts match the pattern parts one by
// one, each as named allows.
func matchParts(pat, parts []string) bool {
	if len(pat) != len(parts) {
		return false
	}
	for i, p := range pat {
		if ok, _ := filepath.Match(p, parts[i]); !ok || !named(p, parts[i]) {
			return false
		}
	}
	return true
}

// split is a path's parts.
func split(p string) []string { return strings.Split(p, string(filepath.Separator)) }

// glob is filepath.Glob with "**" matching any number of folders. Neither
// wildcards nor "**" reach a name a folder walk skips unless the pattern
// names it (see named). It also returns the folders a "**" walk could not
// read (filepath.Glob reports none: pruning then relies on a file under
// an unreadable folder not reading as absent).
func glob(pattern string) (matches, unreadable []string, err error) {
	i := strings.Index(pattern, "**")
	if i < 0 {
		all, err := filepath.Glob(pattern)
		for _, m := range all {
			if globMatch(pattern, m) {
				matches = append(matches, m)
			}
		}
		return matches, nil, err
	}
	root, rest := deepGlob(pattern, i)
	if _, err := filepath.Match(rest, ""); err != nil {
		return nil, nil, err
	}
	restParts := split(rest)
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			unreadable = append(unreadable, path)
			return nil
		}
		if d.IsDir() {
			// A folder "**" may not enter and no part of rest names
			// (a folder is never the last part, the file's) holds no
			// match: it is not read at all, as a folder walk does not
			// read it (node_modules can hold tens of thousands of files).
			if path != root && walkSkips(d.Name()) && !slices.ContainsFunc(restParts[:len(restParts)-1], func(p string) bool {
				ok, _ := filepath.Match(p, d.Name())
				return ok && named(p, d.Name())
			}) {
				return filepath.SkipDir
			}
			return nil
		}
		if matchDeep(root, rest, path) {
			matches = append(matches, path)
		}
		return nil
	})
	sort.Strings(matches)
	return matches, unreadable, err
}

// deepGlob splits a pattern at its first "**" (at i): the folder before it
// and the pattern after it. A pattern ending in "**" ("docs/**") matches
// every file under the folder, as a shell's globstar does.
func deepGlob(pattern string, i int) (root, rest string) {
	root = filepath.Clean(pattern[:i])
	if pattern[:i] == "" {
		root = "."
	}
	rest = strings.TrimLeft(pattern[i+2:], string(filepath.Separator))
	if rest == "" {
		rest = "*"
	}
	return root, rest
}

// matchDeep says whether path, under root, matches root/**/rest: some tail
// of its path below root matches rest, and the folders "**" stands for
// are none a folder walk skips (see named).
func matchDeep(root, rest, path string) bool {
	rel, ok := relUnder(root, path)
	if !ok {
		return false
	}
	// rest's parts ("*" crosses no separator) match the path's last
	// ones; "**" stands for those before.
	parts, pat := split(rel), split(rest)
	j := len(parts) - len(pat)
	if j < 0 || slices.ContainsFunc(parts[:j], walkSkips) {
		return false
	}
	return matchParts(pat, parts[j:])
}

// globMatch says whether path matches pattern as glob matches files: the
// test pruning applies to stored sources.
func globMatch(pattern, path string) bool {
	if i := strings.Index(pattern, "**"); i >= 0 {
		root, rest := deepGlob(pattern, i)
		return matchDeep(root, rest, path)
	}
	pat, parts := split(filepath.Clean(pattern)), split(filepath.Clean(path))
	if len(pat) != len(parts) {
		// A ".." after a wildcard ("docs/*/../x.md") lines the parts
		// up no more: filepath.Match decides alone.
		ok, _ := filepath.Match(pattern, path)
		return ok
	}
	return matchParts(pat, parts)
}

// globRoot is the folder every match of an absolute pattern lies under:
// its leading components that hold no pattern character.
func globRoot(pattern string) string {
	dir := pattern
	for strings.ContainsAny(dir, "*?[\\") {
		dir = filepath.Dir(dir)
	}
	return dir
}

// fileKind names what a non-regular file is.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0, m&fs.ModeCharDevice != 0:
		return "a device"
	}
	return "mode " + m.String()
}

func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// readResult is a file read and chunked by a worker.
type readResult struct {
	FileResult
	doc *retrieval.Document
	// remove: the file changed and holds nothing to store any more, so
	// the version stored before is removed.
	remove bool
}

// Run ingests paths (see Expand); stdin is read for "-". It returns the
// summary and an error only when the run could not go on (the store
// failed, ctx ended); bad files are skipped with a reason in the summary.
// When ctx ends while stdin is being read, Run returns without waiting for
// the read, which cannot be stopped (see readAll): stdin must not be read
// again.
func (in *Ingester) Run(ctx context.Context, paths []string, stdin io.Reader) (Summary, error) {
	start := time.Now()
	sum := Summary{Collection: in.o.Collection, Files: []FileResult{}}
	spec := retrieval.CollectionSpec{Name: in.o.Collection}
	if in.o.Embedder != nil {
		spec.Model = in.o.Embedder.Model()
		if spec.Dim = in.o.Embedder.Dim(); spec.Dim == 0 {
			// Learn the dimension from the endpoint before writing anything.
			v, err := in.o.Embedder.Embed(ctx, []string{"dimension probe"})
			if err != nil {
				return sum, fmt.Errorf("embedder: %w", err)
			}
			if len(v) != 1 || len(v[0]) == 0 {
				return sum, fmt.Errorf("embedder %s returned no vector", spec.Model)
			}
			spec.Dim = len(v[0])
		}
	}
	if _, err := in.store.EnsureCollection(ctx, spec); err != nil {
		return sum, err
	}
	files, missing, dirs := expand(paths)
	results := append([]FileResult(nil), missing...)

	jobs := make(chan input)
	out := make(chan readResult)
	var wg sync.WaitGroup
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range in.o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				r := in.read(wctx, j)
				select {
				case out <- r:
				case <-wctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for _, f := range files {
			j := input{path: f.path, name: f.name}
			if f.path == "-" {
				j = input{path: in.o.StdinName, name: in.o.StdinName, stdin: stdin}
				if stdin == nil {
					j.stdin = strings.NewReader("")
				}
			}
			select {
			case jobs <- j:
			case <-wctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(out) }()

	var batch []readResult
	batchBytes := 0
	var runErr error
	flush := func() {
		if len(batch) == 0 || runErr != nil {
			return
		}
		docs := make([]retrieval.Document, len(batch))
		srcs := make([]string, len(batch))
		for i, r := range batch {
			docs[i] = *r.doc
			srcs[i] = r.doc.Source
		}
		err := in.store.Put(ctx, in.o.Collection, docs)
		for _, r := range batch {
			if err != nil {
				r.Status, r.Reason = Failed, "not stored: "+err.Error()
			}
			results = append(results, r.FileResult)
		}
		if err != nil {
			runErr = err
		} else if in.o.OnStored != nil {
			in.o.OnStored(srcs)
		}
		batch, batchBytes = nil, 0
	}
	for r := range out {
		if in.o.OnFile != nil {
			in.o.OnFile(r.FileResult)
		}
		if r.remove && runErr == nil {
			if _, err := in.store.DeleteDocument(ctx, in.o.Collection, r.Path); err != nil {
				r.Reason += "; removing the version ingested before failed: " + err.Error()
				runErr = err
				cancel()
			} else {
				r.Reason += "; the version ingested before was removed from the collection"
			}
		}
		if r.doc == nil || runErr != nil {
			if runErr != nil && r.doc != nil {
				r.Status, r.Reason = Failed, "not stored: an earlier batch failed"
			}
			results = append(results, r.FileResult)
			continue
		}
		if in.o.Embedder != nil {
			if err := in.embed(ctx, r.doc); err != nil {
				r.Status, r.Reason, r.doc = Failed, "embedding failed: "+err.Error(), nil
				results = append(results, r.FileResult)
				runErr = fmt.Errorf("embed %s: %w", r.Path, err)
				cancel()
				continue
			}
		}
		batch = append(batch, r)
		// A chunk's record and index entries cost about as much as a
		// short text, so each counts towards the batch besides its text:
		// a batch of small documents with many tiny sections stays as
		// small a transaction as one of few large chunks.
		for _, c := range r.doc.Chunks {
			batchBytes += len(c.Text) + chunkOverhead
		}
		if batchBytes >= in.o.BatchBytes || len(batch) >= 512 {
			flush()
			if runErr != nil {
				cancel()
			}
		}
	}
	flush()
	if runErr == nil && ctx.Err() != nil {
		runErr = ctx.Err()
	}
	if runErr == nil && !in.o.KeepMissing {
		var removed []FileResult
		removed, runErr = in.prune(ctx, dirs, files)
		results = append(results, removed...)
	}
	sort.SliceStable(results, func(i, j int) bool { return results[i].Path < results[j].Path })
	sum.Files = results
	for _, r := range results {
		switch r.Status {
		case Added:
			sum.Added++
		case Updated:
			sum.Updated++
		case Unchanged:
			sum.Unchanged++
		case Skipped:
			sum.Skipped++
		case Failed:
			sum.Failed++
		case Removed:
			sum.Removed++
		}
		if r.Status == Added || r.Status == Updated {
			sum.Chunks += r.Chunks
			sum.Bytes += r.Bytes
		}
	}
	sum.Seconds = time.Since(start).Seconds()
	return sum, runErr
}

// prune removes from the collection the documents of files that are gone
// from the folders walked and the globs expanded (dirs), so that
// re-ingesting a folder or a glob brings the collection in line with it.
// It works through the Store interface alone, so every backend prunes
// alike. A document is removed only when its source lies under a walked
// folder (or matches a glob, under the folder the glob starts from), was
// not among the files found (seen),
// lies under no folder that could not be read, and is not there on disk
// (a hidden file, or one in node_modules, ingested by name, stays). A
// folder that could not be read itself prunes nothing, and neither does
// one where no file was found, nor a glob that matched none: an empty
// folder is more often a share that is not mounted than a collection meant
// to be emptied.
//
// A document stored under the path of a symbolic link (as ingest did
// before links were followed to their file) is removed too when the link
// is broken, or when its file was found under its own path: the file is
// then stored once, there.
func (in *Ingester) prune(ctx context.Context, dirs []walked, files []placed) ([]FileResult, error) {
	found := make(map[string]bool, len(files))
	seen := make([]string, len(files))
	for i, f := range files {
		found[f.path] = true
		seen[i] = f.path
	}
	sep := string(filepath.Separator)
	under := func(path, dir string) bool {
		return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, sep)+sep)
	}
	var out []FileResult
	done := map[string]bool{}
	for _, w := range dirs {
		// A glob prunes what it matches, a folder what lies under it.
		covers, what, gone := under, w.Root, "gone from "+w.Root
		if w.Pattern != "" {
			covers = func(path, _ string) bool { return under(path, w.Root) && globMatch(w.Pattern, path) }
			what, gone = w.Given, "gone (it matched "+w.Given+")"
		}
		if slices.ContainsFunc(w.Unreadable, func(u string) bool { return under(w.Root, u) }) {
			in.o.Logger.Warn().Str("folder", w.Root).Msg("the folder could not be read: documents of files gone from it are kept")
			continue
		}
		if !slices.ContainsFunc(seen, func(f string) bool { return covers(f, w.Root) }) {
			in.o.Logger.Warn().Str("folder", what).Msg("no file found in the folder (or matching the glob): its documents are kept (remove them with `ponder docs delete` or `ponder collections delete`)")
			continue
		}
		srcs, err := in.store.Sources(ctx, in.o.Collection, strings.TrimSuffix(w.Root, sep)+sep)
		if err != nil {
			return out, fmt.Errorf("list the documents of %s: %w", what, err)
		}
		for _, src := range srcs {
			if found[src] || done[src] || !covers(src, w.Root) || slices.ContainsFunc(w.Unreadable, func(u string) bool { return under(src, u) }) {
				continue
			}
			why := gone
			if lst, err := os.Lstat(src); err == nil && lst.Mode()&fs.ModeSymlink != 0 {
				file, perr := w.at.place(src)
				switch {
				case perr != nil:
					why = "a broken symbolic link now"
				case found[file]:
					why = "a symbolic link to " + file + ", which is stored under its own path"
				default:
					continue
				}
			} else if !errors.Is(err, fs.ErrNotExist) {
				continue
			}
			done[src] = true
			ok, err := in.store.DeleteDocument(ctx, in.o.Collection, src)
			if err != nil {
				out = append(out, FileResult{Path: src, Status: Failed, Reason: why + ", but removing it from the collection failed: " + err.Error()})
				return out, fmt.Errorf("remove %s (%s): %w", src, why, err)
			}
			if ok {
				out = append(out, FileResult{Path: src, Status: Removed, Reason: why + ": its chunks were removed from the collection"})
			}
		}
	}
	return out, nil
}

func (in *Ingester) embed(ctx context.Context, d *retrieval.Document) error {
	texts := make([]string, len(d.Chunks))
	for i, c := range d.Chunks {
		texts[i] = embedText(d.Title, c)
	}
	vecs, err := in.o.Embedder.Embed(ctx, texts)
	if err != nil {
		return err
	}
	if len(vecs) != len(texts) {
		return fmt.Errorf("embedder returned %d vectors for %d texts", len(vecs), len(texts))
	}
	for i := range d.Chunks {
		d.Chunks[i].Vector = vecs[i]
	}
	return nil
}

// embedText is what is embedded for a chunk: its heading trail gives the
// model the context the chunk's text may leave implicit.
func embedText(title string, c retrieval.Chunk) string {
	trail := c.Headings
	if len(trail) == 0 && title != "" {
		trail = []string{title}
	}
	if len(trail) == 0 {
		return c.Text
	}
	return strings.Join(trail, " > ") + "\n" + c.Text
}

// unpacked says whether a stored document, unchanged since, holds more
// chunks than the chunker makes of any document of its size: it was
// chunked before documents of tiny sections were packed (a file of
// one-line headings then made a chunk per line and cost about 100 times
// its size in memory), and is chunked again. Other documents keep their
// chunks: a version in Params would chunk, and embed, every document of
// every collection again for the few this affects. Unpacked, a document
// of n bytes of text makes at most sectionBudget(n) sections and
// n/(Size-Overlap) more chunks where they are cut; text is at most 3 times
// the file's bytes (a Windows-1252 byte can take 3 in UTF-8). A PDF's
// text has no such bound (pages can repeat one content stream), so PDFs
// are left as they are.
func (in *Ingester) unpacked(old retrieval.DocInfo, typ string) bool {
	if typ == "pdf" || typ == "" {
		return false
	}
	n := 3 * old.Bytes
	o := in.o.Chunk
	most := int64(sectionBudget(int(min(n, 1<<40)), o)) + n/int64(max(1, o.Size-o.Overlap)) + 1
	return int64(old.Chunks) > most
}

// readAll reads r to its end, or until ctx ends. A read of a process's
// stdin blocks and heeds no signal: `sleep 30 | ponder ingest -` ran until
// its input ended, whatever Ctrl-C or SIGTERM said. So the read runs aside
// and ctx ends the wait. A blocked read cannot be undone: that goroutine
// ends when r does (a process's stdin: the process exits right after; an
// in-memory reader: at once), and r must not be read again.
func readAll(ctx context.Context, r io.Reader) ([]byte, error) {
	type read struct {
		b   []byte
		err error
	}
	got := make(chan read, 1)
	go func() {
		b, err := io.ReadAll(r)
		got <- read{b, err}
	}()
	select {
	case res := <-got:
		return res.b, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// read loads, checks and chunks one input.
func (in *Ingester) read(ctx context.Context, j input) readResult {
	r := readResult{FileResult: FileResult{Path: j.path}}
	skip := func(format string, a ...any) readResult {
		r.Status, r.Reason = Skipped, fmt.Sprintf(format, a...)
		return r
	}
	// tooLarge skips a file over the limit. A version of it stored
	// before (when it was smaller, or the limit larger) is removed: left,
	// its stale chunks would go on grounding answers with no sign that the
	// file has moved on.
	tooLarge := func(format string, a ...any) readResult {
		res := skip(format, a...)
		have, err := in.store.Documents(ctx, in.o.Collection, []string{j.path})
		if err != nil {
			res.Status, res.Reason = Failed, res.Reason+"; looking up the version ingested before failed: "+err.Error()
			return res
		}
		_, res.remove = have[j.path]
		return res
	}
	var data []byte
	if j.stdin != nil {
		// Files are stored under their absolute paths: a text named like
		// one would replace that file's document, its passages then cited
		// as the file's (an MCP client sending texts could rewrite any
		// ingested file's content that way).
		if filepath.IsAbs(j.path) {
			return skip("the name %q is an absolute path, which names an ingested file: give a relative name (notes/page.md)", j.path)
		}
		b, err := readAll(ctx, io.LimitReader(j.stdin, in.o.MaxFileBytes+1))
		if err != nil {
			if ctx.Err() != nil {
				r.Status, r.Reason = Failed, "not read: stopped while reading it: "+context.Cause(ctx).Error()
				return r
			}
			return skip("unreadable: %v", err)
		}
		data = b
	} else {
		st, err := os.Stat(j.path)
		if err != nil {
			return skip("unreadable: %s", errText(err))
		}
		// Only regular files are read: opening a named pipe blocks until a
		// writer comes (and Ctrl-C cannot stop it), a device never ends.
		switch {
		case st.IsDir():
			return skip("a link to a folder: links inside a folder are not followed (name the folder itself to ingest it)")
		case !st.Mode().IsRegular():
			return skip("not a regular file (%s)", fileKind(st.Mode()))
		}
		if st.Size() > in.o.MaxFileBytes {
			r.Bytes = st.Size()
			return tooLarge("too large: %d bytes, limit %d (raise retrieval.max_file_bytes, PONDER_MAX_FILE_BYTES)", st.Size(), in.o.MaxFileBytes)
		}
		if TypeOf(j.path) == "" {
			r.Bytes = st.Size()
			return skip("unsupported file type %q (ingest reads .md .txt .html .pdf and source files)", filepath.Ext(j.path))
		}
		f, err := os.Open(j.path)
		if err != nil {
			return skip("unreadable: %s", errText(err))
		}
		data, err = io.ReadAll(io.LimitReader(f, in.o.MaxFileBytes+1))
		f.Close()
		if err != nil {
			return skip("unreadable: %s", errText(err))
		}
	}
	r.Bytes = int64(len(data))
	if int64(len(data)) > in.o.MaxFileBytes {
		return tooLarge("too large: more than %d bytes (raise retrieval.max_file_bytes, PONDER_MAX_FILE_BYTES)", in.o.MaxFileBytes)
	}
	hash := retrieval.HashBytes(data)
	params := in.Params()
	// A text file's encoding is part of what shapes its chunks: a file
	// stored before it was decoded (Windows-1252 read as U+FFFD) is read
	// again; plain UTF-8 keeps the params it always had.
	enc := ""
	var encErr error
	if t := TypeOf(j.path); t != "" && t != "pdf" {
		if enc, encErr = sniffText(data); encErr == nil && enc != encUTF8 {
			params += " enc=" + enc
		}
	}
	have, err := in.store.Documents(ctx, in.o.Collection, []string{j.path})
	if err != nil {
		r.Status, r.Reason = Failed, "store lookup failed: "+err.Error()
		return r
	}
	old, exists := have[j.path]
	// gone skips a file whose content now gives nothing to store; a
	// version of it stored before is stale and is removed.
	gone := func(format string, a ...any) readResult {
		res := skip(format, a...)
		res.remove = exists && old.Hash != hash
		return res
	}
	if len(strings.TrimSpace(string(data[:min(len(data), 4096)]))) == 0 && len(strings.TrimSpace(string(data))) == 0 {
		return gone("empty")
	}
	same := exists && old.Hash == hash && old.Params == params
	repack := same && in.unpacked(old, TypeOf(j.path))
	if same && !repack {
		r.Status, r.Chunks = Unchanged, old.Chunks
		return r
	}
	if encErr != nil {
		return gone("%v in a .%s file", encErr, TypeOf(j.path))
	}
	ex, err := extract(ctx, j.path, data, enc, in.o.MaxFileBytes)
	if err != nil {
		if errors.Is(err, errTextTooLarge) {
			// As tooLarge, with the version stored before looked up.
			res := skip("%v (raise retrieval.max_file_bytes, PONDER_MAX_FILE_BYTES)", err)
			res.remove = exists
			return res
		}
		if errors.Is(err, ErrUnsupported) {
			return skip("unsupported file type %q (ingest reads .md .txt .html .pdf and source files)", filepath.Ext(j.path))
		}
		if errors.Is(err, ErrMalformed) {
			return gone("%s", strings.TrimPrefix(err.Error(), ErrMalformed.Error()+": "))
		}
		return skip("%v", err)
	}
	if strings.TrimSpace(ex.Text) == "" {
		return gone("empty: no text found")
	}
	chunks, packed := chunkDoc(ex, in.o.Chunk)
	if len(chunks) == 0 {
		return gone("empty: no text found")
	}
	now := in.o.Now().UTC()
	doc := &retrieval.Document{Source: j.path, Hash: hash, Params: params, Title: ex.Title, Bytes: int64(len(data)),
		IngestedAt: now, Meta: map[string]string{retrieval.MetaType: ex.Type}}
	if j.name != "" {
		doc.Meta[retrieval.MetaName] = j.name
	}
	var notes []string
	if repack {
		notes = append(notes, "chunked again: it was stored before documents of tiny sections were packed, with "+strconv.Itoa(old.Chunks)+" chunks")
	}
	if ex.Note != "" {
		notes = append(notes, ex.Note)
	}
	if packed > 0 {
		notes = append(notes, fmt.Sprintf("its %d sections average %d bytes (under %d): neighbouring sections were packed into %d chunks of up to %d bytes, so that it costs memory and store space by its size rather than its section count",
			packed, len(ex.Text)/packed, min(minSectionBytes, in.o.Chunk.Size/4), len(chunks), in.o.Chunk.Size))
	}
	r.Note = strings.Join(notes, "; ")
	if ex.Encoding != "" && ex.Encoding != encUTF8BOM {
		// Offsets are into the decoded text, not the file: the encoding
		// on every chunk says so (and can be filtered on).
		doc.Meta[retrieval.MetaEncoding] = ex.Encoding
		for i := range chunks {
			chunks[i].Meta[retrieval.MetaEncoding] = ex.Encoding
		}
	}
	for i := range chunks {
		if j.name != "" {
			chunks[i].Meta[retrieval.MetaName] = j.name // chunkDoc made Meta
		}
		chunks[i].Title = ex.Title
		chunks[i].Source = j.path
		chunks[i].DocHash = hash
		chunks[i].IngestedAt = now
		chunks[i].ID = retrieval.ChunkID(j.path, hash, i)
	}
	doc.Chunks = chunks
	r.doc = doc
	r.Chunks = len(chunks)
	r.Status = Added
	if exists {
		r.Status = Updated
	}
	return r
}
