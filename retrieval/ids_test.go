package retrieval

import (
	"errors"
	"strings"
	"testing"
)

// A bad collection name is an ErrBadQuery, but says what is wrong without
// "bad query:" (ponder ingest --collection a/b printed "--collection: bad
// query: collection name ...").
func TestValidateCollectionError(t *testing.T) {
	for _, ok := range []string{"docs", "A.b-c_1", strings.Repeat("a", 64)} {
		if err := ValidateCollection(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a/b", "../x", "-a", strings.Repeat("a", 65), "é"} {
		err := ValidateCollection(bad)
		if !errors.Is(err, ErrBadQuery) || !strings.HasPrefix(err.Error(), "collection name ") {
			t.Errorf("%q: %v, want an ErrBadQuery saying 'collection name ...'", bad, err)
		}
	}
}
