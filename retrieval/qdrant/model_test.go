package qdrant

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	qc "github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ponder-rlm/ponder/retrieval"
)

// storedQdrant is a gRPC server holding one collection as Ponder made it:
// a dense vector of dim and the embedding model in its metadata. It
// answers what EnsureCollection asks about an existing collection.
type storedQdrant struct {
	qc.UnimplementedQdrantServer
	qc.UnimplementedCollectionsServer
	name, model string
	dim         uint64
}

func (f *storedQdrant) HealthCheck(context.Context, *qc.HealthCheckRequest) (*qc.HealthCheckReply, error) {
	return &qc.HealthCheckReply{Title: "fake qdrant", Version: "1.17.0"}, nil
}

func (f *storedQdrant) CollectionExists(_ context.Context, r *qc.CollectionExistsRequest) (*qc.CollectionExistsResponse, error) {
	return &qc.CollectionExistsResponse{Result: &qc.CollectionExists{Exists: r.GetCollectionName() == f.name}}, nil
}

func (f *storedQdrant) Get(_ context.Context, r *qc.GetCollectionInfoRequest) (*qc.GetCollectionInfoResponse, error) {
	if r.GetCollectionName() != f.name {
		return nil, status.Error(codes.NotFound, "no such collection")
	}
	return &qc.GetCollectionInfoResponse{Result: &qc.CollectionInfo{Config: &qc.CollectionConfig{
		Params: &qc.CollectionParams{VectorsConfig: qc.NewVectorsConfigMap(map[string]*qc.VectorParams{
			DenseVector: {Size: f.dim, Distance: qc.Distance_Cosine},
		})},
		Metadata: qc.NewValueMap(map[string]any{"ponder_model": f.model, "ponder_created": "2026-01-02T03:04:05Z"}),
	}}}, nil
}

// storedPoints counts its points (a separate type: the points and
// collections services both have Get, Delete, ...).
type storedPoints struct{ qc.UnimplementedPointsServer }

func (storedPoints) Count(context.Context, *qc.CountPoints) (*qc.CountResponse, error) {
	return &qc.CountResponse{Result: &qc.CountResult{Count: 3}}, nil
}

// An existing Qdrant collection whose metadata names another embedding
// model (of the same dimension) is refused as the embedded store refuses
// it: re-ingesting into it would mix the two models' vectors. (The whole
// conformance suite, this case included, runs against a real Qdrant with
// PONDER_QDRANT_URL.)
func TestEnsureCollectionRefusesAnotherModel(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &storedQdrant{name: "handbook", model: "sim-embed", dim: 8}
	srv := grpc.NewServer()
	qc.RegisterQdrantServer(srv, f)
	qc.RegisterCollectionsServer(srv, f)
	qc.RegisterPointsServer(srv, storedPoints{})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	st, err := Open(t.Context(), Options{URL: "http://" + ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, tc := range []struct {
		model string
		want  error
	}{
		{"sim-embed", nil},
		{"other-embed", retrieval.ErrModel},
		{"", nil}, // an embedder that names no model cannot be checked
	} {
		info, err := st.EnsureCollection(t.Context(), retrieval.CollectionSpec{Name: "handbook", Dim: 8, Model: tc.model})
		if !errors.Is(err, tc.want) {
			t.Fatalf("model %q: %v, want %v", tc.model, err, tc.want)
		}
		if info.Model != "sim-embed" {
			t.Errorf("model %q: collection info names model %q, want sim-embed", tc.model, info.Model)
		}
		if tc.want != nil && !strings.Contains(err.Error(), `collection "handbook" holds vectors from sim-embed, and vectors from other-embed cannot be compared with them: ingest with that model (PONDER_EMBED_MODEL=sim-embed`) {
			t.Errorf("error %q does not name the collection's model and what to do", err)
		}
	}
}
