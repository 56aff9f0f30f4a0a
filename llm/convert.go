package llm

import (
	"bytes"
	"encoding/json"
	"strings"

	openai "github.com/sashabaranov/go-openai"

	"github.com/ponder-rlm/ponder/core"
)

// emptySchema stands in for a tool without a schema: servers want an object.
var emptySchema = json.RawMessage(`{"type":"object","properties":{}}`)

// chatRequest maps req to a chat completion request with n left at 1.
func (c *Client) chatRequest(req core.CompletionRequest) openai.ChatCompletionRequest {
	r := openai.ChatCompletionRequest{
		Model:    req.Model,
		Messages: make([]openai.ChatCompletionMessage, 0, len(req.Messages)),
		Stop:     req.Stop,
		LogProbs: req.Logprobs,
	}
	if r.Model == "" {
		r.Model = c.cfg.Model
	}
	temp := c.cfg.Temperature
	if req.Temperature != nil {
		temp = *req.Temperature
	}
	r.Temperature = float32(temp)
	maxTokens := c.cfg.MaxTokens
	if req.MaxTokens > 0 {
		maxTokens = req.MaxTokens
	}
	if reasoningModel(r.Model) {
		// go-openai refuses max_tokens, logprobs and a temperature other
		// than 1 for these models before sending (and n > 1: Complete sends
		// sequential requests). Temperature stays 0 so that it is omitted
		// (chat does not patch it in), which these models read as their
		// only one; the choices come without logprobs.
		r.MaxCompletionTokens = maxTokens
		r.Temperature = 0
		r.LogProbs = false
	} else {
		r.MaxTokens = maxTokens
	}
	if req.Seed != nil {
		s := int(*req.Seed)
		r.Seed = &s
	}
	for _, m := range req.Messages {
		om := openai.ChatCompletionMessage{Role: m.Role, Content: m.Content, ToolCallID: m.ToolCallID}
		for _, tc := range m.ToolCalls {
			args := string(tc.Arguments)
			if args == "" {
				args = "{}"
			}
			om.ToolCalls = append(om.ToolCalls, openai.ToolCall{
				ID:       tc.ID,
				Type:     openai.ToolTypeFunction,
				Function: openai.FunctionCall{Name: tc.Name, Arguments: args},
			})
		}
		r.Messages = append(r.Messages, om)
	}
	for _, t := range req.Tools {
		schema := t.Schema
		if len(schema) == 0 {
			schema = emptySchema
		}
		r.Tools = append(r.Tools, openai.Tool{
			Type: openai.ToolTypeFunction,
			Function: &openai.FunctionDefinition{
				Name:        t.Name,
				Description: t.Description,
				Parameters:  schema,
			},
		})
	}
	return r
}

// reasoningModel reports whether go-openai treats model as an OpenAI
// reasoning model (o1, o3, o4, gpt-5, gpt-6), which must not get max_tokens,
// logprobs, n > 1 or a temperature other than 1.
func reasoningModel(model string) bool {
	for _, p := range []string{"o1", "o3", "o4", "gpt-5", "gpt-6"} {
		if strings.HasPrefix(model, p) {
			return true
		}
	}
	return false
}

// reasoningKey is the "reasoning" key as it appears in an answer's JSON.
// Text that holds the word in quotes is escaped (\"reasoning\"), and
// "reasoning_content" does not match, so an answer without the key is
// not parsed twice.
var reasoningKey = []byte(`"reasoning"`)

// addReasoning sets each choice's ReasoningContent, when the endpoint
// sent none, from its message's "reasoning" field in raw, the answer's
// body. vLLM renamed reasoning_content (DeepSeek's name, which go-openai
// reads) to reasoning, as OpenRouter, Ollama and OpenAI's guidance for
// gpt-oss name it, and has since dropped the old name
// (vllm-project/vllm#27752, #33402); go-openai drops the field, so a
// reasoning model's cut-off thinking looked like an empty answer and a
// reasoning-only answer was lost. A field that is not a string is
// ignored.
func addReasoning(resp *openai.ChatCompletionResponse, raw []byte) {
	if !bytes.Contains(raw, reasoningKey) {
		return
	}
	var v struct {
		Choices []struct {
			Message struct {
				Reasoning json.RawMessage `json:"reasoning"`
			} `json:"message"`
		} `json:"choices"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return
	}
	for i, ch := range v.Choices {
		if i == len(resp.Choices) {
			break
		}
		var s string
		if resp.Choices[i].Message.ReasoningContent == "" && json.Unmarshal(ch.Message.Reasoning, &s) == nil {
			resp.Choices[i].Message.ReasoningContent = s
		}
	}
}

// cutWhileReasoning reports whether ch is a reasoning model's answer cut
// off at max_tokens before it wrote any: finish_reason length, no content
// or tool calls, only reasoning_content or reasoning (vLLM's, SGLang's
// and DeepSeek's reasoning parsers; addReasoning reads the second). Its reasoning is unfinished thinking, not a step or
// an answer: taken as the text, its tentative answers ("so maybe 42...
// wait") would be extracted as final ones and scored.
func cutWhileReasoning(ch openai.ChatCompletionChoice) bool {
	m := ch.Message
	return ch.FinishReason == openai.FinishReasonLength && strings.TrimSpace(messageText(m)) == "" &&
		strings.TrimSpace(m.ReasoningContent) != "" && len(m.ToolCalls) == 0 && m.FunctionCall == nil
}

// choiceFrom maps one response choice. Logprob is the sum of the token
// logprobs when they were asked for and the server sent them. An answer
// that ended (not cut off) with reasoning_content and no content gives the
// reasoning: several reasoning parsers (vLLM's deepseek_r1 in some
// versions, parsers in thinking mode) put the whole output there when it
// has no end-of-thinking marker, as when a model skipped </think> or a
// stop sequence ended the step before it.
func choiceFrom(ch openai.ChatCompletionChoice, logprobs bool) core.Choice {
	out := core.Choice{Text: messageText(ch.Message), FinishReason: string(ch.FinishReason)}
	if strings.TrimSpace(out.Text) == "" && len(ch.Message.ToolCalls) == 0 && ch.Message.FunctionCall == nil &&
		strings.TrimSpace(ch.Message.ReasoningContent) != "" {
		out.Text = ch.Message.ReasoningContent
	}
	if logprobs && ch.LogProbs != nil && len(ch.LogProbs.Content) > 0 {
		var sum float64
		for _, lp := range ch.LogProbs.Content {
			sum += lp.LogProb
		}
		out.Logprob = &sum
	}
	for _, tc := range ch.Message.ToolCalls {
		out.ToolCalls = append(out.ToolCalls, core.ToolCall{
			ID:        tc.ID,
			Name:      tc.Function.Name,
			Arguments: rawArgs(tc.Function.Arguments),
		})
	}
	if fc := ch.Message.FunctionCall; fc != nil && len(out.ToolCalls) == 0 {
		out.ToolCalls = append(out.ToolCalls, core.ToolCall{Name: fc.Name, Arguments: rawArgs(fc.Arguments)})
	}
	return out
}

// messageText is the text of an answer's message: its content, or the
// text parts of a content given as a list of parts (Mistral's reasoning
// models answer [{"type":"thinking",...},{"type":"text","text":"..."}]),
// which go-openai keeps apart and would leave the choice empty.
func messageText(m openai.ChatCompletionMessage) string {
	if m.Content != "" || len(m.MultiContent) == 0 {
		return m.Content
	}
	var b strings.Builder
	for _, p := range m.MultiContent {
		if p.Type == openai.ChatMessagePartTypeText {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

// rawArgs keeps the arguments a model wrote as JSON. Empty arguments become
// {}; text that is not JSON becomes a JSON string, so that the call can be
// marshalled and the tool can report the bad input.
func rawArgs(s string) json.RawMessage {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return json.RawMessage("{}")
	case json.Valid([]byte(s)):
		return json.RawMessage(s)
	default:
		b, _ := json.Marshal(s)
		return b
	}
}
