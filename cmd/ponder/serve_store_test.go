package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/config"
)

// writeDocs writes n Markdown files into a new folder, each naming word
// and its number.
func writeDocs(t *testing.T, word string, n int) string {
	t.Helper()
	dir := t.TempDir()
	for i := range n {
		body := fmt.Sprintf("# %s %d\n\nThe %s register entry %s%03d is kept in hall %d.\n", word, i, word, word, i, i)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s%03d.md", word, i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// A team runs `ponder serve` and, from a shell, `ponder ingest` and
// `ponder search` into the same data dir: the server locks the document
// store only while it reads or writes, so the commands work beside it, the
// server finds what the shell ingested, and an ingest from each side at
// the same time loses nothing. (The server held the store for its whole
// life, and the shell's ingest failed with "in use".)
func TestIngestBesideServe(t *testing.T) {
	t.Parallel()
	data := "PONDER_DATA_DIR=" + t.TempDir()
	// A generous lock timeout: on a loaded machine one transaction may
	// take a while; the test is about never being kept out for good.
	env := []string{data, "PONDER_RETRIEVAL_LOCK_TIMEOUT=30s"}
	c, logs := mcpStdio(t, env)

	served := writeDocs(t, "walrus", 3)
	if res, text, isErr := callTool(t, c, "ingest_documents", map[string]any{"paths": []any{served}}); isErr || res["added"] != 3.0 {
		t.Fatalf("ingest_documents: %v %s\n%s", res, text, logs)
	}
	if _, text, isErr := callTool(t, c, "search_documents", map[string]any{"query": "walrus register walrus001"}); isErr || !strings.Contains(text, "walrus001") {
		t.Fatalf("search_documents: %s\n%s", text, logs)
	}

	shell := writeDocs(t, "heron", 3)
	if r := runPonder(t, "", env, "ingest", shell); r.code != 0 || !strings.Contains(r.stdout, "3 added") {
		t.Fatalf("ponder ingest beside ponder serve: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := runPonder(t, "", env, "search", "walrus register walrus002"); r.code != 0 || !strings.Contains(r.stdout, "walrus002") {
		t.Fatalf("ponder search beside ponder serve: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if _, text, isErr := callTool(t, c, "search_documents", map[string]any{"query": "heron register heron002"}); isErr || !strings.Contains(text, "heron002") {
		t.Fatalf("the server does not find what the shell ingested: %s\n%s", text, logs)
	}

	// Both write at once: each side's transactions take turns.
	const n = 40
	fromShell, fromServer := writeDocs(t, "ibis", n), writeDocs(t, "crane", n)
	cmd := exec.Command(ponderBin, "ingest", fromShell)
	cmd.Env = append(append(cleanEnv(), "PONDER_LOG_LEVEL=warn"), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	res, text, isErr := callTool(t, c, "ingest_documents", map[string]any{"paths": []any{fromServer}})
	if err := cmd.Wait(); err != nil || !strings.Contains(out.String(), fmt.Sprintf("%d added", n)) {
		t.Errorf("ponder ingest during ingest_documents: %v\n%s", err, &out)
	}
	if isErr || res["added"] != float64(n) {
		t.Errorf("ingest_documents during ponder ingest: %v %s\n%s", res, text, logs)
	}
	r := runPonder(t, "", env, "collections", "list", "--json")
	if want := fmt.Sprintf(`"documents": %d`, 6+2*n); r.code != 0 || !strings.Contains(r.stdout, want) {
		t.Fatalf("collections list after both ingests: want %s\n%s\n%s", want, r.stdout, r.stderr)
	}
	for _, q := range []string{"ibis register ibis039", "crane register crane039"} {
		word := strings.Fields(q)[2]
		if _, text, isErr := callTool(t, c, "search_documents", map[string]any{"query": q}); isErr || !strings.Contains(text, word) {
			t.Errorf("search_documents %q: %s", q, text)
		}
	}
}

// The commands that only read the store (search, solve, eval, tools call)
// are short-lived: they score dense queries exactly instead of building
// the HNSW graph for their first query (about 40s at 20,000 chunks of 384
// dimensions, for one search); serve, ingest and the deletes keep the
// graph.
func TestStoreOptionsExactDense(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	for _, tc := range []struct {
		name     string
		readOnly bool
		exact    bool
	}{
		{"search, solve, eval, tools call", true, true},
		{"serve, ingest, deletes", false, false},
	} {
		if got := storeOptions(cfg, zerolog.Nop(), tc.readOnly); got.ExactDense != tc.exact || got.LockTimeout != cfg.Retrieval.LockTimeout {
			t.Errorf("%s: ExactDense %v, lock timeout %s; want %v, %s", tc.name, got.ExactDense, got.LockTimeout, tc.exact, cfg.Retrieval.LockTimeout)
		}
	}
}
