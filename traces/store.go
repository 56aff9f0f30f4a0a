// Package traces keeps the traces of reasoning runs: live ones in memory
// (their tracers, for viewers that follow them) and finished ones as JSON
// files under a directory, newest first, bounded in number.
//
//	st, err := traces.Open(filepath.Join(dataDir, "traces"), 200)
//	eng := core.NewEngine(policy, reg, &core.EngineOptions{OnStart: st.Start, OnEnd: st.Finish})
//	...
//	t, err := st.Get(id) // live (rebuilt from its events) or finished (from disk)
package traces

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/text"
)

// Summary describes one run for lists.
type Summary struct {
	ID       string          `json:"id"`
	Strategy string          `json:"strategy"`
	Pack     string          `json:"pack"`
	Problem  string          `json:"problem"` // first 200 characters
	Status   core.StopReason `json:"status"`
	Answer   string          `json:"answer"`
	Usage    core.Usage      `json:"usage"`
	Started  time.Time       `json:"started"`
	Session  string          `json:"session,omitempty"`
}

// ErrNotFound is returned for unknown trace ids, and for runs whose trace
// was not kept (its file could not be written, or is damaged).
var ErrNotFound = errors.New("trace not found")

// ErrDamaged is wrapped in the error of ReadFile and Get for a trace whose
// file is there but cannot be read as a trace; when a scan found it so, the
// run is not listed and Get's error wraps ErrNotFound too.
var ErrDamaged = errors.New("trace file damaged")

// maxUnsaved bounds the runs remembered as not saved (SaveError).
const maxUnsaved = 256

// staleAfter is how old a temporary trace file or a summary without its
// trace must be before a scan removes it: younger ones may belong to a
// write in progress in another process.
const staleAfter = time.Hour

var validID = regexp.MustCompile(`^[0-9a-f]{16}$`)

// ValidID reports whether id is a trace id (16 hex digits), as the store
// names its files.
func ValidID(id string) bool { return validID.MatchString(id) }

type live struct {
	sum    Summary
	task   core.Task
	tracer *core.Tracer
}

// Store holds live and finished traces. It is safe for concurrent use.
type Store struct {
	dir  string
	keep int
	log  zerolog.Logger

	mu       sync.Mutex
	live     map[string]*live
	finished map[string]Summary
	// subscribers are told when a run starts or finishes (runs lists).
	changed chan struct{}
	// scanned is the directory's modification time at the last scan; bad
	// are files that are not traces (and why), not to be read again while
	// they are there.
	scanned time.Time
	bad     map[string]error
	// dirErr is why dir could not be created at Open: each finished run
	// tries again, and says so while it fails (SaveError).
	dirErr error
	// unsaved are finished runs whose trace could not be written, and why;
	// unsavedOrder is their order, oldest first, bounded by maxUnsaved.
	unsaved      map[string]error
	unsavedOrder []string
}

// Options configure a Store.
type Options struct {
	Logger zerolog.Logger
}

// Open returns a store writing finished traces under dir (created if
// missing) and keeping the newest keep of them (keep <= 0: 200). With dir
// "" nothing is written: finished runs stay listed but Get fails for them.
// A dir that does not exist and cannot be created (a read-only disk) is no
// error: runs still run, and each finished one tries again to make it,
// saying why its trace was not kept while that fails (SaveError).
func Open(dir string, keep int, opts *Options) (*Store, error) {
	if keep <= 0 {
		keep = 200
	}
	s := &Store{dir: dir, keep: keep, live: map[string]*live{}, finished: map[string]Summary{}, bad: map[string]error{},
		unsaved: map[string]error{}, changed: make(chan struct{})}
	if opts != nil {
		s.log = opts.Logger
	} else {
		s.log = zerolog.Nop()
	}
	if dir == "" {
		return s, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		if _, serr := os.Stat(dir); !errors.Is(serr, os.ErrNotExist) {
			return nil, fmt.Errorf("trace store %s: %w", dir, err)
		}
		s.dirErr = fmt.Errorf("trace store %s: %w", dir, err)
		s.log.Warn().Err(s.dirErr).Msg("traces will not be kept until the directory can be made")
		return s, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.scanLocked(); err != nil {
		return nil, err
	}
	return s, nil
}

// summaryFile holds a finished trace's Summary beside it, so opening a
// store (every command does) reads a few hundred bytes per run instead of
// whole traces.
func summaryFile(dir, id string) string { return filepath.Join(dir, id+".summary") }

// refreshLocked rescans the directory when it changed since the last scan:
// runs finished by other processes (`ponder solve`, `ponder eval`) appear.
func (s *Store) refreshLocked() {
	if s.dir == "" || s.dirErr != nil {
		return
	}
	st, err := os.Stat(s.dir)
	if err != nil || st.ModTime().Equal(s.scanned) {
		return
	}
	if err := s.scanLocked(); err != nil {
		s.log.Warn().Err(err).Msg("trace store rescan")
	}
}

// scanLocked adds the runs on disk that the store does not know yet and
// forgets those whose files are gone (another process evicted them).
func (s *Store) scanLocked() error {
	st, err := os.Stat(s.dir)
	if err != nil {
		return fmt.Errorf("trace store %s: %w", s.dir, err)
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("trace store %s: %w", s.dir, err)
	}
	s.scanned = st.ModTime()
	present := map[string]bool{}
	for _, e := range entries {
		if id, ok := traceFileID(e.Name()); ok {
			present[id] = true
		}
	}
	for id := range s.finished {
		if !present[id] {
			delete(s.finished, id)
		}
	}
	for id := range s.bad {
		if !present[id] {
			delete(s.bad, id)
		}
	}
	for _, e := range entries {
		s.removeStale(e, present)
		id, ok := traceFileID(e.Name())
		if !ok || s.bad[id] != nil {
			continue
		}
		if _, known := s.finished[id]; known {
			continue
		}
		if _, running := s.live[id]; running {
			continue
		}
		if b, err := os.ReadFile(summaryFile(s.dir, id)); err == nil {
			var sum Summary
			if json.Unmarshal(b, &sum) == nil && sum.ID == id {
				s.finished[id] = sum
				continue
			}
		}
		t, err := ReadFile(filepath.Join(s.dir, e.Name()))
		if err != nil {
			s.log.Warn().Str("file", e.Name()).Err(err).Msg("skipping unreadable trace")
			s.bad[id] = err
			continue
		}
		sum := summarize(t, "")
		s.finished[id] = sum
		s.writeSummary(sum)
	}
	return nil
}

// removeStale removes a temporary file left by a write that never ended
// (the process was killed) and a summary whose trace is gone, once they are
// old enough not to belong to a write in progress.
func (s *Store) removeStale(e os.DirEntry, present map[string]bool) {
	name := e.Name()
	stale := strings.HasPrefix(name, ".trace-")
	if id, ok := strings.CutSuffix(name, ".summary"); ok && validID.MatchString(id) && !present[id] {
		stale = true
	}
	if !stale {
		return
	}
	if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleAfter {
		_ = os.Remove(filepath.Join(s.dir, name))
	}
}

func (s *Store) writeSummary(sum Summary) {
	b, err := json.Marshal(sum)
	if err != nil {
		return
	}
	if err := os.WriteFile(summaryFile(s.dir, sum.ID), b, 0o600); err != nil {
		s.log.Warn().Err(err).Str("trace", sum.ID).Msg("trace summary not saved")
	}
}

func traceFileID(name string) (string, bool) {
	if filepath.Ext(name) != ".json" {
		return "", false
	}
	id := name[:len(name)-len(".json")]
	return id, validID.MatchString(id)
}

// Start registers a live run (core.EngineOptions.OnStart).
func (s *Store) Start(id string, task core.Task, tr *core.Tracer) {
	s.mu.Lock()
	s.live[id] = &live{
		sum: Summary{ID: id, Strategy: task.Strategy, Pack: task.Pack, Problem: text.Clip(task.Problem, 200),
			Status: core.StopRunning, Started: tr.Start(), Session: task.Session},
		task: task, tracer: tr,
	}
	s.notifyLocked()
	s.mu.Unlock()
}

// Finish stores a finished trace (core.EngineOptions.OnEnd): written to disk
// atomically, then the oldest beyond the limit are removed. The run stays
// live until its file is written, so readers told of the change (Changed)
// always find it.
//
// A trace that cannot be written (a full or read-only disk) is not listed
// and evicts nothing: the runs kept stay kept, and SaveError says why.
func (s *Store) Finish(t *core.Trace) {
	var saveErr error
	if !validID.MatchString(t.ID) {
		// The id names the trace's files: one read from elsewhere (a
		// file given to `ponder trace view`) with "../../x" wrote
		// outside the store.
		s.log.Error().Str("trace", text.Clip(t.ID, 40)).Msg("trace not saved: not a trace id")
		s.mu.Lock()
		delete(s.live, t.ID)
		s.mu.Unlock()
		return
	}
	if s.dir != "" {
		saveErr = s.write(t)
		if saveErr != nil {
			s.log.Error().Err(saveErr).Str("trace", t.ID).Msg("trace not saved")
		}
	}
	s.mu.Lock()
	session := ""
	if l, ok := s.live[t.ID]; ok {
		session = l.task.Session
	}
	delete(s.live, t.ID)
	if saveErr != nil {
		s.unsaved[t.ID] = saveErr
		s.unsavedOrder = append(s.unsavedOrder, t.ID)
		if len(s.unsavedOrder) > maxUnsaved {
			delete(s.unsaved, s.unsavedOrder[0])
			s.unsavedOrder = s.unsavedOrder[1:]
		}
		s.notifyLocked()
		s.mu.Unlock()
		return
	}
	sum := summarize(t, session)
	s.finished[t.ID] = sum
	evict := s.evictLocked()
	s.notifyLocked()
	s.mu.Unlock()
	if s.dir == "" {
		return
	}
	s.writeSummary(sum)
	for _, id := range evict {
		_ = os.Remove(filepath.Join(s.dir, id+".json"))
		_ = os.Remove(summaryFile(s.dir, id))
	}
}

// write writes t under the store's directory, making the directory again
// when it is not there: one removed while the server runs (an operator
// clearing old traces with rm -rf), or one that could not be made at
// Open (a disk mounted, or made writable, after the start). Either kept
// every later run of a long-running server from being saved until it
// was restarted.
func (s *Store) write(t *core.Trace) error {
	s.mu.Lock()
	dirErr := s.dirErr
	s.mu.Unlock()
	path := filepath.Join(s.dir, t.ID+".json")
	if dirErr == nil {
		err := WriteFile(path, t)
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		if dirErr != nil {
			return dirErr
		}
		return fmt.Errorf("trace store %s: %w", s.dir, err)
	}
	if dirErr != nil {
		s.mu.Lock()
		if s.dirErr != nil {
			s.dirErr = nil
			if err := s.scanLocked(); err != nil {
				s.log.Warn().Err(err).Msg("trace store rescan")
			}
		}
		s.mu.Unlock()
	}
	s.log.Info().Str("dir", s.dir).Msg("trace store directory was not there: made it")
	return WriteFile(path, t)
}

func (s *Store) evictLocked() []string {
	if len(s.finished) <= s.keep {
		return nil
	}
	all := make([]Summary, 0, len(s.finished))
	for _, v := range s.finished {
		all = append(all, v)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Started.After(all[j].Started) })
	var out []string
	for _, v := range all[s.keep:] {
		delete(s.finished, v.ID)
		out = append(out, v.ID)
	}
	return out
}

func (s *Store) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Changed returns a channel closed when a run starts or finishes.
func (s *Store) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// List returns every run, live and finished, newest first.
func (s *Store) List() []Summary {
	s.mu.Lock()
	s.refreshLocked()
	out := make([]Summary, 0, len(s.live)+len(s.finished))
	for _, l := range s.live {
		sum := l.sum
		if u, ok := l.tracer.Usage(); ok {
			// Its budget's count so far: the runs list showed 0 calls
			// and 0 tokens for every running run.
			sum.Usage = u
		}
		if n := int64(l.tracer.Nodes()) - 1; n > sum.Usage.Nodes {
			// usage.nodes counts the nodes the search added, not the
			// root (docs/trace.md); a strategy may add nodes its budget
			// is not charged for.
			sum.Usage.Nodes = n
		}
		out = append(out, sum)
	}
	for _, v := range s.finished {
		out = append(out, v)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.After(out[j].Started)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// SaveError says why a finished run's trace was not kept (nil when it was,
// or when the store does not know the run).
func (s *Store) SaveError(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unsaved[id]
}

// UnsavedReason says briefly why a trace was not saved (an error of
// SaveError), for clients: the system's words ("no space left on
// device", "read-only file system"), without the data directory's path,
// which the log has with the whole error.
func UnsavedReason(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return "it could not be written (the server's log says why)"
}

// Live returns the tracer of a running run.
func (s *Store) Live(id string) (*core.Tracer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.live[id]
	if !ok {
		return nil, false
	}
	return l.tracer, true
}

// Get returns a trace: a running one rebuilt from its events so far (status
// "running"), or a finished one read from disk.
func (s *Store) Get(id string) (*core.Trace, error) {
	if !validID.MatchString(id) {
		return nil, fmt.Errorf("%w: %q is not a trace id", ErrNotFound, id)
	}
	s.mu.Lock()
	s.refreshLocked()
	l, isLive := s.live[id]
	_, isDone := s.finished[id]
	unsaved, damaged := s.unsaved[id], s.bad[id]
	s.mu.Unlock()
	if isLive {
		evs := l.tracer.Since(0)
		st, err := core.Replay(core.Tree, evs)
		if err != nil {
			st = core.NewStructure(core.Tree, l.task.Problem, nil)
		}
		return &core.Trace{Schema: core.TraceSchema, ID: id, Problem: l.task.Problem, Pack: l.task.Pack,
			Strategy: l.task.Strategy, Params: l.task.Params, Limits: l.task.Limits, Started: l.sum.Started,
			Status: core.StopRunning, Usage: usageOf(evs, l.sum.Started), Structure: st, Events: evs}, nil
	}
	switch {
	case unsaved != nil:
		return nil, fmt.Errorf("%w: %s was not saved: %v", ErrNotFound, id, unsaved)
	case damaged != nil:
		return nil, fmt.Errorf("%w: %w", ErrNotFound, damaged)
	case !isDone || s.dir == "":
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	t, err := ReadFile(filepath.Join(s.dir, id+".json"))
	if errors.Is(err, os.ErrNotExist) {
		s.forget(id)
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id) // evicted meanwhile
	}
	return t, err
}

// usageOf is the usage of a running run so far, counted from its events
// as the engine counts it (docs/trace.md): the samples and requests of LLM
// calls that came back or that the search gave up (cancelled: they stay
// charged; calls the LLM failed are refunded), their tokens, tool calls,
// and the nodes added (not the roots, the problem's and each nested
// search's), nested searches included.
func usageOf(evs []core.Event, started time.Time) core.Usage {
	var u core.Usage
	for _, e := range evs {
		switch e.Op {
		case core.OpLLMCall:
			if e.Get("error") == nil || e.Get("cancelled") == true {
				u.LLMCalls += count(e.Get("n"))
				u.Requests++
			}
			u.PromptTokens += count(e.Get("prompt_tokens"))
			u.CompletionTokens += count(e.Get("completion_tokens"))
		case core.OpToolCall:
			u.ToolCalls++
		case core.OpNode:
			if e.Node != nil && e.Node.ID != 0 {
				u.Nodes++
			}
		}
	}
	if !started.IsZero() {
		u.WallMS = float64(time.Since(started).Microseconds()) / 1000
	}
	return u
}

// count reads a count of an event's data, typed (recorded by this process)
// or read back from JSON.
func count(v any) int64 {
	switch n := v.(type) {
	case int:
		return int64(n)
	case int64:
		return n
	case float64:
		return int64(n)
	}
	return 0
}

// forget drops a finished run whose file is gone.
func (s *Store) forget(id string) {
	s.mu.Lock()
	delete(s.finished, id)
	s.mu.Unlock()
}

// Raw returns the stored JSON document of a finished trace as written, for
// viewers that serve it without decoding it. Running traces have none: use
// Get.
func (s *Store) Raw(id string) ([]byte, error) {
	path, err := s.donePath(id)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, s.fileErr(id, "read", err)
	}
	return b, nil
}

// Open opens the stored JSON document of a finished trace, for readers
// that go through a large one as a stream rather than hold it whole (Raw).
// The caller closes it. Running traces have none: use Get.
func (s *Store) Open(id string) (io.ReadCloser, error) {
	path, err := s.donePath(id)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, s.fileErr(id, "open", err)
	}
	return f, nil
}

// Size returns the size in bytes of a finished trace's stored document,
// without reading it, for callers that cap what they return. Running
// traces have none: use Get.
func (s *Store) Size(id string) (int64, error) {
	path, err := s.donePath(id)
	if err != nil {
		return 0, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return 0, s.fileErr(id, "stat", err)
	}
	return st.Size(), nil
}

// donePath is the file of a finished trace the store keeps, or
// ErrNotFound: an id that is not one, a running or unknown run, or a
// store that writes nothing.
func (s *Store) donePath(id string) (string, error) {
	if !validID.MatchString(id) {
		return "", fmt.Errorf("%w: %q is not a trace id", ErrNotFound, id)
	}
	s.mu.Lock()
	s.refreshLocked()
	_, isDone := s.finished[id]
	s.mu.Unlock()
	if !isDone || s.dir == "" {
		return "", fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return filepath.Join(s.dir, id+".json"), nil
}

// fileErr is the error of reading a finished trace's file: a file gone
// (evicted meanwhile, or removed by hand) is forgotten and ErrNotFound.
func (s *Store) fileErr(id, op string, err error) error {
	if errors.Is(err, os.ErrNotExist) {
		s.forget(id)
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return fmt.Errorf("%s trace %s: %w", op, id, err)
}

// ReadFile reads a trace document written by WriteFile (or `ponder solve
// --trace`).
func ReadFile(path string) (*core.Trace, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read trace: %w", err)
	}
	var t core.Trace
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("read trace %s: %w: not a Ponder trace: %v", path, ErrDamaged, err)
	}
	if t.Schema != core.TraceSchema {
		return nil, fmt.Errorf("read trace %s: %w: schema %q, want %q", path, ErrDamaged, t.Schema, core.TraceSchema)
	}
	return &t, nil
}

// WriteFile writes t to path atomically and durably (temporary file,
// fsync, rename, fsync of the directory), so a crash never leaves a
// half-written trace and a trace WriteFile returned from is still there
// after a power cut: without the directory's sync the rename could be
// lost while a record naming the trace (an eval run's, synced) was kept.
func WriteFile(path string, t *core.Trace) error {
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode trace %s: %w", t.ID, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".trace-*")
	if err != nil {
		return fmt.Errorf("write trace: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write trace %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write trace %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write trace %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return fmt.Errorf("write trace %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write trace %s: %w", path, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("write trace %s: sync its folder: %w", path, err)
	}
	return nil
}

// syncDir is fsyncDir; tests wrap it to see when it runs.
var syncDir = fsyncDir

// fsyncDir makes the entries of dir (a file renamed into it) durable. A
// file system that cannot sync a folder (EINVAL, ENOTSUP: some network
// and FUSE ones) gives no more durability than the rename; that is not
// an error. Windows cannot sync a folder opened for reading (access
// denied) and journals renames on NTFS itself: nothing is done there.
func fsyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		return nil
	}
	return err
}

func summarize(t *core.Trace, session string) Summary {
	return Summary{ID: t.ID, Strategy: t.Strategy, Pack: t.Pack, Problem: text.Clip(t.Problem, 200), Status: t.Status,
		Answer: t.Answer, Usage: t.Usage, Started: t.Started, Session: session}
}
