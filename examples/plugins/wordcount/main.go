// Command wordcount is an example Ponder tool plugin: it counts the words,
// lines and characters of a text. Build and install it with
//
//	go build -o bin/plugins/wordcount ./examples/plugins/wordcount
//	ponder plugins install bin/plugins/wordcount
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/ponder-rlm/ponder/sdk"
)

// WordCount is the tool.
type WordCount struct{}

// Spec implements sdk.Tool.
func (WordCount) Spec() sdk.ToolSpec {
	return sdk.ToolSpec{
		Name:        "wordcount",
		Description: "Count the words, lines and characters of a text.",
		Schema: json.RawMessage(`{"type":"object","properties":{"text":{"type":"string","description":"the text to count"}},` +
			`"required":["text"],"additionalProperties":false}`),
	}
}

// Counts is the tool's structured result.
type Counts struct {
	Words int `json:"words"`
	Lines int `json:"lines"`
	Chars int `json:"chars"`
}

// Call implements sdk.Tool. Bad arguments are a failed call (IsError), not
// an error: the model reads the message and can try again.
func (WordCount) Call(_ context.Context, args json.RawMessage) (sdk.ToolResult, error) {
	var in struct {
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(args, &in); err != nil || in.Text == nil {
		return sdk.ToolResult{Text: `wordcount needs {"text": "..."}`, IsError: true}, nil
	}
	c := Counts{Words: len(strings.Fields(*in.Text)), Chars: utf8.RuneCountInString(*in.Text)}
	if *in.Text != "" {
		c.Lines = strings.Count(*in.Text, "\n") + 1
	}
	return sdk.ToolResult{Text: fmt.Sprintf("%d words, %d lines, %d characters", c.Words, c.Lines, c.Chars), Structured: c}, nil
}

func main() {
	sdk.Serve(sdk.Plugin{Version: "1.0.0", Tool: WordCount{}})
}
