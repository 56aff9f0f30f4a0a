package retrieval

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strconv"
)

// ChunkID is the deterministic id of a chunk: a UUID (version 8, RFC 9562)
// derived from the source, the document's content hash and the chunk's
// ordinal. Re-ingesting the same bytes yields the same ids, so an upsert is
// idempotent; a changed document gets new ids.
func ChunkID(source, docHash string, ordinal int) string {
	return hashUUID("chunk\x00" + source + "\x00" + docHash + "\x00" + strconv.Itoa(ordinal))
}

// DocID is the deterministic UUID of a document record (used by stores that
// keep one point per document, such as qdrant).
func DocID(source string) string { return hashUUID("doc\x00" + source) }

func hashUUID(s string) string {
	h := sha256.Sum256([]byte(s))
	b := h[:16]
	b[6] = (b[6] & 0x0f) | 0x80 // version 8
	b[8] = (b[8] & 0x3f) | 0x80 // RFC 9562 variant
	x := hex.EncodeToString(b)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// HashBytes returns the hex sha256 of b.
func HashBytes(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

var collectionName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ValidateCollection checks a collection name: 1 to 64 letters, digits,
// '_', '-' or '.', starting with a letter or digit.
// Its error is an ErrBadQuery that does not say "bad query": it reaches
// ingest, deletes and listings too, where no query was made.
func ValidateCollection(name string) error {
	if !collectionName.MatchString(name) {
		return badName(fmt.Sprintf("collection name %q: use 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit", name))
	}
	return nil
}

// badName is an ErrBadQuery whose text is its own.
type badName string

func (e badName) Error() string { return string(e) }
func (e badName) Unwrap() error { return ErrBadQuery }

// MatchFilter reports whether c has every key=value of f. Keys "source",
// "title" and "doc_hash" match those fields; others match c.Meta.
func MatchFilter(c *Chunk, f map[string]string) bool {
	for k, v := range f {
		var got string
		switch k {
		case "source":
			got = c.Source
		case "title":
			got = c.Title
		case "doc_hash":
			got = c.DocHash
		default:
			got = c.Meta[k]
		}
		if got != v {
			return false
		}
	}
	return true
}

// RRFK is the rank constant of reciprocal rank fusion (Cormack et al. 2009).
const RRFK = 60

// FuseRRF merges ranked lists by reciprocal rank fusion: a hit's score is
// the sum over lists of 1/(RRFK + rank), rank counted from 1. Hits are
// identified by ID; the first list's copy of a hit is kept. Ties are broken
// by ID so results are deterministic.
func FuseRRF(k int, lists ...[]Hit) []Hit {
	score := map[string]float64{}
	first := map[string]Hit{}
	for _, l := range lists {
		for i, h := range l {
			score[h.ID] += 1 / float64(RRFK+i+1)
			if _, ok := first[h.ID]; !ok {
				first[h.ID] = h
			}
		}
	}
	out := make([]Hit, 0, len(first))
	for id, h := range first {
		h.Score = score[id]
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Score != out[j].Score {
			return out[i].Score > out[j].Score
		}
		return out[i].ID < out[j].ID
	})
	if k > 0 && len(out) > k {
		out = out[:k]
	}
	return out
}
