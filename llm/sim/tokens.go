package sim

import (
	"math"
	"math/rand/v2"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Tokenizer: text splits into words at white space and each word into
// pieces of up to four characters; a piece carries the white space before
// it, as BPE tokens do. CountTokens("Natalia sold clips") = 2 + 1 + 2 = 5.
// Deterministic and roughly like real tokenizers (about 4 characters a
// token for English).

// tokens splits text into pieces that concatenate back to text.
func tokens(text string) []string {
	var out []string
	i := 0
	for i < len(text) {
		// White space run, attached to the next piece.
		j := i
		for j < len(text) {
			r, n := utf8.DecodeRuneInString(text[j:])
			if !unicode.IsSpace(r) {
				break
			}
			j += n
		}
		// Up to four non-space runes.
		k, runes := j, 0
		for k < len(text) && runes < 4 {
			r, n := utf8.DecodeRuneInString(text[k:])
			if unicode.IsSpace(r) {
				break
			}
			k += n
			runes++
		}
		if k == j { // trailing white space
			if len(out) > 0 {
				out[len(out)-1] += text[i:]
			} else {
				out = append(out, text[i:])
			}
			break
		}
		out = append(out, text[i:k])
		i = k
	}
	return out
}

// CountTokens counts text's tokens with the simulator's tokenizer.
func CountTokens(text string) int { return len(tokens(text)) }

// promptTokens counts a request's prompt: its contents plus 3 tokens per
// message and 3 for the reply's priming, as OpenAI counts chat prompts.
func promptTokens(msgs []chatMessage) int {
	n := 3
	for _, m := range msgs {
		n += 3 + CountTokens(string(m.Content))
	}
	return n
}

// finish cuts text at the first stop sequence and at maxTokens tokens
// (maxTokens <= 0: no limit) and says why it ended.
func finish(text string, stop []string, maxTokens int) (string, []string, string) {
	reason := "stop"
	for _, s := range stop {
		if s == "" {
			continue
		}
		if i := strings.Index(text, s); i >= 0 {
			text = text[:i]
		}
	}
	toks := tokens(text)
	if maxTokens > 0 && len(toks) > maxTokens {
		toks = toks[:maxTokens]
		text = strings.Join(toks, "")
		reason = "length"
	}
	return text, toks, reason
}

// tokenLogprobs draws a plausible log probability for each token: good
// samples (correct, on track) are more confident than bad ones. The sum is
// what a policy reads as the sample's logprob.
func tokenLogprobs(toks []string, good bool, top int, rng *rand.Rand) *logprobs {
	mean := 0.35
	if good {
		mean = 0.12
	}
	lp := &logprobs{Content: make([]tokenLogprob, len(toks))}
	for i, t := range toks {
		v := -mean * rng.ExpFloat64()
		v = math.Round(max(v, -20)*1e4) / 1e4
		tl := tokenLogprob{Token: t, Logprob: v, Bytes: []byte(t), TopLogprobs: []topLogprob{}}
		if top > 0 {
			tl.TopLogprobs = append(tl.TopLogprobs, topLogprob{Token: t, Logprob: v, Bytes: []byte(t)})
			for k := 1; k < top; k++ {
				alt := strings.Repeat("~", k) + strings.TrimSpace(t)
				tl.TopLogprobs = append(tl.TopLogprobs, topLogprob{Token: alt, Logprob: v - float64(k) - 1, Bytes: []byte(alt)})
			}
		}
		lp.Content[i] = tl
	}
	return lp
}
