package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/retrieval"
)

// search_documents shows a client on another machine (a server bound
// beyond loopback, with a token) each passage's source by its name,
// relative to the folder that was ingested, and never the absolute path
// it is stored under: that would tell the client the server's user names
// and mount points. A client on a loopback server gets the path, to open
// the file. Real files, ingest, embedded store, retriever and server.
func TestSearchDocumentsHidesServerPathsFromRemoteClients(t *testing.T) {
	t.Parallel()
	root, file, st := ingestHandbook(t)
	for _, tc := range []struct {
		name, addr, token, want string
	}{
		{"remote", "0.0.0.0:7800", "s3cret", "handbook/ops/ports.md"},
		{"loopback", "127.0.0.1:7800", "", file},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{
				cfg:  func(c *config.Server) { c.Addr, c.Token = tc.addr, tc.token },
				opts: func(o *Options) { o.Retriever = retrieval.NewRetriever(st, nil) },
			})
			h := http.Header{}
			if tc.token != "" {
				h.Set("Authorization", "Bearer "+tc.token)
			}
			c := e.rpcWith(t, h)
			r := result(t, c.call("search_documents", map[string]any{"query": "admin console port"}, nil))
			ps, _ := r["structuredContent"].(map[string]any)["passages"].([]any)
			if len(ps) != 1 || ps[0].(map[string]any)["source"] != tc.want || !strings.Contains(toolText(r), "[1] "+tc.want) {
				t.Fatalf("passages %v, text %q: want the source %s", ps, toolText(r), tc.want)
			}
			if tc.name == "remote" && strings.Contains(mustJSONString(r), root) {
				t.Fatalf("the server's path %s reached a remote client: %v", root, r)
			}
		})
	}
}
