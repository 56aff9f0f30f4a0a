// Package gen makes synthetic corpora for retrieval benchmarks: text whose
// words follow a Zipf distribution over a fixed vocabulary, like natural
// language, so posting lists have realistic lengths.
package gen

import (
	"math/rand"
	"strconv"
	"strings"
)

// Corpus draws words from a vocabulary of Vocab words.
type Corpus struct {
	rng   *rand.Rand
	zipf  *rand.Zipf
	words []string
}

// New returns a corpus generator with a fixed seed.
func New(seed int64, vocab int) *Corpus {
	r := rand.New(rand.NewSource(seed))
	c := &Corpus{rng: r, zipf: rand.NewZipf(r, 1.1, 2, uint64(vocab-1))}
	syll := []string{"ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "pe", "dan", "or", "el", "quo", "bri", "zen"}
	for i := range vocab {
		var b strings.Builder
		n := i
		for {
			b.WriteString(syll[n%len(syll)])
			n /= len(syll)
			if n == 0 {
				break
			}
		}
		b.WriteString(strconv.Itoa(i % 7))
		c.words = append(c.words, b.String())
	}
	return c
}

// Word returns one word.
func (c *Corpus) Word() string { return c.words[c.zipf.Uint64()] }

// Text returns about n bytes of sentences.
func (c *Corpus) Text(n int) string {
	var b strings.Builder
	for b.Len() < n {
		words := 8 + c.rng.Intn(12)
		for i := range words {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(c.Word())
		}
		b.WriteString(". ")
		if c.rng.Intn(6) == 0 {
			b.WriteString("\n\n")
		}
	}
	return b.String()
}

// Query returns a query of k words drawn from the middle of the
// distribution (neither stopword-like nor unseen).
func (c *Corpus) Query(k int) string {
	var q []string
	for len(q) < k {
		w := c.zipf.Uint64()
		if w < 20 {
			continue
		}
		q = append(q, c.words[w])
	}
	return strings.Join(q, " ")
}
