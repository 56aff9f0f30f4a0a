// Package retrieval grounds reasoning on private documents: the Store
// interface and its data types, the Retriever (a core.Retriever), the
// `retrieve` tool, reciprocal rank fusion and deterministic chunk ids.
//
// Sub-packages: ingest (files to chunks), lexical (tokenizer and BM25),
// embed (OpenAI-compatible embeddings), embedded (the default store, one
// bbolt file), qdrant (Qdrant over gRPC), hnsw (the dense index of the
// embedded store) and storetest (the conformance suite every Store passes).
//
//	st, _ := embedded.Open(filepath.Join(dataDir, "retrieval", "store.db"), nil)
//	defer st.Close()
//	sum, _ := ingest.New(st, &ingest.Options{Collection: "docs"}).Run(ctx, []string{"./docs"}, nil)
//	r := retrieval.NewRetriever(st, &retrieval.RetrieverOptions{Collection: "docs"})
//	chunks, _ := r.Retrieve(ctx, core.RetrieveRequest{Query: "admin port", K: 5})
//	eng := core.NewEngine(policy, reg, &core.EngineOptions{Retriever: r})
//	res, _ := eng.Solve(ctx, core.Task{Problem: "Which port does the admin console use?", Collection: "docs"})
//
// A task that names a collection is grounded by the engine before its
// strategy runs (core/ground.go): the passages retrieved for the problem go
// in front of it in every prompt, and on the root node of the trace.
package retrieval
