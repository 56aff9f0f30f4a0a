package retrieval

import "fmt"

// CheckModel refuses to use an embedder of model with a collection whose
// vectors another model made. Vectors of two models of the same dimension
// fit the same index, but their similarities mean nothing: a collection
// partly re-ingested with another model would be scored against both,
// and a query embedded by another model matches noise. It returns nil
// when the models agree, when the collection has no vectors, or when
// either model is unnamed (a collection made before models were
// recorded). search picks the advice: a search can fall back to lexical
// search, an ingest into another collection.
func CheckModel(info CollectionInfo, model string, search bool) error {
	if info.Dim == 0 || info.Model == "" || model == "" || model == info.Model {
		return nil
	}
	advice := fmt.Sprintf("ingest with that model (PONDER_EMBED_MODEL=%s, retrieval.embed_model), or into another collection (--collection NAME)", info.Model)
	if search {
		advice = fmt.Sprintf("search with that model (PONDER_EMBED_MODEL=%s, retrieval.embed_model), or lexically (search --mode lexical, or no embedder configured)", info.Model)
	}
	return fmt.Errorf("%w: collection %q holds vectors from %s, and vectors from %s cannot be compared with them: %s; to move the collection to %s, delete it (`ponder collections delete %s`) and ingest its documents again",
		ErrModel, info.Name, info.Model, model, advice, model, info.Name)
}
