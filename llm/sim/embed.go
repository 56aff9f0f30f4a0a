package sim

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/fnv"
	"math"
	"strconv"
	"strings"
	"unicode"
)

// Embed returns the simulator's embedding of text: a hashed bag of words
// (each lower-cased word adds ±1 at a hashed position, each of its
// character trigrams ±0.25), L2-normalised. Texts that share words are
// close in cosine similarity; the same text always gets the same vector.
func Embed(text string, dim int) []float32 {
	v := make([]float64, dim)
	add := func(feature string, w float64) {
		h := fnv.New64a()
		h.Write([]byte(feature))
		x := h.Sum64()
		if x>>63 == 1 {
			w = -w
		}
		v[x%uint64(dim)] += w
	}
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	for _, w := range words {
		add("w:"+w, 1)
		g := []rune("#" + w + "#")
		for i := 0; i+3 <= len(g); i++ {
			add("t:"+string(g[i:i+3]), 0.25)
		}
	}
	norm := 0.0
	for _, x := range v {
		norm += x * x
	}
	out := make([]float32, dim)
	if norm == 0 {
		out[0] = 1
		return out
	}
	norm = math.Sqrt(norm)
	for i, x := range v {
		out[i] = float32(x / norm)
	}
	return out
}

// embeddingInputs reads "input": a string, an array of strings, or token
// arrays (each token id becomes a word).
func embeddingInputs(raw json.RawMessage) ([]string, error) {
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err == nil {
		if len(many) == 0 {
			return nil, errors.New("input is empty")
		}
		return many, nil
	}
	var ids []int
	if err := json.Unmarshal(raw, &ids); err == nil {
		return []string{idsText(ids)}, nil
	}
	var idss [][]int
	if err := json.Unmarshal(raw, &idss); err == nil && len(idss) > 0 {
		out := make([]string, len(idss))
		for i, ids := range idss {
			out[i] = idsText(ids)
		}
		return out, nil
	}
	return nil, errors.New("input must be a string, an array of strings or token arrays")
}

func idsText(ids []int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = "tok" + strconv.Itoa(id)
	}
	return strings.Join(s, " ")
}

// base64Floats encodes v as OpenAI's base64 format: little-endian float32s.
func base64Floats(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(b)
}
