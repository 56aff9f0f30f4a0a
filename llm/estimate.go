package llm

import (
	"encoding/json"
	"unicode/utf8"

	openai "github.com/sashabaranov/go-openai"
)

// Token estimates for answers that carry no usage: some proxies and
// gateways drop the usage object, and without counts token budgets
// (--budget-tokens, limits.tokens) never stop a search. The rule, also
// in docs/configuration.md:
//
//   - text: one token per 4 bytes of ASCII, rounded up, plus one per
//     other character. English prose and code take 3.5 to 4.5 bytes a
//     token in GPT, Llama and Qwen tokenizers; a CJK character takes 1 to
//     2 tokens and an accented letter less than one, so the estimate
//     errs high for Latin-script languages other than English and a
//     little low for CJK, never by an order of magnitude.
//   - prompt: the text of every message (its content, name and tool
//     calls) plus 4 tokens a message for the chat template's markers, the
//     tools' names, descriptions and schemas, and 3 tokens priming the
//     reply, as OpenAI's cookbook counts them.
//   - completion: the text of every choice the endpoint sent (content,
//     reasoning_content, tool calls).
//
// Counting bytes rather than running a tokenizer keeps the client free of
// per-model vocabularies it could not know for an arbitrary endpoint.
const (
	tokensPerMessage = 4
	tokensReplyPrime = 3
)

// textTokens estimates the tokens of s: one per 4 ASCII bytes, rounded
// up, and one per other character.
func textTokens(s string) int {
	ascii, other := 0, 0
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			ascii++
			i++
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		other++
		i += size
	}
	return (ascii+3)/4 + other
}

// promptTokens estimates the prompt tokens of r.
func promptTokens(r openai.ChatCompletionRequest) int {
	n := tokensReplyPrime
	for _, m := range r.Messages {
		n += tokensPerMessage + textTokens(m.Content) + textTokens(m.Name)
		for _, p := range m.MultiContent {
			n += textTokens(p.Text)
		}
		for _, tc := range m.ToolCalls {
			n += textTokens(tc.Function.Name) + textTokens(tc.Function.Arguments)
		}
	}
	for _, t := range r.Tools {
		if t.Function == nil {
			continue
		}
		n += textTokens(t.Function.Name) + textTokens(t.Function.Description)
		if b, err := json.Marshal(t.Function.Parameters); err == nil {
			n += textTokens(string(b))
		}
	}
	return n
}

// completionTokens estimates the completion tokens of every choice in
// choices: those the caller does not take were generated (and billed)
// too.
func completionTokens(choices []openai.ChatCompletionChoice) int {
	n := 0
	for _, ch := range choices {
		m := ch.Message
		n += textTokens(messageText(m)) + textTokens(m.ReasoningContent)
		for _, tc := range m.ToolCalls {
			n += textTokens(tc.Function.Name) + textTokens(tc.Function.Arguments)
		}
		if fc := m.FunctionCall; fc != nil {
			n += textTokens(fc.Name) + textTokens(fc.Arguments)
		}
	}
	return n
}

// fillUsage puts estimates in place of the token counts resp lacks: no
// usage object (go-openai leaves zeros), or a zero or negative count (a
// broken server or proxy; a negative one would give budget back). A chat
// prompt is never 0 tokens, and a completion is 0 only when it holds no
// text, whose estimate is 0 too. It reports whether it estimated, and
// logs the first time it does (per client: the estimate is a property of
// the endpoint, and a line per answer would flood the log).
func (c *Client) fillUsage(resp *openai.ChatCompletionResponse, r openai.ChatCompletionRequest) bool {
	estimated := false
	if resp.Usage.PromptTokens <= 0 {
		resp.Usage.PromptTokens = promptTokens(r)
		estimated = true
	}
	if resp.Usage.CompletionTokens <= 0 {
		resp.Usage.CompletionTokens = completionTokens(resp.Choices)
		estimated = estimated || resp.Usage.CompletionTokens > 0
	}
	if estimated && c.usageEstimated.CompareAndSwap(false, true) {
		c.log.Debug().Str("endpoint", c.ep.URL()).Str("model", r.Model).
			Int("prompt_tokens", resp.Usage.PromptTokens).Int("completion_tokens", resp.Usage.CompletionTokens).
			Msg("llm endpoint sent an answer without token counts (usage); token budgets and usage use estimates for such answers (4 ASCII bytes or 1 other character a token), logged once")
	}
	return estimated
}
