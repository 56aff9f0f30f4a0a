// Package storetest is the one conformance suite for retrieval.Store: every
// backend runs it (the embedded store always, Qdrant when PONDER_QDRANT_URL
// is set), so they behave the same.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) retrieval.Store { return openMine(t) })
//	}
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/retrieval"
)

// Run runs the suite. open returns a store for one subtest; the suite
// closes it. Collection names are unique per run, so stores may be shared
// (a Qdrant server).
func Run(t *testing.T, open func(t *testing.T) retrieval.Store) {
	prefix := fmt.Sprintf("conf%d_", rand.Uint32())
	name := func(t *testing.T) string {
		return prefix + strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()[strings.LastIndex(t.Name(), "/")+1:])
	}
	withStore := func(t *testing.T) (context.Context, retrieval.Store, string) {
		t.Helper()
		st := open(t)
		ctx := t.Context()
		coll := name(t)
		t.Cleanup(func() {
			_ = st.DeleteCollection(context.Background(), coll)
			_ = st.DeleteCollection(context.Background(), coll+"_dense")
			st.Close()
		})
		return ctx, st, coll
	}
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, ctx context.Context, st retrieval.Store, coll string)
	}{
		{"Collections", testCollections},
		{"PutAndSearch", testPutAndSearch},
		{"Replace", testReplace},
		{"Recut", testRecut},
		{"Delete", testDelete},
		{"Sources", testSources},
		{"Filter", testFilter},
		{"MetaKeys", testMetaKeys},
		{"Dense", testDense},
		{"Errors", testErrors},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, st, coll := withStore(t)
			tc.fn(t, ctx, st, coll)
		})
	}
}

var when = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// doc builds a document whose chunks are texts.
func doc(source string, texts ...string) retrieval.Document {
	d := retrieval.Document{Source: source, Title: "Title of " + source, Bytes: 100, IngestedAt: when,
		Meta: map[string]string{"type": "md"}}
	var b strings.Builder
	for _, t := range texts {
		b.WriteString(t)
	}
	d.Hash = retrieval.HashBytes([]byte(b.String()))
	off := 0
	for i, t := range texts {
		d.Chunks = append(d.Chunks, retrieval.Chunk{Ordinal: i, Text: t, Title: d.Title, Headings: []string{"Guide", fmt.Sprintf("Part %d", i)},
			Start: off, End: off + len(t), Meta: map[string]string{"type": strings.TrimPrefix(source[strings.LastIndex(source, "."):], ".")}})
		off += len(t)
	}
	return d
}

func mustPut(t *testing.T, ctx context.Context, st retrieval.Store, coll string, docs ...retrieval.Document) {
	t.Helper()
	if err := st.Put(ctx, coll, docs); err != nil {
		t.Fatalf("Put: %v", err)
	}
}

func search(t *testing.T, ctx context.Context, st retrieval.Store, coll string, q retrieval.Query) []retrieval.Hit {
	t.Helper()
	hits, err := st.Search(ctx, coll, q)
	if err != nil {
		t.Fatalf("Search(%+v): %v", q, err)
	}
	return hits
}

func sources(hits []retrieval.Hit) []string {
	var out []string
	for _, h := range hits {
		out = append(out, h.Source)
	}
	return out
}

var corpus = []retrieval.Document{
	doc("/docs/ports.md", "The admin console listens on port 7443 over TLS.", "Metrics are exported on port 9100 for Prometheus scraping."),
	doc("/docs/backup.md", "Nightly backups run at 02:00 and are kept for thirty days.", "Restore a backup with the restore command and a snapshot id."),
	doc("/docs/team.txt", "The platform team owns deployment pipelines and on-call rotation."),
}

func testCollections(t *testing.T, ctx context.Context, st retrieval.Store, coll string) {
	info, err := st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: coll})
	if err != nil {
		t.Fatalf("EnsureCollection: %v", err)
	}
	if info.Name != coll || info.Dim != 0 || info.Chunks != 0 {
		t.Fatalf("new collection info = %+v", info)
	}
	if _, err := st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: coll}); err != nil {
		t.Fatalf("EnsureCollection again: %v", err)
	}
	if _, err := st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: coll, Dim: 8}); !errors.Is(err, retrieval.ErrDimension) {
		t.Fatalf("EnsureCollection with another dim: %v, want ErrDimension", err)
	}
	mustPut(t, ctx, st, coll, corpus...)
	info, err = st.Collection(ctx, coll)
	if err != nil || info.Documents != 3 || info.Chunks != 5 {
		t.Fatalf("Collection = %+v, %v; want 3 documents, 5 chunks", info, err)
	}
	all, err := st.Collections(ctx)
	if err != nil {
		t.Fatalf("Collections: %v", err)
	}
	if !slices.ContainsFunc(all, func(c retrieval.CollectionInfo) bool { return c.Name == coll }) {
		t.Fatalf("Collections() = %+v, missing %s", all, coll)
	}
	if err := st.DeleteCollection(ctx, coll); err != nil {
		t.Fatalf("DeleteCollection: %v", err)
	}
	if _, err := st.Collection(ctx, coll); !errors.Is(err, retrieval.ErrNoCollection) {
		t.Fatalf("Collection after delete: %v, want ErrNoCollection", err)
	}
	if err := st.DeleteCollection(ctx, coll); !errors.Is(err, retrieval.ErrNoCollection) {
		t.Fatalf("DeleteCollection twice: %v, want ErrNoCollection", err)
	}
	if _, err := st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: "bad name/"}); err == nil {
		t.Fatal("EnsureCollection accepted an invalid name")
	}
}

func testPutAndSearch(t *testing.T, ctx context.Context, st retrieval.Store, coll string) {
	if _, err := st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: coll}); err != nil {
		t.Fatal(err)
	}
	mustPut(t, ctx, st, coll, corpus...)
	hits := search(t, ctx, st, coll, retrieval.Query{Text: "which port does the admin console use?", K: 2})
	if len(hits) == 0 || !strings.Contains(hits[0].Text, "7443") {
		t.Fatalf("top hit for the admin port: %+v", hits)
	}
	h := hits[0]
	want := corpus[0].Chunks[0]
	if h.Source != "/docs/ports.md" || h.Title != "Title of /docs/ports.md" || h.Ordinal != 0 || h.Start != want.Start || h.End != want.End ||
		!slices.Equal(h.Headings, want.Headings) || h.DocHash != corpus[0].Hash || !h.IngestedAt.Equal(when) || h.Meta["type"] != "md" {
		t.Fatalf("metadata lost:\n got %+v\nwant %+v (source /docs/ports.md, hash %s)", h.Chunk, want, corpus[0].Hash)
	}
	if h.ID != retrieval.ChunkID("/docs/ports.md", corpus[0].Hash, 0) {
		t.Fatalf("chunk id %q is not the deterministic ChunkID", h.ID)
	}
	if h.Score <= 0 {
		t.Fatalf("score %v, want > 0", h.Score)
	}
	hits = search(t, ctx, st, coll, retrieval.Query{Text: "backup restore snapshot", K: 1})
	if len(hits) != 1 || hits[0].Source != "/docs/backup.md" || !strings.Contains(hits[0].Text, "snapshot") {
		t.Fatalf("K=1 backup query: %+v", hits)
	}
	if hits := search(t, ctx, st, coll, retrieval.Query{Text: "zebra xylophone", K: 3}); len(hits) != 0 {
		t.Fatalf("query with no matching term returned %v", sources(hits))
	}
	// Putting the same documents again changes nothing.
	mustPut(t, ctx, st, coll, corpus...)
	if info, err := st.Collection(ctx, coll); err != nil || info.Chunks != 5 || info.Documents != 3 {
		t.Fatalf("after idempotent Put: %+v %v", info, err)
	}
	docs, err := st.Documents(ctx, coll, []string{"/docs/ports.md", "/docs/missing.md"})
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := docs["/docs/ports.md"]; !ok || d.Hash != corpus[0].Hash || d.Chunks != 2 || len(docs) != 1 {
		t.Fatalf("Documents = %+v", docs)
	}
}

func testReplace(t *testing.T, ctx context.Context, st retrieval.Store, coll string) {
	if _, err := st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: coll}); err != nil {
		t.Fatal(err)
	}
	mustPut(t, ctx, st, coll, corpus...)
	v2 := doc("/docs/ports.md", "The admin console moved to port 8443 in version two.")
	mustPut(t, ctx, st, coll, v2)
	if hits := search(t, ctx, st, coll, retrieval.Query{Text: "7443 prometheus scraping", K: 5}); len(hits) != 0 {
		t.Fatalf("old chunks still found after replace: %+v", hits)
	}
	hits := search(t, ctx, st, coll, retrieval.Query{Text: "admin console port", K: 5})
	if len(hits) != 1 || !strings.Contains(hits[0].Text, "8443") || hits[0].DocHash != v2.Hash {
		t.Fatalf("after replace: %+v", hits)
	}
	if info, _ := st.Collection(ctx, coll); info.Documents != 3 || info.Chunks != 4 {
		t.Fatalf("counts after replace: %+v", info)
	}
}

// testRecut puts the same text again cut into fewer chunks (other chunk
// settings): its version is the same, and the chunks past the new last one
// must go too.
func testRecut(t *testing.T, ctx context.Context, st retrieval.Store, coll string) {
	if _, err := st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: coll}); err != nil {
		t.Fatal(err)
	}
	parts := []string{"The admin console listens on port 7443 over TLS. ", "Metrics are exported on port 9100. ", "Logs go to syslog."}
	three := doc("/docs/ports.md", parts...)
	one := doc("/docs/ports.md", strings.Join(parts, ""))
	if one.Hash != three.Hash {
		t.Fatal("the test needs one text cut two ways")
	}
	mustPut(t, ctx, st, coll, three)
	mustPut(t, ctx, st, coll, one)
	if info, _ := st.Collection(ctx, coll); info.Documents != 1 || info.Chunks != 1 {
		t.Fatalf("counts after the recut: %+v, want 1 document in 1 chunk", info)
	}
	docs, err := st.Documents(ctx, coll, []string{"/docs/ports.md"})
	if err != nil || docs["/docs/ports.md"].Chunks != 1 {
		t.Fatalf("Documents after the recut: %+v, %v", docs, err)
	}
	if hits := search(t, ctx, st, coll, retrieval.Query{Text: "syslog logs", K: 5}); len(hits) != 1 || !strings.Contains(hits[0].Text, "7443") {
		t.Fatalf("search after the recut: %+v, want the one whole chunk", hits)
	}
}

func testDelete(t *testing.T, ctx context.Context, st retrieval.Store, coll string) {
	if _, err := st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: coll}); err != nil {
		t.Fatal(err)
	}
	mustPut(t, ctx, st, coll, corpus...)
	ok, err := st.DeleteDocument(ctx, coll, "/docs/backup.md")
	if err != nil || !ok {
		t.Fatalf("DeleteDocument = %v, %v", ok, err)
	}
	if ok, err := st.DeleteDocument(ctx, coll, "/docs/backup.md"); err != nil || ok {
		t.Fatalf("second DeleteDocument = %v, %v; want false", ok, err)
	}
	if hits := search(t, ctx, st, coll, retrieval.Query{Text: "backup restore snapshot nightly", K: 5}); len(hits) != 0 {
		t.Fatalf("deleted document still found: %v", sources(hits))
	}
	if docs, _ := st.Documents(ctx, coll, []string{"/docs/backup.md"}); len(docs) != 0 {
		t.Fatalf("Documents still lists the deleted source: %+v", docs)
	}
	if info, _ := st.Collection(ctx, coll); info.Documents != 2 || info.Chunks != 3 {
		t.Fatalf("counts after delete: %+v", info)
	}
}

// testSources: the sources under a prefix, which ingest prunes a folder's
// gone files by. "/docs/" must not match "/docs2/..." nor "/docs.md".
func testSources(t *testing.T, ctx context.Context, st retrieval.Store, coll string) {
	if _, err := st.Sources(ctx, coll, "/"); !errors.Is(err, retrieval.ErrNoCollection) {
		t.Fatalf("Sources of a missing collection: %v, want ErrNoCollection", err)
	}
	if _, err := st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: coll}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Sources(ctx, coll, ""); err != nil || len(got) != 0 {
		t.Fatalf("Sources of an empty collection: %v, %v", got, err)
	}
	all := []string{"/docs/b.md", "/docs/a.md", "/docs/sub/c.txt", "/docs2/d.md", "/docs.md", "stdin.txt"}
	for _, src := range all {
		mustPut(t, ctx, st, coll, doc(src, "text of "+src, "more text of "+src))
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"/docs/", []string{"/docs/a.md", "/docs/b.md", "/docs/sub/c.txt"}},
		{"/docs/sub/", []string{"/docs/sub/c.txt"}},
		{"/nope/", []string{}},
		{"", []string{"/docs.md", "/docs/a.md", "/docs/b.md", "/docs/sub/c.txt", "/docs2/d.md", "stdin.txt"}},
	} {
		got, err := st.Sources(ctx, coll, tc.prefix)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Fatalf("Sources(%q) = %q, %v; want %q", tc.prefix, got, err, tc.want)
		}
	}
	if _, err := st.DeleteDocument(ctx, coll, "/docs/a.md"); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Sources(ctx, coll, "/docs/"); !slices.Equal(got, []string{"/docs/b.md", "/docs/sub/c.txt"}) {
		t.Fatalf("Sources after a delete = %q", got)
	}
}

func testFilter(t *testing.T, ctx context.Context, st retrieval.Store, coll string) {
	if _, err := st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: coll}); err != nil {
		t.Fatal(err)
	}
	mustPut(t, ctx, st, coll, corpus...)
	q := "port team backup deployment"
	hits := search(t, ctx, st, coll, retrieval.Query{Text: q, K: 10, Filter: map[string]string{"type": "txt"}})
	if len(hits) != 1 || hits[0].Source != "/docs/team.txt" {
		t.Fatalf("filter type=txt: %v", sources(hits))
	}
	hits = search(t, ctx, st, coll, retrieval.Query{Text: q, K: 10, Filter: map[string]string{"source": "/docs/backup.md"}})
	if len(hits) == 0 {
		t.Fatal("filter source=/docs/backup.md found nothing")
	}
	for _, h := range hits {
		if h.Source != "/docs/backup.md" {
			t.Fatalf("filter source leaked %s", h.Source)
		}
	}
	if hits := search(t, ctx, st, coll, retrieval.Query{Text: q, K: 10, Filter: map[string]string{"type": "pdf"}}); len(hits) != 0 {
		t.Fatalf("filter type=pdf: %v", sources(hits))
	}
}

// testMetaKeys: a store that lists its chunks' Meta keys (so that a
// filter naming none of them is refused) lists each key once, a key only
// some chunks carry included, and none of a document's own Meta that its
// chunks lack; a missing collection is ErrNoCollection.
func testMetaKeys(t *testing.T, ctx context.Context, st retrieval.Store, coll string) {
	mk, ok := st.(retrieval.MetaKeyer)
	if !ok {
		t.Skip("the store does not list metadata keys")
	}
	if _, err := mk.MetaKeys(ctx, coll); !errors.Is(err, retrieval.ErrNoCollection) {
		t.Fatalf("MetaKeys of a missing collection: %v, want ErrNoCollection", err)
	}
	if _, err := st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: coll}); err != nil {
		t.Fatal(err)
	}
	if keys, err := mk.MetaKeys(ctx, coll); err != nil || len(keys) != 0 {
		t.Fatalf("MetaKeys of an empty collection: %q, %v", keys, err)
	}
	d := doc("/docs/team.md", "The platform team owns the deploy pipeline.", "On-call rotates weekly.")
	d.Meta["doc_only"] = "x"
	d.Chunks[1].Meta["team"] = "platform"
	mustPut(t, ctx, st, coll, append(slices.Clone(corpus), d)...)
	keys, err := mk.MetaKeys(ctx, coll)
	if err != nil || !slices.Equal(keys, []string{"team", "type"}) {
		t.Fatalf("MetaKeys = %q, %v, want [team type]", keys, err)
	}
}

// vec is a unit-ish vector pointing mostly along axis i of 8.
func vec(i int, noise float32) []float32 {
	v := make([]float32, 8)
	for j := range v {
		v[j] = noise * float32((i*7+j*3)%5) / 5
	}
	v[i] = 1
	return v
}

func testDense(t *testing.T, ctx context.Context, st retrieval.Store, coll string) {
	coll += "_dense"
	if _, err := st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: coll, Dim: 8, Model: "test-embed"}); err != nil {
		t.Fatal(err)
	}
	// Another model of the same dimension is refused, naming the
	// collection's model: its vectors would be mixed with test-embed's.
	_, err := st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: coll, Dim: 8, Model: "other-embed"})
	if !errors.Is(err, retrieval.ErrModel) || !strings.Contains(err.Error(), "holds vectors from test-embed, and vectors from other-embed cannot be compared with them") {
		t.Fatalf("EnsureCollection with another model: %v, want ErrModel naming both", err)
	}
	if info, err := st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: coll, Dim: 8, Model: "test-embed"}); err != nil || info.Model != "test-embed" {
		t.Fatalf("EnsureCollection with the same model again: %+v, %v", info, err)
	}
	docs := []retrieval.Document{
		doc("/d/a.md", "alpha topic about caching layers"),
		doc("/d/b.md", "bravo topic about network ports"),
		doc("/d/c.md", "charlie topic about caching and ports"),
	}
	for i := range docs {
		docs[i].Chunks[0].Vector = vec(i, 0.1)
	}
	// A wrong-sized vector is refused before anything is written.
	bad := doc("/d/bad.md", "bad vector")
	bad.Chunks[0].Vector = make([]float32, 5)
	if err := st.Put(ctx, coll, append(slices.Clone(docs), bad)); !errors.Is(err, retrieval.ErrDimension) {
		t.Fatalf("Put with a 5-dim vector into an 8-dim collection: %v, want ErrDimension", err)
	}
	if info, _ := st.Collection(ctx, coll); info.Chunks != 0 {
		t.Fatalf("a refused Put wrote %d chunks", info.Chunks)
	}
	mustPut(t, ctx, st, coll, docs...)
	hits := search(t, ctx, st, coll, retrieval.Query{Vector: vec(1, 0.05), K: 3})
	if len(hits) != 3 || hits[0].Source != "/d/b.md" || hits[0].Score < hits[1].Score {
		t.Fatalf("dense search: %v %+v", sources(hits), hits)
	}
	// Hybrid: text favours a and c (caching), the vector favours c.
	hits = search(t, ctx, st, coll, retrieval.Query{Text: "caching", Vector: vec(2, 0.05), K: 3})
	if len(hits) == 0 || hits[0].Source != "/d/c.md" {
		t.Fatalf("hybrid search: %v", sources(hits))
	}
	hits = search(t, ctx, st, coll, retrieval.Query{Vector: vec(1, 0.05), K: 3, Filter: map[string]string{"source": "/d/a.md"}})
	if len(hits) != 1 || hits[0].Source != "/d/a.md" {
		t.Fatalf("dense search with filter: %v", sources(hits))
	}
	if _, err := st.Search(ctx, coll, retrieval.Query{Vector: make([]float32, 3), K: 3}); !errors.Is(err, retrieval.ErrDimension) {
		t.Fatalf("query with a 3-dim vector: %v, want ErrDimension", err)
	}
	// Deleting a document removes it from dense search too.
	if _, err := st.DeleteDocument(ctx, coll, "/d/b.md"); err != nil {
		t.Fatal(err)
	}
	if hits := search(t, ctx, st, coll, retrieval.Query{Vector: vec(1, 0.05), K: 3}); slices.Contains(sources(hits), "/d/b.md") {
		t.Fatalf("deleted document in dense results: %v", sources(hits))
	}
}

func testErrors(t *testing.T, ctx context.Context, st retrieval.Store, coll string) {
	if _, err := st.Search(ctx, coll+"_missing", retrieval.Query{Text: "x", K: 1}); !errors.Is(err, retrieval.ErrNoCollection) {
		t.Fatalf("search of a missing collection: %v, want ErrNoCollection", err)
	}
	if err := st.Put(ctx, coll+"_missing", corpus); !errors.Is(err, retrieval.ErrNoCollection) {
		t.Fatalf("put into a missing collection: %v, want ErrNoCollection", err)
	}
	if _, err := st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: coll}); err != nil {
		t.Fatal(err)
	}
	v := doc("/docs/v.md", "vector into a lexical collection")
	v.Chunks[0].Vector = make([]float32, 4)
	if err := st.Put(ctx, coll, []retrieval.Document{v}); !errors.Is(err, retrieval.ErrDimension) {
		t.Fatalf("vector into a lexical collection: %v, want ErrDimension", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := st.Put(cctx, coll, corpus); err == nil {
		t.Fatal("Put with a cancelled context succeeded")
	}
}
