// Package qdrant is the Qdrant backend of retrieval.Store, over Qdrant's
// gRPC API (qdrant/go-client). Each collection has a named dense vector
// "dense" (cosine; only when an embedder is used) and a sparse vector
// "bm25" with Qdrant's IDF modifier, filled with lexical.DocSparse term
// weights, so lexical search is BM25 computed by Qdrant. Hybrid search is
// one Query API call: prefetch dense and sparse, fuse by RRF.
//
//	st, err := qdrant.Open(ctx, qdrant.Options{URL: "https://qdrant.example:6334", APIKey: key})
//	defer st.Close()
//
// Points have deterministic ids (retrieval.ChunkID), so re-sending a batch
// is idempotent. A document is replaced by first upserting its new chunks
// (waiting for each batch to be applied), then deleting the chunks of its
// other versions: an outage in between leaves the old version searchable
// and is reported as an error, never a silent loss.
package qdrant

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	qc "github.com/qdrant/go-client/qdrant"
	"github.com/rs/zerolog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ponder-rlm/ponder/internal/endpoint"
	"github.com/ponder-rlm/ponder/retrieval"
	"github.com/ponder-rlm/ponder/retrieval/lexical"
)

// Vector names in every collection.
const (
	DenseVector  = "dense"
	SparseVector = "bm25"
)

// Options configure the connection.
type Options struct {
	// URL is the gRPC endpoint: http://host:6334, or https:// for TLS.
	URL    string
	APIKey string
	// TLS overrides the TLS configuration for https URLs.
	TLS *tls.Config
	// BatchSize is the number of points per upsert (default 256).
	BatchSize int
	// Timeout bounds each call (default 30s).
	Timeout time.Duration
	Logger  zerolog.Logger
}

// Store is a retrieval.Store on a Qdrant server.
type Store struct {
	c *qc.Client
	o Options
	// ep keeps the server's URL, address and API key out of messages,
	// which name it serverName.
	ep *endpoint.Endpoint
}

var (
	_ retrieval.Store     = (*Store)(nil)
	_ retrieval.MetaKeyer = (*Store)(nil)
)

// serverName is how messages name the Qdrant server. Not its URL: these
// messages reach the clients of `ponder serve` (MCP tool results of
// search_documents and ingest_documents, a grounded solve's trace), and
// the server may be internal infrastructure they should not learn of.
// `ponder serve` logs the URL at start.
const serverName = "the Qdrant server"

// urlSetting names the setting that says where the server is.
const urlSetting = "retrieval.qdrant_url (PONDER_QDRANT_URL)"

// Open connects to Qdrant and checks that it answers. Its errors, like
// every error of the Store, name the server serverName and never show
// o.URL or o.APIKey.
func Open(ctx context.Context, o Options) (*Store, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%s: want http://host:6334 or https://host:6334 (gRPC; no query or fragment: the key goes in retrieval.qdrant_api_key)", urlSetting)
	}
	port := 6334
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("%s: bad port", urlSetting)
		}
	}
	if port == 6333 {
		return nil, fmt.Errorf("%s names the REST port 6333: Ponder speaks gRPC, usually port 6334", urlSetting)
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 256
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	s := &Store{o: o, ep: endpoint.New(serverName, o.URL, o.APIKey)}
	cfg := &qc.Config{Host: u.Hostname(), Port: port, APIKey: o.APIKey, UseTLS: u.Scheme == "https", TLSConfig: o.TLS,
		SkipCompatibilityCheck: true, PoolSize: 1}
	if s.c, err = qc.NewClient(cfg); err != nil {
		return nil, s.newError(retrieval.ErrUnavailable, err, "cannot make a client of %s (%s): fix %s",
			serverName, s.clean(err.Error()), urlSetting)
	}
	cctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if _, err := s.c.HealthCheck(cctx); err != nil {
		s.c.Close()
		return nil, s.wrap(err, "connect")
	}
	return s, nil
}

// Close closes the connection.
func (s *Store) Close() error { return s.c.Close() }

// wrap turns gRPC errors into errors that say what to do, naming the
// server serverName: the text gRPC gives (its dialer's error, the server's
// message) loses the server's addresses and API key.
func (s *Store) wrap(err error, op string) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(errors.Unwrap(err))
	if !ok {
		st, ok = status.FromError(err)
	}
	if ok {
		switch st.Code() {
		case codes.Unavailable, codes.DeadlineExceeded:
			why := st.Message()
			// gRPC quotes its dialer's error in `connection error: desc =
			// "transport: Error while dialing: dial tcp ...: connect:
			// connection refused"`: the dialer's error says it all.
			if _, dial, ok := strings.Cut(why, "Error while dialing: "); ok {
				why = strings.TrimSuffix(dial, `"`)
			}
			return s.newError(retrieval.ErrUnavailable, err, "%s is unreachable (%s): %s; start it or fix %s — nothing unacknowledged was kept",
				serverName, op, s.clean(why), urlSetting)
		case codes.Unauthenticated, codes.PermissionDenied:
			return s.newError(retrieval.ErrUnavailable, err, "%s rejected the API key (%s): set retrieval.qdrant_api_key (PONDER_QDRANT_API_KEY)",
				serverName, op)
		case codes.NotFound:
			return s.newError(retrieval.ErrNoCollection, err, "%s: %s", op, s.clean(st.Message()))
		}
	}
	return s.newError(nil, err, "qdrant %s: %s", op, s.clean(err.Error()))
}

// clean makes gRPC's or the server's text safe for a message: no address
// of the server (also none a name resolved to), no API key, one line.
func (s *Store) clean(msg string) string {
	return s.ep.Clean(endpoint.ScrubNetText(msg))
}

// storeError is an error whose text is its own (cleaned) message, while
// errors.Is and errors.As still see the sentinel and the gRPC error under
// it.
type storeError struct {
	msg  string
	errs []error
}

func (e *storeError) Error() string   { return e.msg }
func (e *storeError) Unwrap() []error { return e.errs }

// newError is a storeError: "SENTINEL: MESSAGE" wrapping sentinel (when
// not nil) and cause.
func (s *Store) newError(sentinel, cause error, format string, args ...any) error {
	e := &storeError{msg: fmt.Sprintf(format, args...), errs: []error{cause}}
	if sentinel != nil {
		e.msg = sentinel.Error() + ": " + e.msg
		e.errs = []error{sentinel, cause}
	}
	return e
}

func (s *Store) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.o.Timeout)
}

func (s *Store) noCollection(name string) error {
	return fmt.Errorf("%w: %q (ingest documents into it with `ponder ingest --collection %s PATH`)", retrieval.ErrNoCollection, name, name)
}

// EnsureCollection implements retrieval.Store.
func (s *Store) EnsureCollection(ctx context.Context, spec retrieval.CollectionSpec) (retrieval.CollectionInfo, error) {
	if err := retrieval.ValidateCollection(spec.Name); err != nil {
		return retrieval.CollectionInfo{}, err
	}
	cctx, cancel := s.ctx(ctx)
	defer cancel()
	exists, err := s.c.CollectionExists(cctx, spec.Name)
	if err != nil {
		return retrieval.CollectionInfo{}, s.wrap(err, "check collection "+spec.Name)
	}
	if !exists {
		req := &qc.CreateCollection{
			CollectionName: spec.Name,
			SparseVectorsConfig: qc.NewSparseVectorsConfig(map[string]*qc.SparseVectorParams{
				SparseVector: {Modifier: qc.Modifier_Idf.Enum()},
			}),
			Metadata: qc.NewValueMap(map[string]any{"ponder_model": spec.Model, "ponder_created": time.Now().UTC().Format(time.RFC3339)}),
		}
		if spec.Dim > 0 {
			req.VectorsConfig = qc.NewVectorsConfigMap(map[string]*qc.VectorParams{
				DenseVector: {Size: uint64(spec.Dim), Distance: qc.Distance_Cosine},
			})
		}
		if err := s.c.CreateCollection(cctx, req); err != nil {
			return retrieval.CollectionInfo{}, s.wrap(err, "create collection "+spec.Name)
		}
		for _, f := range []string{"source", "doc_hash", "title", "meta.type"} {
			if _, err := s.c.CreateFieldIndex(cctx, &qc.CreateFieldIndexCollection{CollectionName: spec.Name, Wait: qc.PtrOf(true),
				FieldName: f, FieldType: qc.FieldType_FieldTypeKeyword.Enum()}); err != nil {
				return retrieval.CollectionInfo{}, s.wrap(err, "index payload field "+f)
			}
		}
		if _, err := s.c.CreateFieldIndex(cctx, &qc.CreateFieldIndexCollection{CollectionName: spec.Name, Wait: qc.PtrOf(true),
			FieldName: "ordinal", FieldType: qc.FieldType_FieldTypeInteger.Enum()}); err != nil {
			return retrieval.CollectionInfo{}, s.wrap(err, "index payload field ordinal")
		}
	}
	info, err := s.Collection(ctx, spec.Name)
	if err != nil {
		return info, err
	}
	if info.Dim != spec.Dim {
		return info, fmt.Errorf("%w: collection %q holds %d-dimensional vectors (0: lexical only) but %d were asked for: use the same embedding model, or another collection",
			retrieval.ErrDimension, spec.Name, info.Dim, spec.Dim)
	}
	// The model is in the collection's metadata (ponder_model).
	return info, retrieval.CheckModel(info, spec.Model, false)
}

// Collection implements retrieval.Store.
func (s *Store) Collection(ctx context.Context, name string) (retrieval.CollectionInfo, error) {
	cctx, cancel := s.ctx(ctx)
	defer cancel()
	ci, err := s.c.GetCollectionInfo(cctx, name)
	if err != nil {
		if status.Code(errors.Unwrap(err)) == codes.NotFound || status.Code(err) == codes.NotFound {
			return retrieval.CollectionInfo{}, s.noCollection(name)
		}
		return retrieval.CollectionInfo{}, s.wrap(err, "collection "+name)
	}
	info := retrieval.CollectionInfo{Name: name}
	if p := ci.GetConfig().GetParams().GetVectorsConfig().GetParamsMap().GetMap()[DenseVector]; p != nil {
		info.Dim = int(p.GetSize())
	}
	md := ci.GetConfig().GetMetadata()
	info.Model = md["ponder_model"].GetStringValue()
	info.Created, _ = time.Parse(time.RFC3339, md["ponder_created"].GetStringValue())
	chunks, err := s.c.Count(cctx, &qc.CountPoints{CollectionName: name, Exact: qc.PtrOf(true)})
	if err != nil {
		return info, s.wrap(err, "count chunks of "+name)
	}
	docs, err := s.c.Count(cctx, &qc.CountPoints{CollectionName: name, Exact: qc.PtrOf(true),
		Filter: &qc.Filter{Must: []*qc.Condition{qc.NewMatchInt("ordinal", 0)}}})
	if err != nil {
		return info, s.wrap(err, "count documents of "+name)
	}
	info.Chunks, info.Documents = int(chunks), int(docs)
	return info, nil
}

// Collections implements retrieval.Store.
func (s *Store) Collections(ctx context.Context) ([]retrieval.CollectionInfo, error) {
	cctx, cancel := s.ctx(ctx)
	defer cancel()
	names, err := s.c.ListCollections(cctx)
	if err != nil {
		return nil, s.wrap(err, "list collections")
	}
	var out []retrieval.CollectionInfo
	for _, n := range names {
		info, err := s.Collection(ctx, n)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// DeleteCollection implements retrieval.Store.
func (s *Store) DeleteCollection(ctx context.Context, name string) error {
	cctx, cancel := s.ctx(ctx)
	defer cancel()
	exists, err := s.c.CollectionExists(cctx, name)
	if err != nil {
		return s.wrap(err, "check collection "+name)
	}
	if !exists {
		return s.noCollection(name)
	}
	return s.wrap(s.c.DeleteCollection(cctx, name), "delete collection "+name)
}

func match(field, v string) *qc.Condition { return qc.NewMatchKeyword(field, v) }

// Documents implements retrieval.Store. A document whose chunks are not all
// present (an upsert cut short) is reported missing, so it is ingested again.
func (s *Store) Documents(ctx context.Context, collection string, sources []string) (map[string]retrieval.DocInfo, error) {
	if _, err := s.Collection(ctx, collection); err != nil {
		return nil, err
	}
	out := map[string]retrieval.DocInfo{}
	cctx, cancel := s.ctx(ctx)
	defer cancel()
	for _, src := range sources {
		pts, err := s.c.Scroll(cctx, &qc.ScrollPoints{CollectionName: collection, Limit: qc.PtrOf(uint32(1)),
			Filter:      &qc.Filter{Must: []*qc.Condition{match("source", src), qc.NewMatchInt("ordinal", 0)}},
			WithPayload: qc.NewWithPayload(true)})
		if err != nil {
			return nil, s.wrap(err, "look up "+src)
		}
		if len(pts) == 0 {
			continue
		}
		p := pts[0].GetPayload()
		info := retrieval.DocInfo{Source: src, Hash: str(p, "doc_hash"), Params: str(p, "params"), Title: str(p, "title"),
			Bytes: num(p, "bytes"), Chunks: int(num(p, "doc_chunks"))}
		info.IngestedAt, _ = time.Parse(time.RFC3339Nano, str(p, "ingested_at"))
		n, err := s.c.Count(cctx, &qc.CountPoints{CollectionName: collection, Exact: qc.PtrOf(true),
			Filter: &qc.Filter{Must: []*qc.Condition{match("source", src), match("doc_hash", info.Hash)}}})
		if err != nil {
			return nil, s.wrap(err, "count chunks of "+src)
		}
		if int(n) != info.Chunks {
			continue // incomplete: ingest again
		}
		out[src] = info
	}
	return out, nil
}

// Put implements retrieval.Store.
func (s *Store) Put(ctx context.Context, collection string, docs []retrieval.Document) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	info, err := s.Collection(ctx, collection)
	if err != nil {
		return err
	}
	for _, d := range docs {
		if d.Source == "" {
			return fmt.Errorf("%w: a document has no source", retrieval.ErrBadQuery)
		}
		for _, c := range d.Chunks {
			if len(c.Vector) != info.Dim {
				return fmt.Errorf("%w: collection %q holds %d-dimensional vectors (0: lexical only), got %d: use the same embedding model, or another collection",
					retrieval.ErrDimension, collection, info.Dim, len(c.Vector))
			}
		}
	}
	for _, d := range docs {
		if err := s.putDoc(ctx, collection, d); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) putDoc(ctx context.Context, collection string, d retrieval.Document) error {
	var pts []*qc.PointStruct
	for i, c := range d.Chunks {
		id := retrieval.ChunkID(d.Source, d.Hash, i)
		title := c.Title
		if title == "" {
			title = d.Title
		}
		at := c.IngestedAt
		if at.IsZero() {
			at = d.IngestedAt
		}
		headings := make([]any, len(c.Headings))
		for j, h := range c.Headings {
			headings[j] = h
		}
		meta := map[string]any{}
		for k, v := range c.Meta {
			meta[k] = v
		}
		payload, err := qc.TryValueMap(map[string]any{
			"id": id, "source": d.Source, "ordinal": int64(i), "text": c.Text, "title": title, "headings": headings,
			"start": int64(c.Start), "end": int64(c.End), "doc_hash": d.Hash, "params": d.Params, "bytes": d.Bytes,
			"doc_chunks": int64(len(d.Chunks)), "ingested_at": at.UTC().Format(time.RFC3339Nano), "meta": meta,
		})
		if err != nil {
			return fmt.Errorf("payload of %s chunk %d: %w", d.Source, i, err)
		}
		idx, val := lexical.DocSparse(c.Text)
		vecs := map[string]*qc.Vector{SparseVector: qc.NewVectorSparse(idx, val)}
		if len(c.Vector) > 0 {
			vecs[DenseVector] = qc.NewVectorDense(c.Vector)
		}
		pts = append(pts, &qc.PointStruct{Id: qc.NewID(id), Payload: payload, Vectors: qc.NewVectorsMap(vecs)})
	}
	for i := 0; i < len(pts); i += s.o.BatchSize {
		cctx, cancel := s.ctx(ctx)
		_, err := s.c.Upsert(cctx, &qc.UpsertPoints{CollectionName: collection, Wait: qc.PtrOf(true), Points: pts[i:min(len(pts), i+s.o.BatchSize)]})
		cancel()
		if err != nil {
			return s.wrap(err, fmt.Sprintf("upsert %s (points %d-%d of %d)", d.Source, i, min(len(pts), i+s.o.BatchSize), len(pts)))
		}
	}
	// The new version is complete: drop every other chunk of the source,
	// the other versions' and this version's past its last chunk (the same
	// text cut again into fewer chunks: ids follow the ordinal, so the
	// first ones were overwritten, the rest were not).
	keep := &qc.Filter{Must: []*qc.Condition{match("doc_hash", d.Hash),
		qc.NewRange("ordinal", &qc.Range{Lt: qc.PtrOf(float64(len(d.Chunks)))})}}
	cctx, cancel := s.ctx(ctx)
	defer cancel()
	_, err := s.c.Delete(cctx, &qc.DeletePoints{CollectionName: collection, Wait: qc.PtrOf(true),
		Points: qc.NewPointsSelectorFilter(&qc.Filter{Must: []*qc.Condition{match("source", d.Source)},
			MustNot: []*qc.Condition{qc.NewFilterAsCondition(keep)}})})
	return s.wrap(err, "drop old chunks of "+d.Source)
}

// DeleteDocument implements retrieval.Store.
func (s *Store) DeleteDocument(ctx context.Context, collection, source string) (bool, error) {
	if _, err := s.Collection(ctx, collection); err != nil {
		return false, err
	}
	cctx, cancel := s.ctx(ctx)
	defer cancel()
	f := &qc.Filter{Must: []*qc.Condition{match("source", source)}}
	n, err := s.c.Count(cctx, &qc.CountPoints{CollectionName: collection, Filter: f, Exact: qc.PtrOf(true)})
	if err != nil {
		return false, s.wrap(err, "count chunks of "+source)
	}
	if n == 0 {
		return false, nil
	}
	_, err = s.c.Delete(cctx, &qc.DeletePoints{CollectionName: collection, Wait: qc.PtrOf(true), Points: qc.NewPointsSelectorFilter(f)})
	if err != nil {
		return false, s.wrap(err, "delete "+source)
	}
	return true, nil
}

// Sources implements retrieval.Store. Keyword payload indexes match whole
// values only, so the sources are scrolled (one point per document: its
// chunk 0, with only the source in its payload) and the prefix is matched
// here.
func (s *Store) Sources(ctx context.Context, collection, prefix string) ([]string, error) {
	if _, err := s.Collection(ctx, collection); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var offset *qc.PointId
	for {
		cctx, cancel := s.ctx(ctx)
		pts, next, err := s.c.ScrollAndOffset(cctx, &qc.ScrollPoints{CollectionName: collection, Limit: qc.PtrOf(uint32(1024)), Offset: offset,
			Filter:      &qc.Filter{Must: []*qc.Condition{qc.NewMatchInt("ordinal", 0)}},
			WithPayload: qc.NewWithPayloadInclude("source")})
		cancel()
		if err != nil {
			return nil, s.wrap(err, "list the documents of "+collection)
		}
		for _, p := range pts {
			if src := str(p.GetPayload(), "source"); strings.HasPrefix(src, prefix) {
				seen[src] = true
			}
		}
		if next == nil || len(pts) == 0 {
			break
		}
		offset = next
	}
	out := make([]string, 0, len(seen))
	for src := range seen {
		out = append(out, src)
	}
	sort.Strings(out)
	return out, nil
}

// MetaKeys implements retrieval.MetaKeyer: it pages through every point's
// meta (only when a filtered search found nothing: see
// retrieval.CheckFilter).
func (s *Store) MetaKeys(ctx context.Context, collection string) ([]string, error) {
	if _, err := s.Collection(ctx, collection); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var offset *qc.PointId
	for {
		cctx, cancel := s.ctx(ctx)
		pts, next, err := s.c.ScrollAndOffset(cctx, &qc.ScrollPoints{CollectionName: collection, Limit: qc.PtrOf(uint32(1024)), Offset: offset,
			WithPayload: qc.NewWithPayloadInclude("meta")})
		cancel()
		if err != nil {
			return nil, s.wrap(err, "list the metadata keys of "+collection)
		}
		for _, p := range pts {
			for k := range p.GetPayload()["meta"].GetStructValue().GetFields() {
				seen[k] = true
			}
		}
		if next == nil || len(pts) == 0 {
			break
		}
		offset = next
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

func filterOf(f map[string]string) *qc.Filter {
	if len(f) == 0 {
		return nil
	}
	out := &qc.Filter{}
	for k, v := range f {
		field := k
		switch k {
		case "source", "title", "doc_hash":
		default:
			field = "meta." + k
		}
		out.Must = append(out.Must, match(field, v))
	}
	return out
}

// Search implements retrieval.Store.
func (s *Store) Search(ctx context.Context, collection string, q retrieval.Query) ([]retrieval.Hit, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if q.K <= 0 {
		q.K = 5
	}
	info, err := s.Collection(ctx, collection)
	if err != nil {
		return nil, err
	}
	mode := q.EffectiveMode()
	if mode != retrieval.ModeLexical && len(q.Vector) != info.Dim {
		return nil, fmt.Errorf("%w: collection %q holds %d-dimensional vectors, the query has %d", retrieval.ErrDimension, collection, info.Dim, len(q.Vector))
	}
	filter := filterOf(q.Filter)
	req := &qc.QueryPoints{CollectionName: collection, Limit: qc.PtrOf(uint64(q.K)), Filter: filter, WithPayload: qc.NewWithPayload(true)}
	sparse := func() (*qc.Query, bool) {
		idx, val := lexical.QuerySparse(q.Text)
		return qc.NewQuerySparse(idx, val), len(idx) > 0
	}
	switch mode {
	case retrieval.ModeLexical:
		sq, ok := sparse()
		if !ok {
			return nil, nil
		}
		req.Query, req.Using = sq, qc.PtrOf(SparseVector)
	case retrieval.ModeDense:
		req.Query, req.Using = qc.NewQueryDense(q.Vector), qc.PtrOf(DenseVector)
	case retrieval.ModeHybrid:
		n := qc.PtrOf(uint64(max(3*q.K, 30)))
		req.Prefetch = []*qc.PrefetchQuery{{Query: qc.NewQueryDense(q.Vector), Using: qc.PtrOf(DenseVector), Limit: n, Filter: filter}}
		if sq, ok := sparse(); ok {
			req.Prefetch = append(req.Prefetch, &qc.PrefetchQuery{Query: sq, Using: qc.PtrOf(SparseVector), Limit: n, Filter: filter})
		}
		req.Query = qc.NewQueryFusion(qc.Fusion_RRF)
	default:
		return nil, fmt.Errorf("%w: unknown search mode %q (want lexical, dense or hybrid)", retrieval.ErrBadQuery, q.Mode)
	}
	cctx, cancel := s.ctx(ctx)
	defer cancel()
	pts, err := s.c.Query(cctx, req)
	if err != nil {
		return nil, s.wrap(err, "search "+collection)
	}
	out := make([]retrieval.Hit, 0, len(pts))
	for _, p := range pts {
		out = append(out, retrieval.Hit{Chunk: chunkOf(p.GetPayload()), Score: float64(p.GetScore())})
	}
	return out, nil
}

func chunkOf(p map[string]*qc.Value) retrieval.Chunk {
	c := retrieval.Chunk{ID: str(p, "id"), Source: str(p, "source"), Ordinal: int(num(p, "ordinal")), Text: str(p, "text"),
		Title: str(p, "title"), Start: int(num(p, "start")), End: int(num(p, "end")), DocHash: str(p, "doc_hash")}
	c.IngestedAt, _ = time.Parse(time.RFC3339Nano, str(p, "ingested_at"))
	for _, v := range p["headings"].GetListValue().GetValues() {
		c.Headings = append(c.Headings, v.GetStringValue())
	}
	if m := p["meta"].GetStructValue().GetFields(); len(m) > 0 {
		c.Meta = map[string]string{}
		for k, v := range m {
			c.Meta[k] = v.GetStringValue()
		}
	}
	return c
}

func str(p map[string]*qc.Value, k string) string { return p[k].GetStringValue() }

func num(p map[string]*qc.Value, k string) int64 {
	v := p[k]
	if v == nil {
		return 0
	}
	if _, ok := v.GetKind().(*qc.Value_IntegerValue); ok {
		return v.GetIntegerValue()
	}
	return int64(v.GetDoubleValue())
}
