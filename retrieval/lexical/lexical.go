// Package lexical is Ponder's model-free text representation: a tokenizer
// and BM25 term weights, so retrieval works with no embedding endpoint.
//
// The embedded store scores BM25 exactly from its inverted index; stores
// that take sparse vectors (qdrant) get DocSparse vectors holding the BM25
// term-frequency part and apply the IDF part themselves (Qdrant's IDF
// modifier):
//
//	idx, val := lexical.DocSparse(chunkText)   // stored with the chunk
//	qidx, qval := lexical.QuerySparse(query)   // one weight per query term
package lexical

import (
	"hash/fnv"
	"math"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// BM25 parameters (Robertson and Zaragoza's usual values).
const (
	K1 = 1.2
	B  = 0.75
	// AvgLen is the document length assumed by DocSparse, where the true
	// average is not known when a chunk is encoded (Qdrant).
	AvgLen = 180.0
)

var stop = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`a an and are as at be but by for from has have he her his i if in into is it its
		of on or our she so than that the their them then there these they this those to was we were what when where which
		who whom why will with you your do does did not no can could should would may might been being am me my us`) {
		stop[w] = true
	}
}

// IsStopword reports whether w (lower case) is too common to index.
func IsStopword(w string) bool { return stop[w] }

// Tokenize splits text into lower-case index terms: runs of letters and
// digits, stopwords dropped, plural -s stripped. Documents and queries go
// through the same function, so they meet on the same terms.
func Tokenize(text string) []string {
	out := make([]string, 0, len(text)/6)
	return AppendTokens(out, text)
}

// AppendTokens appends the terms of text to dst.
func AppendTokens(dst []string, text string) []string {
	var buf []byte
	flush := func() {
		if len(buf) == 0 {
			return
		}
		w := stem(string(buf))
		buf = buf[:0]
		if len(w) > 64 || stop[w] {
			return
		}
		dst = append(dst, w)
	}
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
				buf = append(buf, c)
			case c >= 'A' && c <= 'Z':
				buf = append(buf, c+('a'-'A'))
			default:
				flush()
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(text[i:])
		i += n
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			buf = utf8.AppendRune(buf, unicode.ToLower(r))
		} else {
			flush()
		}
	}
	flush()
	return dst
}

func stem(w string) string {
	n := len(w)
	switch {
	case n > 4 && strings.HasSuffix(w, "ies"):
		return w[:n-3] + "y"
	case n > 3 && w[n-1] == 's' && w[n-2] != 's' && w[n-2] != 'u' && w[n-2] != 'i':
		return w[:n-1]
	}
	return w
}

// TermFreqs counts the terms of text and returns them with the total
// number of terms (the document length).
func TermFreqs(text string) (map[string]int, int) {
	toks := Tokenize(text)
	tf := make(map[string]int, len(toks)/2+1)
	for _, t := range toks {
		tf[t]++
	}
	return tf, len(toks)
}

// IDF is BM25's inverse document frequency for a term found in df of n
// documents (the +1 form, never negative).
func IDF(n, df int) float64 {
	return math.Log(1 + (float64(n)-float64(df)+0.5)/(float64(df)+0.5))
}

// TF is BM25's saturated term frequency for a term occurring tf times in
// a document of length dl when the average length is avg.
func TF(tf, dl int, avg float64) float64 {
	if avg <= 0 {
		avg = 1
	}
	f := float64(tf)
	return f * (K1 + 1) / (f + K1*(1-B+B*float64(dl)/avg))
}

// TermID hashes a term to a sparse-vector index.
func TermID(term string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(term))
	return h.Sum32()
}

// DocSparse is a document's sparse vector: indices are TermIDs (sorted),
// values the BM25 TF part with length normalised against AvgLen. A store
// applying IDF at query time (Qdrant's "idf" modifier) then scores BM25.
func DocSparse(text string) ([]uint32, []float32) {
	tf, dl := TermFreqs(text)
	idx := make([]uint32, 0, len(tf))
	val := map[uint32]float32{}
	for t, n := range tf {
		id := TermID(t)
		if _, dup := val[id]; !dup {
			idx = append(idx, id)
		}
		val[id] += float32(TF(n, dl, AvgLen))
	}
	sort.Slice(idx, func(i, j int) bool { return idx[i] < idx[j] })
	vals := make([]float32, len(idx))
	for i, id := range idx {
		vals[i] = val[id]
	}
	return idx, vals
}

// QuerySparse is a query's sparse vector: each distinct term once, weight 1.
func QuerySparse(text string) ([]uint32, []float32) {
	seen := map[uint32]bool{}
	var idx []uint32
	for _, t := range Tokenize(text) {
		id := TermID(t)
		if !seen[id] {
			seen[id] = true
			idx = append(idx, id)
		}
	}
	sort.Slice(idx, func(i, j int) bool { return idx[i] < idx[j] })
	vals := make([]float32, len(idx))
	for i := range vals {
		vals[i] = 1
	}
	return idx, vals
}
