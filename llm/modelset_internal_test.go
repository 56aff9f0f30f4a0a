package llm

import (
	"fmt"
	"testing"
)

// TestModelSetBounded checks that the set of models that ignore n stops
// growing at maxModels: model names come from a server's clients.
func TestModelSetBounded(t *testing.T) {
	var s modelSet
	for i := range maxModels {
		if !s.add(fmt.Sprint("m", i)) {
			t.Fatalf("model %d of %d not added", i, maxModels)
		}
	}
	if s.add("m0") {
		t.Error("a model already there was added again")
	}
	if s.add("one too many") || s.has("one too many") || len(s.m) != maxModels {
		t.Errorf("a model past the bound was kept: %d models", len(s.m))
	}
	if !s.has("m0") || !s.has(fmt.Sprint("m", maxModels-1)) {
		t.Error("models within the bound were lost")
	}
}
