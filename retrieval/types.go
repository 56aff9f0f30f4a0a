package retrieval

import (
	"context"
	"errors"
	"time"
)

// Chunk is one stored piece of a document with its metadata.
type Chunk struct {
	// ID is stable for a given source, content hash and ordinal
	// (see ChunkID); stores set it on Put when it is empty.
	ID      string `json:"id"`
	Source  string `json:"source"`
	Ordinal int    `json:"ordinal"`
	Text    string `json:"text"`
	// Title is the document's title; Headings the trail of section
	// headings the chunk sits under, outermost first.
	Title    string   `json:"title,omitempty"`
	Headings []string `json:"headings,omitempty"`
	// Start and End are byte offsets of the chunk in the document's
	// extracted text (the file itself for text formats).
	Start int `json:"start"`
	End   int `json:"end"`
	// DocHash is the sha256 of the document's bytes.
	DocHash    string    `json:"doc_hash"`
	IngestedAt time.Time `json:"ingested_at"`
	// Meta holds further string metadata (type, page, ...); filters match it.
	Meta map[string]string `json:"meta,omitempty"`
	// Vector is the dense embedding (nil for lexical-only collections).
	Vector []float32 `json:"-"`
}

// Document is one source with all its chunks, as Put stores it.
type Document struct {
	Source string `json:"source"`
	// Hash is the sha256 of the document's bytes; Params fingerprints what
	// else shaped the chunks (chunk size, overlap, embedding model), so that
	// re-ingesting with other settings is not taken for a no-op.
	Hash       string            `json:"hash"`
	Params     string            `json:"params,omitempty"`
	Title      string            `json:"title,omitempty"`
	Bytes      int64             `json:"bytes"`
	IngestedAt time.Time         `json:"ingested_at"`
	Meta       map[string]string `json:"meta,omitempty"`
	Chunks     []Chunk           `json:"-"`
}

// DocInfo describes a stored document.
type DocInfo struct {
	Source     string    `json:"source"`
	Hash       string    `json:"hash"`
	Params     string    `json:"params,omitempty"`
	Title      string    `json:"title,omitempty"`
	Bytes      int64     `json:"bytes"`
	Chunks     int       `json:"chunks"`
	IngestedAt time.Time `json:"ingested_at"`
}

// CollectionSpec describes a collection to create.
type CollectionSpec struct {
	Name string `json:"name"`
	// Dim is the dense vector size; 0 makes a lexical-only collection.
	Dim int `json:"dim,omitempty"`
	// Model names the embedding model; an existing collection whose
	// vectors another model made refuses it (ErrModel).
	Model string `json:"model,omitempty"`
}

// CollectionInfo describes a stored collection.
type CollectionInfo struct {
	Name      string    `json:"name"`
	Dim       int       `json:"dim,omitempty"`
	Model     string    `json:"model,omitempty"`
	Documents int       `json:"documents"`
	Chunks    int       `json:"chunks"`
	Created   time.Time `json:"created,omitzero"`
}

// Mode says which representations a search uses.
type Mode string

// Search modes. ModeAuto is hybrid when the query has both text and a
// vector, else whichever it has.
const (
	ModeAuto    Mode = ""
	ModeLexical Mode = "lexical"
	ModeDense   Mode = "dense"
	ModeHybrid  Mode = "hybrid"
)

// Query is a search of one collection.
type Query struct {
	// Text is matched lexically (BM25).
	Text string
	// Vector is matched by dense similarity (cosine).
	Vector []float32
	K      int
	// Filter keeps chunks whose metadata equals every entry: keys
	// "source", "title", "doc_hash" or any key of Chunk.Meta.
	Filter map[string]string
	Mode   Mode
}

// EffectiveMode is q.Mode with ModeAuto resolved: hybrid when q has both
// text and a vector, else dense when it has a vector, else lexical.
func (q Query) EffectiveMode() Mode {
	if q.Mode != ModeAuto {
		return q.Mode
	}
	switch {
	case q.Text != "" && q.Vector != nil:
		return ModeHybrid
	case q.Vector != nil:
		return ModeDense
	default:
		return ModeLexical
	}
}

// Hit is a search result.
type Hit struct {
	Chunk
	// Score is BM25 for lexical search, cosine similarity for dense search
	// and the reciprocal-rank-fusion score for hybrid search.
	Score float64 `json:"score"`
}

// Store keeps chunks of documents in named collections and searches them.
// Implementations: embedded (bbolt, the default) and qdrant. Every
// implementation passes the suite in retrieval/storetest.
type Store interface {
	// EnsureCollection creates the collection if it does not exist. An
	// existing one must have the same Dim, else ErrDimension, and, when
	// both name one, the same Model, else ErrModel (CheckModel).
	EnsureCollection(ctx context.Context, spec CollectionSpec) (CollectionInfo, error)
	// Collection describes one collection (ErrNoCollection if missing).
	Collection(ctx context.Context, name string) (CollectionInfo, error)
	Collections(ctx context.Context) ([]CollectionInfo, error)
	DeleteCollection(ctx context.Context, name string) error
	// Documents returns what is stored about the given sources; missing
	// ones are absent from the map.
	Documents(ctx context.Context, collection string, sources []string) (map[string]DocInfo, error)
	// Put stores docs, each replacing every chunk its source had. When Put
	// returns nil, the documents are durable.
	Put(ctx context.Context, collection string, docs []Document) error
	// DeleteDocument removes a source's chunks; false if it had none.
	DeleteDocument(ctx context.Context, collection, source string) (bool, error)
	// Sources lists the sources of the collection's documents that start
	// with prefix ("" for all), sorted. Ingest uses it to find the
	// documents of a folder whose files are gone.
	Sources(ctx context.Context, collection, prefix string) ([]string, error)
	Search(ctx context.Context, collection string, q Query) ([]Hit, error)
	Close() error
}

// Embedder turns texts into dense vectors.
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
	// Dim is the vector size (0 until known).
	Dim() int
	// Model names the model.
	Model() string
}

// Errors stores wrap, for errors.Is.
var (
	ErrNoCollection = errors.New("no such collection")
	ErrDimension    = errors.New("vector dimension mismatch")
	ErrBadQuery     = errors.New("bad query")
	ErrUnavailable  = errors.New("document store unavailable")
	ErrLocked       = errors.New("document store is locked by another process")
	// ErrReadOnly: the store was opened for reading only (by request, or
	// because this user cannot write it), so writes are refused.
	ErrReadOnly = errors.New("document store is read-only")
	// ErrModel: the embedder's model is not the one the collection's
	// vectors were made with (see CheckModel).
	ErrModel = errors.New("embedding model mismatch")
	// ErrDamaged: the embedded store's file is damaged (cut short, its
	// header overwritten, a page unreadable) or is not a store at all.
	// The file is left as it is.
	ErrDamaged = errors.New("document store is damaged")
)
