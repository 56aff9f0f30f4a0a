package retrieval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/core"
)

// RetrieverOptions configure a Retriever. The zero value is valid.
type RetrieverOptions struct {
	// Embedder adds dense search where the collection has vectors; nil
	// means lexical only.
	Embedder Embedder
	// Collection is used when a request names none (default "docs").
	Collection string
	// K is the default number of chunks (default 5); MaxK caps requests
	// (default 50).
	K, MaxK int
	Logger  zerolog.Logger
}

// Retriever searches a Store: hybrid (BM25 + dense, fused by RRF) when the
// collection has vectors and an embedder is configured, else BM25. It
// implements core.Retriever.
type Retriever struct {
	store Store
	o     RetrieverOptions
}

var _ core.Retriever = (*Retriever)(nil)

// NewRetriever returns a Retriever over store.
func NewRetriever(store Store, o *RetrieverOptions) *Retriever {
	var opt RetrieverOptions
	if o != nil {
		opt = *o
	}
	if opt.Collection == "" {
		opt.Collection = "docs"
	}
	if opt.K <= 0 {
		opt.K = 5
	}
	if opt.MaxK <= 0 {
		opt.MaxK = 50
	}
	return &Retriever{store: store, o: opt}
}

// Store returns the underlying store.
func (r *Retriever) Store() Store { return r.store }

// MissingCollection reports whether the store is known not to have the
// collection name, so that a solve naming one that does not exist can be
// refused before it starts; a store it cannot ask reports false (the run
// then says what went wrong).
func (r *Retriever) MissingCollection(ctx context.Context, name string) bool {
	// A name no collection can have is not "missing" (whose advice is to
	// ingest into it, which fails): the search says what is wrong with it.
	if ValidateCollection(name) != nil {
		return false
	}
	_, err := r.store.Collection(ctx, name)
	return errors.Is(err, ErrNoCollection)
}

// SearchRequest is a search by text.
type SearchRequest struct {
	Query      string
	Collection string
	K          int
	Filter     map[string]string
	// Mode forces lexical, dense or hybrid search (default: the best the
	// collection and embedder allow).
	Mode Mode
}

// Search runs req and returns hits, best first.
func (r *Retriever) Search(ctx context.Context, req SearchRequest) ([]Hit, error) {
	if strings.TrimSpace(req.Query) == "" {
		return nil, fmt.Errorf("%w: the query is empty", ErrBadQuery)
	}
	if req.Collection == "" {
		req.Collection = r.o.Collection
	}
	if req.K <= 0 {
		req.K = r.o.K
	}
	if req.K > r.o.MaxK {
		return nil, fmt.Errorf("%w: k=%d is above the limit of %d", ErrBadQuery, req.K, r.o.MaxK)
	}
	// A name no collection can have says so; the store would say "no such
	// collection" and advise ingesting into it, which fails.
	if err := ValidateCollection(req.Collection); err != nil {
		return nil, err
	}
	info, err := r.store.Collection(ctx, req.Collection)
	if err != nil {
		return nil, err
	}
	q := Query{Text: req.Query, K: req.K, Filter: req.Filter, Mode: req.Mode}
	dense := info.Dim > 0 && r.o.Embedder != nil
	switch {
	case req.Mode == ModeLexical:
		dense = false
	case (req.Mode == ModeDense || req.Mode == ModeHybrid) && !dense:
		return nil, fmt.Errorf("%w: %s search needs a collection ingested with an embedder and an embedder configured (retrieval.embed_url)", ErrBadQuery, req.Mode)
	}
	if dense {
		if err := CheckModel(info, r.o.Embedder.Model(), true); err != nil {
			return nil, err
		}
		if d := r.o.Embedder.Dim(); d != 0 && d != info.Dim {
			return nil, fmt.Errorf("%w: collection %q holds %d-dimensional vectors (model %s) but the embedder %s gives %d: configure the same model, or search with --mode lexical",
				ErrDimension, req.Collection, info.Dim, info.Model, r.o.Embedder.Model(), d)
		}
		vecs, err := r.o.Embedder.Embed(ctx, []string{req.Query})
		if err != nil {
			return nil, fmt.Errorf("embed the query: %w", err)
		}
		q.Vector = vecs[0]
	} else if info.Dim > 0 && r.o.Embedder == nil {
		r.o.Logger.Debug().Str("collection", req.Collection).Msg("collection has vectors but no embedder is configured: lexical search only")
	}
	hits, err := r.store.Search(ctx, req.Collection, q)
	if err != nil || len(hits) > 0 || len(req.Filter) == 0 {
		return hits, err
	}
	// Nothing found: a key no chunk carries is why, and is said.
	if err := CheckFilter(ctx, r.store, req.Collection, req.Filter); err != nil {
		return nil, err
	}
	return hits, nil
}

// Retrieve implements core.Retriever.
func (r *Retriever) Retrieve(ctx context.Context, req core.RetrieveRequest) ([]core.Chunk, error) {
	hits, err := r.Search(ctx, SearchRequest{Query: req.Query, Collection: req.Collection, K: req.K, Filter: req.Filter})
	if err != nil {
		return nil, err
	}
	out := make([]core.Chunk, len(hits))
	for i, h := range hits {
		out[i] = ToCore(h)
	}
	return out, nil
}

// ToCore converts a hit to a core.Chunk; headings, offsets, ordinal, hash
// and ingestion time go into Meta.
func ToCore(h Hit) core.Chunk {
	m := make(map[string]string, len(h.Meta)+6)
	for k, v := range h.Meta {
		m[k] = v
	}
	if len(h.Headings) > 0 {
		m["headings"] = strings.Join(h.Headings, " › ")
	}
	m["start"] = strconv.Itoa(h.Start)
	m["end"] = strconv.Itoa(h.End)
	m["ordinal"] = strconv.Itoa(h.Ordinal)
	m["doc_hash"] = h.DocHash
	if !h.IngestedAt.IsZero() {
		m["ingested_at"] = h.IngestedAt.UTC().Format(time.RFC3339)
	}
	return core.Chunk{ID: h.ID, Text: h.Text, Source: h.Source, Title: h.Title, Score: h.Score, Meta: m}
}

// Tool is the `retrieve` tool: a reasoning step (or an MCP client) asks
// for passages of a collection.
type Tool struct{ r *Retriever }

var _ core.Tool = Tool{}

// NewTool returns the retrieve tool over r.
func NewTool(r *Retriever) Tool { return Tool{r} }

// ToolName is the retrieve tool's name.
const ToolName = "retrieve"

// Spec implements core.Tool.
func (t Tool) Spec() core.ToolSpec {
	return core.ToolSpec{Name: ToolName,
		Description: "Search the ingested documents for passages relevant to a query. Returns numbered passages with their sources; cite them as [n].",
		Schema: json.RawMessage(`{"type":"object","properties":{` +
			`"query":{"type":"string","minLength":1,"description":"what to look for"},` +
			`"k":{"type":"integer","minimum":1,"maximum":50,"description":"how many passages (default 5)"},` +
			`"collection":{"type":"string","description":"document collection (default: the configured one)"},` +
			`"filter":{"type":"object","additionalProperties":{"type":"string"},"description":"metadata that must match, e.g. {\"type\":\"pdf\"} or {\"source\":\"/abs/path.md\"}"}` +
			`},"required":["query"],"additionalProperties":false}`)}
}

// Call implements core.Tool. Bad arguments and store errors are results
// with IsError (the tool ran and failed); only cancellation is an error.
func (t Tool) Call(ctx context.Context, args json.RawMessage) (core.ToolResult, error) {
	var a struct {
		Query      string            `json:"query"`
		K          int               `json:"k"`
		Collection string            `json:"collection"`
		Filter     map[string]string `json:"filter"`
	}
	dec := json.NewDecoder(strings.NewReader(string(args)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return core.ToolResult{IsError: true, Text: "retrieve: bad arguments: " + err.Error() + ` (want {"query": "...", "k": 5})`}, nil
	}
	chunks, err := t.r.Retrieve(ctx, core.RetrieveRequest{Query: a.Query, K: a.K, Collection: a.Collection, Filter: a.Filter})
	if err != nil {
		if ctx.Err() != nil {
			return core.ToolResult{}, ctx.Err()
		}
		return core.ToolResult{IsError: true, Text: "retrieve: " + err.Error()}, nil
	}
	if len(chunks) == 0 {
		return core.ToolResult{Text: "No passages matched the query.", Structured: map[string]any{"chunks": []core.Chunk{}}}, nil
	}
	return core.ToolResult{Text: core.FormatPassages(chunks), Structured: map[string]any{"chunks": chunks}}, nil
}

// Lazy is a Store opened on first use, so commands that never touch
// documents never lock or connect to the store. A failed open is retried
// on the next call.
type Lazy struct {
	open func(ctx context.Context) (Store, error)
	mu   sync.Mutex
	st   Store
}

var (
	_ Store     = (*Lazy)(nil)
	_ MetaKeyer = (*Lazy)(nil)
)

// NewLazy returns a Store that calls open on first use.
func NewLazy(open func(ctx context.Context) (Store, error)) *Lazy { return &Lazy{open: open} }

func (l *Lazy) get(ctx context.Context) (Store, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.st != nil {
		return l.st, nil
	}
	st, err := l.open(ctx)
	if err != nil {
		return nil, err
	}
	l.st = st
	return st, nil
}

// Opened returns the store if it was opened.
func (l *Lazy) Opened() (Store, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st, l.st != nil
}

// EnsureCollection implements Store.
func (l *Lazy) EnsureCollection(ctx context.Context, spec CollectionSpec) (CollectionInfo, error) {
	st, err := l.get(ctx)
	if err != nil {
		return CollectionInfo{}, err
	}
	return st.EnsureCollection(ctx, spec)
}

// Collection implements Store.
func (l *Lazy) Collection(ctx context.Context, name string) (CollectionInfo, error) {
	st, err := l.get(ctx)
	if err != nil {
		return CollectionInfo{}, err
	}
	return st.Collection(ctx, name)
}

// Collections implements Store.
func (l *Lazy) Collections(ctx context.Context) ([]CollectionInfo, error) {
	st, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return st.Collections(ctx)
}

// DeleteCollection implements Store.
func (l *Lazy) DeleteCollection(ctx context.Context, name string) error {
	st, err := l.get(ctx)
	if err != nil {
		return err
	}
	return st.DeleteCollection(ctx, name)
}

// Documents implements Store.
func (l *Lazy) Documents(ctx context.Context, collection string, sources []string) (map[string]DocInfo, error) {
	st, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return st.Documents(ctx, collection, sources)
}

// Put implements Store.
func (l *Lazy) Put(ctx context.Context, collection string, docs []Document) error {
	st, err := l.get(ctx)
	if err != nil {
		return err
	}
	return st.Put(ctx, collection, docs)
}

// DeleteDocument implements Store.
func (l *Lazy) DeleteDocument(ctx context.Context, collection, source string) (bool, error) {
	st, err := l.get(ctx)
	if err != nil {
		return false, err
	}
	return st.DeleteDocument(ctx, collection, source)
}

// Sources implements Store.
func (l *Lazy) Sources(ctx context.Context, collection, prefix string) ([]string, error) {
	st, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return st.Sources(ctx, collection, prefix)
}

// Search implements Store.
func (l *Lazy) Search(ctx context.Context, collection string, q Query) ([]Hit, error) {
	st, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return st.Search(ctx, collection, q)
}

// MetaKeys implements MetaKeyer when the store it opens does
// (errors.ErrUnsupported otherwise).
func (l *Lazy) MetaKeys(ctx context.Context, collection string) ([]string, error) {
	st, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	mk, ok := st.(MetaKeyer)
	if !ok {
		return nil, fmt.Errorf("list the metadata keys of %q: %w", collection, errors.ErrUnsupported)
	}
	return mk.MetaKeys(ctx, collection)
}

// Close closes the store if it was opened.
func (l *Lazy) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.st == nil {
		return nil
	}
	err := l.st.Close()
	l.st = nil
	return err
}

// IsNotFound reports whether err says a collection does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNoCollection) }
