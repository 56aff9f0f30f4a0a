package retrieval

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Metadata keys ingest records on chunks (besides MetaName); filters
// match them.
const (
	// MetaType is the reader a document was read with: md, txt, html,
	// pdf, or a source language (go, py, ...).
	MetaType = "type"
	// MetaPage is a PDF chunk's page, from 1.
	MetaPage = "page"
	// MetaEncoding is the encoding of a text file not read as UTF-8.
	MetaEncoding = "encoding"
)

// FilterKeys are the keys a filter can name in any collection: the
// chunk fields MatchFilter reads and the metadata ingest records. A
// collection's chunks may carry further Meta keys (documents a program
// Put); those work too (see CheckFilter).
var FilterKeys = []string{"source", MetaName, "title", MetaType, MetaPage, MetaEncoding, "doc_hash"}

// MetaKeyer is a Store that can say which Meta keys a collection's
// chunks carry, so that a filter naming a key none carries is refused
// rather than silently matching nothing.
type MetaKeyer interface {
	// MetaKeys returns the distinct Meta keys of the collection's chunks,
	// sorted. It reads every chunk: it is asked only when a filtered
	// search found nothing.
	MetaKeys(ctx context.Context, collection string) ([]string, error)
}

// CheckFilter returns an ErrBadQuery naming the keys of filter that no
// chunk of the collection can match: not in FilterKeys and carried by
// none of its chunks (a typo, or "ordinal", which is shown with a chunk
// but not filtered on). --filter nokey=1 matched nothing with no word
// of why. It is nil when every key is known, or the store cannot say
// (not a MetaKeyer, or it failed: the search's empty result stands).
func CheckFilter(ctx context.Context, st Store, collection string, filter map[string]string) error {
	var unknown []string
	for k := range filter {
		if !slices.Contains(FilterKeys, k) {
			unknown = append(unknown, k)
		}
	}
	mk, ok := st.(MetaKeyer)
	if len(unknown) == 0 || !ok {
		return nil
	}
	have, err := mk.MetaKeys(ctx, collection)
	if err != nil {
		return nil
	}
	unknown = slices.DeleteFunc(unknown, func(k string) bool { return slices.Contains(have, k) })
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	keys := slices.Clone(FilterKeys)
	for _, k := range have {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	what := fmt.Sprintf("filter key %q is", unknown[0])
	if len(unknown) > 1 {
		q := make([]string, len(unknown))
		for i, k := range unknown {
			q[i] = fmt.Sprintf("%q", k)
		}
		what = "filter keys " + strings.Join(q, ", ") + " are"
	}
	return fmt.Errorf("%w: %s not recorded on any chunk of collection %q: filter on %s", ErrBadQuery, what, collection, strings.Join(keys, ", "))
}
