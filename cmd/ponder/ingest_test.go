package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/rs/zerolog"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/testutil"
	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/llm/sim/simtest"
	"github.com/ponder-rlm/ponder/retrieval/embedded"
	"github.com/ponder-rlm/ponder/server"
)

// docsFolder copies the ingest fixtures (Markdown, PDF, HTML, text, Go)
// into a fresh folder.
func docsFolder(t *testing.T) string {
	t.Helper()
	src := filepath.Join("..", "..", "retrieval", "ingest", "testdata", "docs")
	dst := filepath.Join(t.TempDir(), "docs")
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestDocumentsEndToEnd is the new user's path: ingest a folder of
// Markdown and PDF files, search it, and solve a question whose answer is
// only in those files against the simulator, with the chunk in the trace.
func TestDocumentsEndToEnd(t *testing.T) {
	t.Parallel()
	docs := docsFolder(t)
	os.WriteFile(filepath.Join(docs, "junk.bin.txt"), []byte("\x00\x01binary"), 0o644)
	data := "PONDER_DATA_DIR=" + t.TempDir()
	llmURL := "PONDER_LLM_BASE_URL=" + simtest.Start(t, sim.Options{Seed: 1})

	r := runPonder(t, "", []string{data}, "ingest", "--json", docs)
	var sum struct {
		Added, Skipped int
		Files          []struct{ Path, Status, Reason string }
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &sum) != nil || sum.Added != 5 || sum.Skipped != 1 {
		t.Fatalf("ingest: code %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, f := range sum.Files {
		if strings.HasSuffix(f.Path, "junk.bin.txt") && (f.Status != "skipped" || !strings.Contains(f.Reason, "binary")) {
			t.Fatalf("binary file: %+v", f)
		}
	}
	r = runPonder(t, "", []string{data}, "ingest", docs)
	if r.code != 0 || !strings.Contains(r.stdout, "0 added, 0 updated, 5 unchanged") {
		t.Fatalf("re-ingest is not a no-op: %d %s %s", r.code, r.stdout, r.stderr)
	}

	r = runPonder(t, "", []string{data}, "search", "--json", "--k", "2", "emergency radio frequency")
	var found searchOutput
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &found) != nil || len(found.Chunks) != 2 ||
		!strings.HasSuffix(found.Chunks[0].Source, "handbook.pdf") || found.Chunks[0].Meta["page"] != "2" ||
		!strings.Contains(found.Chunks[0].Text, "146.520 MHz") {
		t.Fatalf("search: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// Without --k, retrieval.top_k (it was 5 whatever the setting).
	r = runPonder(t, "", []string{data, "PONDER_RETRIEVAL_TOP_K=1"}, "search", "--json", "emergency radio frequency")
	if found = (searchOutput{}); r.code != 0 || json.Unmarshal([]byte(r.stdout), &found) != nil || len(found.Chunks) != 1 {
		t.Fatalf("search with PONDER_RETRIEVAL_TOP_K=1: %d chunks, want 1\n%s\n%s", len(found.Chunks), r.stdout, r.stderr)
	}
	r = runPonder(t, "", []string{data}, "search", "--filter", "type=md", "admin console port")
	if r.code != 0 || !strings.Contains(r.stdout, "guide.md") || !strings.Contains(r.stdout, "Network › Ports") {
		t.Fatalf("human search: %s %s", r.stdout, r.stderr)
	}
	// A key no chunk records is refused, naming those that work (it
	// printed "no matching chunks"); one that does, on a page no chunk
	// has, is just empty.
	r = runPonder(t, "", []string{data}, "search", "--filter", "nokey=1", "admin console port")
	if r.code == 0 || !strings.Contains(r.stderr, `filter key "nokey" is not recorded on any chunk of collection "docs": filter on source, name, title, type, page, encoding, doc_hash`) {
		t.Fatalf("search --filter nokey=1: code %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = runPonder(t, "", []string{data}, "search", "--filter", "page=99", "admin console port")
	if r.code != 0 || !strings.Contains(r.stdout, "no matching chunks") {
		t.Fatalf("search --filter page=99: code %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	trace := filepath.Join(t.TempDir(), "trace.json")
	r = runPonder(t, "", []string{data, llmURL}, "solve", "--collection", "docs", "--json", "--trace", trace,
		"What is the emergency radio frequency of Orion station?")
	var out solveOutput
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil || !strings.Contains(out.Answer, "146.520 MHz") {
		t.Fatalf("solve: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(out.BestPath[len(out.BestPath)-1].Content, "handbook.pdf") {
		t.Fatalf("the answer does not cite its source: %+v", out.BestPath)
	}
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	var tr core.Trace
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatal(err)
	}
	root := tr.Structure.MustNode(0)
	retrieved, _ := root.Meta["retrieved"].([]any)
	if len(retrieved) == 0 || !strings.Contains(retrieved[0].(map[string]any)["text"].(string), "146.520 MHz") {
		t.Fatalf("retrieved chunk not in the trace: %v", root.Meta)
	}

	r = runPonder(t, "", []string{data}, "docs", "delete", "--source", filepath.Join(docs, "handbook.pdf"))
	if r.code != 0 {
		t.Fatalf("docs delete: %s %s", r.stdout, r.stderr)
	}
	r = runPonder(t, "", []string{data}, "search", "--json", "emergency radio frequency")
	if strings.Contains(r.stdout, "handbook.pdf") {
		t.Fatalf("deleted document still found: %s", r.stdout)
	}
	r = runPonder(t, "", []string{data}, "collections", "list", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"documents": 4`) {
		t.Fatalf("collections list: %s %s", r.stdout, r.stderr)
	}
	if r = runPonder(t, "", []string{data}, "collections", "delete", "docs"); r.code != 0 {
		t.Fatalf("collections delete: %s", r.stderr)
	}
	r = runPonder(t, "", []string{data}, "search", "anything")
	if r.code == 0 || !strings.Contains(r.stderr, "ponder ingest --collection docs") {
		t.Fatalf("search of a deleted collection: %d %s", r.code, r.stderr)
	}
}

func TestDocumentCommandsBadInput(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	data := "PONDER_DATA_DIR=" + dataDir
	// A store held by another process: a clear error after the lock timeout.
	st, err := embedded.Open(filepath.Join(dataDir, "retrieval", "store.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := runPonder(t, "", []string{data, "PONDER_RETRIEVAL_LOCK_TIMEOUT=100ms"}, "search", "x")
	st.Close()
	if r.code == 0 || !strings.Contains(r.stderr, "in use by another ponder process") {
		t.Fatalf("locked store: %d %s", r.code, r.stderr)
	}
	// A damaged store file.
	bad := t.TempDir()
	os.MkdirAll(filepath.Join(bad, "retrieval"), 0o700)
	os.WriteFile(filepath.Join(bad, "retrieval", "store.db"), []byte(strings.Repeat("garbage!", 2048)), 0o600)
	r = runPonder(t, "", []string{"PONDER_DATA_DIR=" + bad}, "collections", "list")
	if r.code == 0 || !strings.Contains(r.stderr, "damaged") {
		t.Fatalf("damaged store: %d %s", r.code, r.stderr)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"nothing to ingest", []string{"ingest", "/does/not/exist.md"}, "no document could be ingested"},
		{"empty folder", []string{"ingest", t.TempDir()}, "no file found in"},
		{"bad collection name", []string{"ingest", "--collection", "a b", "x.md"}, "collection name"},
		{"bad k", []string{"search", "--k", "0", "x"}, "--k must be 1 to 50"},
		{"bad filter", []string{"search", "--filter", "nope", "x"}, "want key=value"},
		{"bad mode", []string{"search", "--mode", "fuzzy", "x"}, "--mode"},
		{"delete without source", []string{"docs", "delete"}, "--source is required"},
		{"unknown collection", []string{"collections", "delete", "nope"}, "no such collection"},
		{"delete a bad collection name", []string{"collections", "delete", "../x"}, `collection name "../x": use 1-64 letters`},
		{"solve with unknown collection", []string{"solve", "--llm-url", "http://127.0.0.1:9/v1", "--collection", "nope", "q?"}, "no such collection"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runPonder(t, "", nil, tc.args...)
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 3 {
				t.Fatalf("code %d, stderr %q, want a short error containing %q", r.code, r.stderr, tc.want)
			}
		})
	}
}

// ingest_documents names an unnamed inline text by its content: a second
// call with another text adds it beside the first (by position both were
// text-1.txt, and the second replaced the first), and the same text again
// is unchanged.
func TestInlineTextsWithoutNamesKeepEachOther(t *testing.T) {
	t.Parallel()
	st, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d := &docIngester{store: st, cfg: config.Default(), log: zerolog.Nop()}
	ingestOne := func(text string) server.IngestResult {
		t.Helper()
		res, err := d.Ingest(t.Context(), server.IngestRequest{Collection: "notes", Texts: []server.IngestText{{Text: text}}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := ingestOne("The pump in hall B is serviced every March.")
	second := ingestOne("Badges are renewed at the front desk.")
	again := ingestOne("The pump in hall B is serviced every March.")
	if first.Added != 1 || second.Added != 1 || again.Unchanged != 1 || first.Documents[0].Source == second.Documents[0].Source {
		t.Fatalf("first %+v, second %+v, again %+v", first, second, again)
	}
	info, err := st.Collection(t.Context(), "notes")
	if err != nil || info.Documents != 2 {
		t.Fatalf("%d documents in the collection (%v), want both texts", info.Documents, err)
	}
}

// A Windows-1252 and a UTF-16 file (real fixtures) are ingested, the
// command says what it assumed, and search finds their words.
func TestIngestOldEncodings(t *testing.T) {
	t.Parallel()
	src := filepath.Join("..", "..", "retrieval", "ingest", "testdata", "encodings")
	dir := t.TempDir()
	for _, name := range []string{"windows-1252.txt", "utf-16le-bom.md", "archive.txt"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name), b, 0o644)
	}
	data := "PONDER_DATA_DIR=" + t.TempDir()
	r := runPonder(t, "", []string{data}, "ingest", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "2 added") ||
		!strings.Contains(r.stderr, "windows-1252.txt: read as Windows-1252: the file is not valid UTF-8") ||
		!strings.Contains(r.stderr, "utf-16le-bom.md: read as UTF-16LE (byte order mark)") ||
		!strings.Contains(r.stderr, "skipped "+filepath.Join(dir, "archive.txt")+": binary content") {
		t.Fatalf("ingest: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for q, want := range map[string]string{"crème brûlée": "Crème brûlée costs €5", "Grönland": "Budget 😀 für Grönland"} {
		r = runPonder(t, "", []string{data}, "search", "--json", "--k", "1", q)
		var out searchOutput
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil || len(out.Chunks) != 1 || !strings.Contains(out.Chunks[0].Text, want) {
			t.Fatalf("search %q: %d\n%s\n%s", q, r.code, r.stdout, r.stderr)
		}
	}
}

// otherUser prepares root (a fresh folder reachable by every user) for
// runs of ponder as a user to whom file permissions apply: nobody when the
// tests run as root (who may read and write anything), else this user.
// run runs the binary there with env.
func otherUser(t *testing.T) (root string, run func(env []string, args ...string) runResult) {
	t.Helper()
	root = t.TempDir()
	for _, p := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(root, "ponder")
	b, err := os.ReadFile(ponderBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return root, func(env []string, args ...string) runResult {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(append(cleanEnv(), "HOME="+root, "PONDER_LOG_LEVEL=warn"), env...)
		cmd.Dir = root
		if os.Geteuid() == 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return runResult{out.String(), errb.String(), cmd.ProcessState.ExitCode()}
	}
}

// chmod sets modes, and puts 0o755 back when the test ends (so that the
// temporary folders can be removed).
func chmod(t *testing.T, modes map[string]os.FileMode) {
	t.Helper()
	for p, mode := range modes {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(p, 0o755) })
	}
}

// TestSearchReadOnlyStore: a data dir this user cannot write (another
// user's, a read-only mount) is searched and listed; ingest and delete say
// the store is read-only.
func TestSearchReadOnlyStore(t *testing.T) {
	t.Parallel()
	root, run := otherUser(t)
	dataDir := filepath.Join(root, "data")
	r := runPonder(t, "", []string{"PONDER_DATA_DIR=" + dataDir}, "ingest", docsFolder(t))
	if r.code != 0 {
		t.Fatalf("ingest: %d %s", r.code, r.stderr)
	}
	store := filepath.Join(dataDir, "retrieval", "store.db")
	chmod(t, map[string]os.FileMode{dataDir: 0o555, filepath.Dir(store): 0o555, store: 0o444})
	data := []string{"PONDER_DATA_DIR=" + dataDir}
	r = run(data, "search", "--k", "1", "emergency radio frequency")
	if r.code != 0 || !strings.Contains(r.stdout, "146.520 MHz") {
		t.Fatalf("search of a read-only store: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r = run(data, "collections", "list"); r.code != 0 || !strings.Contains(r.stdout, "5 documents") {
		t.Fatalf("collections list of a read-only store: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, args := range [][]string{{"ingest", filepath.Join(root, "new.md")}, {"docs", "delete", "--source", "/x.md"}, {"collections", "delete", "docs"}} {
		r = run(data, args...)
		if r.code == 0 || !strings.Contains(r.stderr, "document store is read-only (this user cannot write it: permission denied)") ||
			!strings.Contains(r.stderr, "need write access to "+store) {
			t.Fatalf("%v on a read-only store: %d\n%s\n%s", args, r.code, r.stdout, r.stderr)
		}
	}
}

// TestIngestPrunesGoneFiles: ingesting a folder again removes the
// documents of its files that are gone, and says so; files under a folder
// that cannot be read are kept, and a folder that cannot be read removes
// nothing.
func TestIngestPrunesGoneFiles(t *testing.T) {
	t.Parallel()
	root, run := otherUser(t)
	data := []string{"PONDER_DATA_DIR=" + filepath.Join(root, "data")}
	docs, sub := filepath.Join(root, "docs"), filepath.Join(root, "docs", "sub")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"a.md": "alpha walrus", "b.md": "bravo walrus", "sub/c.md": "charlie walrus", "sub/d.md": "delta walrus"} {
		if err := os.WriteFile(filepath.Join(docs, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, "data"), 0o777); err != nil {
		t.Fatal(err)
	}
	chmod(t, map[string]os.FileMode{filepath.Join(root, "data"): 0o777})
	if r := run(data, "ingest", docs); r.code != 0 || !strings.Contains(r.stdout, "4 added") {
		t.Fatalf("first ingest: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	found := func() []string {
		t.Helper()
		r := run(data, "search", "--json", "--k", "10", "walrus")
		var out searchOutput
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil {
			t.Fatalf("search: %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		var names []string
		for _, c := range out.Chunks {
			rel, _ := filepath.Rel(docs, c.Source)
			names = append(names, rel)
		}
		slices.Sort(names)
		return names
	}
	// b.md and sub/c.md are deleted, and sub cannot be listed: b.md goes,
	// sub/c.md stays (its folder was not read, so it is not known gone).
	for _, f := range []string{"b.md", "sub/c.md"} {
		if err := os.Remove(filepath.Join(docs, f)); err != nil {
			t.Fatal(err)
		}
	}
	chmod(t, map[string]os.FileMode{sub: 0o311})
	r := run(data, "ingest", docs)
	if r.code != 0 || !strings.Contains(r.stdout, "1 removed (gone from the folder or glob)") ||
		!strings.Contains(r.stderr, "removed "+filepath.Join(docs, "b.md")+": gone from "+docs) ||
		!strings.Contains(r.stderr, "skipped "+sub+": unreadable: permission denied") {
		t.Fatalf("second ingest: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := found(); !slices.Equal(got, []string{"a.md", "sub/c.md", "sub/d.md"}) {
		t.Fatalf("after the second ingest search finds %q", got)
	}
	// The folder itself cannot be listed: nothing is removed, though a.md
	// is gone too.
	if err := os.Remove(filepath.Join(docs, "a.md")); err != nil {
		t.Fatal(err)
	}
	chmod(t, map[string]os.FileMode{docs: 0o311})
	run(data, "ingest", docs)
	if got := found(); !slices.Equal(got, []string{"a.md", "sub/c.md", "sub/d.md"}) {
		t.Fatalf("an unreadable folder removed documents: search finds %q", got)
	}
	// Readable again: what is gone goes.
	chmod(t, map[string]os.FileMode{docs: 0o755, sub: 0o755})
	if r := run(data, "ingest", docs); !strings.Contains(r.stdout, "2 removed") {
		t.Fatalf("third ingest: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := found(); !slices.Equal(got, []string{"sub/d.md"}) {
		t.Fatalf("after the folder is readable again search finds %q", got)
	}
}

// mcpStdio starts `ponder serve --stdio` (the real binary) with env and a
// clean PONDER_* environment, and connects an MCP client to it, as an
// assistant that spawns Ponder does. The server's log is in the buffer.
func mcpStdio(t *testing.T, env []string) (*client.Client, *testutil.LockedBuffer) {
	t.Helper()
	logs := &testutil.LockedBuffer{}
	dir := t.TempDir()
	c, err := client.NewStdioMCPClientWithOptions(ponderBin, env, []string{"serve", "--stdio"},
		transport.WithCommandFunc(func(ctx context.Context, command string, env, args []string) (*exec.Cmd, error) {
			cmd := exec.CommandContext(ctx, command, args...)
			cmd.Env = append(cleanEnv(), "PONDER_LOG_LEVEL=info")
			cmd.Env = append(cmd.Env, env...)
			cmd.Dir = dir
			return cmd, nil
		}),
		transport.WithCommandStderrWriter(logs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "ponder-test", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize: %v\n%s", err, logs)
	}
	return c, logs
}

// callTool calls a tool and returns its result as JSON-decoded maps, and
// its text.
func callTool(t *testing.T, c *client.Client, name string, args map[string]any) (structured map[string]any, text string, isError bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for _, ct := range res.Content {
		if tc, ok := ct.(mcp.TextContent); ok {
			text += tc.Text
		}
	}
	if res.StructuredContent != nil {
		b, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(b, &structured); err != nil {
			t.Fatalf("%s: structured content %s: %v", name, b, err)
		}
	}
	return structured, text, res.IsError
}

// outputSchema is the compiled output schema the server lists for a tool.
func outputSchema(t *testing.T, c *client.Client, name string) *jsonschema.Schema {
	t.Helper()
	tools, err := c.ListTools(t.Context(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range tools.Tools {
		if tool.Name != name {
			continue
		}
		b, _ := json.Marshal(tool.OutputSchema)
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		comp := jsonschema.NewCompiler()
		if err := comp.AddResource(name+".json", doc); err != nil {
			t.Fatal(err)
		}
		s, err := comp.Compile(name + ".json")
		if err != nil {
			t.Fatalf("%s output schema: %v", name, err)
		}
		return s
	}
	t.Fatalf("no tool %s", name)
	return nil
}

// An assistant ingesting a folder over MCP learns what Ponder assumed in
// reading a file (its encoding) and which documents a second ingest of the
// folder removed (files gone from it), in the structured result, which
// keeps to the tool's output schema, and in its text.
func TestMCPIngestReportsNotesAndRemovals(t *testing.T) {
	t.Parallel()
	docs := t.TempDir()
	cp1252, err := os.ReadFile(filepath.Join("..", "..", "retrieval", "ingest", "testdata", "encodings", "windows-1252.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"a.md": []byte("alpha walrus"), "gone.md": []byte("gone walrus"), "windows-1252.txt": cp1252} {
		if err := os.WriteFile(filepath.Join(docs, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, logs := mcpStdio(t, []string{"PONDER_DATA_DIR=" + t.TempDir()})
	schema := outputSchema(t, c, "ingest_documents")
	ingest := func() (map[string]any, string) {
		t.Helper()
		res, text, isErr := callTool(t, c, "ingest_documents", map[string]any{"paths": []any{docs}})
		if isErr || res == nil {
			t.Fatalf("ingest_documents: %v %s\n%s", res, text, logs)
		}
		if err := schema.Validate(res); err != nil {
			t.Errorf("result %v does not keep to the output schema: %v", res, err)
		}
		return res, text
	}
	doc := func(res map[string]any, name string) map[string]any {
		t.Helper()
		for _, d := range res["documents"].([]any) {
			if d := d.(map[string]any); d["source"] == filepath.Join(docs, name) {
				return d
			}
		}
		t.Fatalf("no document %s in %v", name, res)
		return nil
	}

	res, text := ingest()
	const note = "read as Windows-1252: the file is not valid UTF-8"
	if res["added"] != 3.0 || res["removed"] != 0.0 || doc(res, "windows-1252.txt")["note"] != note || doc(res, "a.md")["note"] != nil {
		t.Errorf("first ingest: %v", res)
	}
	if !strings.Contains(text, "added "+filepath.Join(docs, "windows-1252.txt")+" ("+note+")") {
		t.Errorf("first ingest's text does not give the note: %s", text)
	}

	if err := os.Remove(filepath.Join(docs, "gone.md")); err != nil {
		t.Fatal(err)
	}
	res, text = ingest()
	if res["removed"] != 1.0 || res["unchanged"] != 2.0 || doc(res, "gone.md")["status"] != "removed" {
		t.Errorf("second ingest: %v", res)
	}
	if !strings.Contains(text, "2 unchanged, 0 skipped, 1 removed;") ||
		!strings.Contains(text, "removed "+filepath.Join(docs, "gone.md")+": gone from "+docs) {
		t.Errorf("second ingest's text does not say what was removed: %s", text)
	}
}

// retrieval.embed_timeout and retrieval.embed_max_retries reach the
// embedder: 0 retries is one try (not the embedder's default of 4, which
// made a refused connection take 7.5s), and a hung endpoint fails after
// the timeout set, naming the setting to raise.
func TestEmbedderSettings(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		retries  int
		timeout  time.Duration
		path     string
		requests int32
		want     string
	}{
		{"no retry", 0, time.Minute, "/busy", 1, "answered 503"},
		{"one retry", 1, time.Minute, "/busy", 2, "answered 503 Service Unavailable (2 attempts)"},
		{"timeout", 0, 100 * time.Millisecond, "/hang", 1, "did not answer within 100ms: raise retrieval.embed_timeout (PONDER_EMBED_TIMEOUT)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var requests atomic.Int32
			stop := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				// The server notices a client gone only once the body is read.
				_, _ = io.Copy(io.Discard, r.Body)
				if strings.HasPrefix(r.URL.Path, "/hang") {
					select {
					case <-r.Context().Done():
					case <-stop:
					}
					return
				}
				http.Error(w, "busy", http.StatusServiceUnavailable)
			}))
			t.Cleanup(srv.Close)
			t.Cleanup(func() { close(stop) }) // before srv.Close, which waits for handlers
			cfg := config.Default()
			cfg.Retrieval.EmbedModel, cfg.Retrieval.EmbedURL = "m", srv.URL+tt.path
			cfg.Retrieval.EmbedMaxRetries, cfg.Retrieval.EmbedTimeout = tt.retries, tt.timeout
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			emb, err := newEmbedder(cfg, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			_, err = emb.Embed(t.Context(), []string{"x"})
			if err == nil || !strings.Contains(err.Error(), tt.want) || requests.Load() != tt.requests {
				t.Fatalf("%d requests, error %v; want %d and %q", requests.Load(), err, tt.requests, tt.want)
			}
		})
	}
}

// What ingest met and did not store is said on stderr: a broken link a
// glob matched (dropped without a word before), and a file grown past
// max_file_bytes, whose old chunks are removed rather than left to ground
// answers with text the file no longer has. The real binary.
func TestIngestTellsOfBrokenLinksAndRefusedFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := []string{"PONDER_DATA_DIR=" + t.TempDir(), "PONDER_MAX_FILE_BYTES=200"}
	vault := filepath.Join(dir, "vault.md")
	if err := os.WriteFile(vault, []byte("# Vault\n\nThe vault code is 4711.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "moved.md"), filepath.Join(dir, "broken.md")); err != nil {
		t.Fatal(err)
	}
	glob := filepath.Join(dir, "*.md")
	r := runPonder(t, "", data, "ingest", glob)
	if r.code != 0 || !strings.Contains(r.stdout, "1 added") ||
		!strings.Contains(r.stderr, "skipped "+filepath.Join(dir, "broken.md")+": a broken symbolic link: its target "+filepath.Join(dir, "moved.md")+" does not exist") {
		t.Fatalf("first ingest: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if err := os.WriteFile(vault, []byte("# Vault\n\n"+strings.Repeat("The vault code changed. ", 20)), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runPonder(t, "", data, "ingest", glob)
	if !strings.Contains(r.stderr, "skipped "+vault+": too large: 489 bytes, limit 200 (raise retrieval.max_file_bytes, PONDER_MAX_FILE_BYTES); the version ingested before was removed from the collection") {
		t.Fatalf("second ingest: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := runPonder(t, "", data, "search", "vault code"); r.code != 0 || !strings.Contains(r.stdout, "no matching chunks") {
		t.Fatalf("the old version still answers: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
