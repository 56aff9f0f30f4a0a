package ui_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/ponder-rlm/ponder/server/ui"
	"github.com/ponder-rlm/ponder/traces"
)

// Mount the viewer at /ui/ over a trace store (the engine's OnStart and
// OnEnd feed it); the page is then at /ui/.
func ExampleHandler() {
	dir, _ := os.MkdirTemp("", "traces")
	defer os.RemoveAll(dir)
	store, err := traces.Open(dir, 200, nil)
	if err != nil {
		panic(err)
	}
	done := make(chan struct{}) // close at shutdown: ends the page's event streams
	mux := http.NewServeMux()
	mux.Handle("/ui/", ui.Handler(store, &ui.Options{Done: done}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer close(done)

	resp, err := http.Get(srv.URL + "/ui/api/runs")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.Status, string(body))
	page, _ := http.Get(srv.URL + "/ui/")
	page.Body.Close()
	fmt.Println(page.Header.Get("Content-Type"))
	// Output:
	// 200 OK []
	// text/html; charset=utf-8
}
