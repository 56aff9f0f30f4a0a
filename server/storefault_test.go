package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/internal/testutil"
	"github.com/ponder-rlm/ponder/retrieval"
	"github.com/ponder-rlm/ponder/retrieval/embedded"
	"github.com/ponder-rlm/ponder/retrieval/ingest"
)

// A damaged or read-only document store's error names the store's file,
// an absolute path in the server's data directory, and says what its
// operator should do (restore it from a backup, move it aside, give write
// access): it reached remote MCP clients whole, in search_documents,
// ingest_documents, solve's result and get_trace. They are told that the
// server's store is damaged (or read-only) and to contact the operator,
// whose log keeps the error whole; a local client still reads all of it.
// Real files, ingest, embedded store (cut short on disk), retriever and
// server.
func TestStoreFaultsAreToldRemoteClientsWithoutPaths(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "retrieval", "store.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := embedded.OpenShared(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := ingest.New(st, &ingest.Options{Collection: "docs", StdinName: "ports.md"}).Run(t.Context(), []string{"-"},
		strings.NewReader("# Ports\n\nThe admin console listens on port 7443.\n")); err != nil {
		t.Fatal(err)
	}
	// Cut short on disk, as a copy that stopped on a full disk leaves it.
	if err := os.Truncate(path, 3000); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the store to be found damaged", func() bool {
		_, err := st.Collections(t.Context())
		return err != nil && strings.Contains(err.Error(), "is cut short")
	})

	ro, err := embedded.OpenShared(path+".ro", &embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ro.Close()
	readOnly, err := embedded.OpenShared(path+".ro", &embedded.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { readOnly.Close() })

	for _, tc := range []struct {
		name, addr, token string
		remote            bool
	}{
		{"remote", "0.0.0.0:7800", "s3cret", true},
		{"loopback", "127.0.0.1:7800", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var log testutil.LockedBuffer
			mk := func(store retrieval.Store) *rpc {
				r := retrieval.NewRetriever(store, nil)
				e := newEnv(t, envOptions{retriever: r,
					cfg: func(c *config.Server) { c.Addr, c.Token = tc.addr, tc.token },
					opts: func(o *Options) {
						o.Ingester = textIngester{store: store}
						o.Logger = zerolog.New(&log).Level(zerolog.WarnLevel)
					}})
				h := map[string][]string{}
				if tc.token != "" {
					h["Authorization"] = []string{"Bearer " + tc.token}
				}
				return e.rpcWith(t, h)
			}
			c := mk(st)
			solve := result(t, c.call("solve", map[string]any{"problem": "Which port does the admin console listen on?", "collection": "docs"}, nil))
			traceID, _ := solve["structuredContent"].(map[string]any)["trace_id"].(string)
			outs := map[string]map[string]any{
				"search_documents": result(t, c.call("search_documents", map[string]any{"query": "admin console port", "collection": "docs"}, nil)),
				"ingest_documents": result(t, c.call("ingest_documents", map[string]any{"collection": "docs",
					"texts": []any{map[string]any{"name": "more.md", "text": "More."}}}, nil)),
				"solve":     solve,
				"get_trace": result(t, c.call("get_trace", map[string]any{"trace_id": traceID, "detail": "full"}, nil)),
			}
			for what, r := range outs {
				all := mustJSONString(r)
				switch {
				case !strings.Contains(all, "document store is damaged"):
					t.Errorf("%s does not say the store is damaged: %.600s", what, all)
				case tc.remote && (strings.Contains(all, dir) || strings.Contains(all, "restore it from a backup")):
					t.Errorf("%s told a remote client the store's path or the operator's advice: %.600s", what, all)
				case tc.remote && !strings.Contains(all, "contact the server's operator"):
					t.Errorf("%s does not send the remote client to the operator: %.600s", what, all)
				case !tc.remote && !strings.Contains(all, path):
					t.Errorf("%s does not name the store's file to a local client: %.600s", what, all)
				}
			}
			if tc.remote && !strings.Contains(log.String(), path+" is cut short") {
				t.Errorf("the log lacks the whole error:\n%s", log.String())
			}

			c = mk(readOnly)
			r := result(t, c.call("ingest_documents", map[string]any{"collection": "docs",
				"texts": []any{map[string]any{"name": "more.md", "text": "More."}}}, nil))
			all := mustJSONString(r)
			if r["isError"] != true || !strings.Contains(all, "read-only") || tc.remote == strings.Contains(all, dir) {
				t.Errorf("ingest into a read-only store: %.600s", all)
			}
		})
	}
}

// The store's errors are rewritten from their words to the end of their
// advice, what follows kept, in text and in JSON strings; a text rewritten
// once is left as it is.
func TestPublicStoreFaults(t *testing.T) {
	t.Parallel()
	damaged := `document store is damaged: /srv/ponder/retrieval/store.db is cut short: it is 3000 bytes, but the data it holds runs to byte 32768 (a copy or backup that stopped early, on a full disk?); Ponder leaves it as it is: restore it from a backup, or move it aside and ingest the documents again`
	readOnly := `document store is read-only (opened read-only): cannot put documents; searching works, but ingesting and deleting need write access to /srv/ponder/retrieval/store.db (or another --data-dir)`
	locked := `document store is locked by another process: /srv/ponder/retrieval/store.db is in use by another ponder process (a running ponder ingest?); let it finish or stop it, or set a different --data-dir`
	pubDamaged := "this server's document store is damaged; contact the server's operator (its log says what is wrong)"
	for _, tc := range []struct {
		name, in, want string
		json           bool
	}{
		{"damaged, wrapped and followed", `solve failed: retrieve from "docs": ` + damaged + ` (trace 0123)`,
			`solve failed: retrieve from "docs": ` + pubDamaged + ` (trace 0123)`, false},
		{"read-only", "ingest_documents: " + readOnly, "ingest_documents: this server's document store is read-only: searching works, adding or removing documents does not; contact the server's operator", false},
		{"locked", locked, "this server's document store is in use by another process; try again later, or contact the server's operator", false},
		{"rewritten already", `retrieve from "docs": ` + pubDamaged + ` (trace 0123)`, `retrieve from "docs": ` + pubDamaged + ` (trace 0123)`, false},
		{"worded otherwise: to the end of the line", "document store is damaged: /srv/x.db unreadable\nnext line", "this server's " + "document store is damaged; contact the server's operator (its log says what is wrong)\nnext line", false},
		{"in a JSON string", mustJSONString(map[string]any{"error": damaged + ` "quoted"`, "b": 1}),
			mustJSONString(map[string]any{"error": pubDamaged + ` "quoted"`, "b": 1}), true},
		{"worded otherwise, in a JSON string", `{"error":"document store is damaged: /srv/x.db \"x\" unreadable","b":1}`,
			`{"error":"` + pubDamaged + `","b":1}`, true},
	} {
		if got := publicStoreFaults(tc.in, tc.json); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}
