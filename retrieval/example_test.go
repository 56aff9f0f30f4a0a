package retrieval_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/retrieval"
	"github.com/ponder-rlm/ponder/retrieval/embedded"
	"github.com/ponder-rlm/ponder/retrieval/ingest"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "retrieval-example")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "guide.md"), []byte("# Guide\n\n## Ports\n\nThe admin console listens on port 7443.\n"), 0o644)

	st, err := embedded.Open(filepath.Join(dir, "store.db"), nil)
	if err != nil {
		panic(err)
	}
	defer st.Close()
	sum, _ := ingest.New(st, &ingest.Options{Collection: "docs"}).Run(ctx, []string{filepath.Join(dir, "guide.md")}, nil)
	fmt.Println("added:", sum.Added, "chunks:", sum.Chunks)

	r := retrieval.NewRetriever(st, &retrieval.RetrieverOptions{Collection: "docs"})
	chunks, _ := r.Retrieve(ctx, core.RetrieveRequest{Query: "which port is the admin console on?", K: 1})
	fmt.Println(filepath.Base(chunks[0].Source), "|", chunks[0].Meta["headings"], "|", chunks[0].Text)

	res, _ := retrieval.NewTool(r).Call(ctx, []byte(`{"query": "admin console"}`))
	fmt.Println(res.IsError, len(res.Text) > 0)
	// Output:
	// added: 1 chunks: 1
	// guide.md | Guide › Ports | ## Ports
	//
	// The admin console listens on port 7443.
	// false true
}
