package server

import (
	"encoding/json"
	"sort"
	"strings"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/tasks"
)

// The longest problem solve takes and the longest query search_documents
// takes, in characters (JSON Schema's maxLength counts code points); the
// prompts that lead to them cap their arguments the same (promptSolve,
// promptDocuments).
const (
	maxProblemChars = 200000
	maxQueryChars   = 10000
)

// The tools' JSON Schemas (draft 2020-12, the MCP default dialect). They
// are precise on purpose: a model reads them to build calls, and every
// call is validated against them before a handler runs (validate.go).

const schemaDialect = "https://json-schema.org/draft/2020-12/schema"

type obj = map[string]any

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// The largest budgets a request may ask for (solve's schema, and the same
// checks for the OpenAI API's ponder.budget).
const (
	maxBudgetLLMCalls = 100000
	maxBudgetDepth    = 1000
)

func budgetSchema() obj {
	return obj{
		"type":        "object",
		"description": "Limits on the search's test-time compute. Omitted fields use the server's defaults; when a limit is reached the search stops and returns the best answer found so far.",
		"properties": obj{
			"llm_calls":       obj{"type": "integer", "minimum": 1, "maximum": maxBudgetLLMCalls, "description": "Most LLM samples the search may generate (a request for n samples counts n)."},
			"tokens":          obj{"type": "integer", "minimum": 1, "description": "Most prompt plus completion tokens, summed over every call."},
			"tool_calls":      obj{"type": "integer", "minimum": 1, "description": "Most tool calls."},
			"timeout_seconds": obj{"type": "number", "exclusiveMinimum": 0, "maximum": 86400, "description": "Wall-time limit in seconds."},
			"nodes":           obj{"type": "integer", "minimum": 1, "description": "Most reasoning steps (nodes) the search may create."},
			"depth":           obj{"type": "integer", "minimum": 1, "maximum": maxBudgetDepth, "description": "Deepest reasoning path the search may grow."},
		},
		"additionalProperties": false,
	}
}

func (s *Server) strategyNames() []string {
	var out []string
	for _, sp := range s.engine.Registry().Strategies() {
		out = append(out, sp.Name)
	}
	return out
}

func (s *Server) toolNames() []string {
	tb := s.engine.Tools()
	if tb == nil {
		return nil
	}
	var out []string
	for _, sp := range tb.Specs() {
		out = append(out, sp.Name)
	}
	sort.Strings(out)
	return out
}

func (s *Server) strategyLines() string {
	var b strings.Builder
	for _, sp := range s.engine.Registry().Strategies() {
		b.WriteString("\n- ")
		b.WriteString(sp.Name)
		if sp.Summary != "" {
			b.WriteString(": ")
			b.WriteString(sp.Summary)
		}
	}
	return b.String()
}

func (s *Server) solveInputSchema() json.RawMessage {
	toolsProp := obj{
		"type":        "array",
		"uniqueItems": true,
		"description": "Tools the reasoning steps may call (none when omitted).",
		"items":       obj{"type": "string"},
	}
	if names := s.toolNames(); len(names) > 0 {
		toolsProp["items"] = obj{"type": "string", "enum": names}
		toolsProp["description"] = "Tools the reasoning steps may call (none when omitted): " + strings.Join(names, ", ") + "."
	} else {
		toolsProp["maxItems"] = 0
		toolsProp["description"] = "Tools the reasoning steps may call. This server has no tools configured, so leave it out."
	}
	strategy := obj{
		"type":        "string",
		"description": "How to search over reasoning steps (default: the server's, usually cot). Stronger strategies spend more LLM calls. Call list_strategies for parameters.",
	}
	if names := s.strategyNames(); len(names) > 0 {
		strategy["enum"] = names
	}
	packs := append([]string{"auto"}, tasks.Names()...)
	return mustJSON(obj{
		"$schema": schemaDialect,
		"type":    "object",
		"properties": obj{
			"problem": obj{"type": "string", "minLength": 1, "maxLength": maxProblemChars,
				"description": "The question or task, stated completely: every number, condition and constraint the answer depends on. One problem per call."},
			"strategy": strategy,
			"params": obj{"type": "object",
				"description":          `Strategy parameters by name, for example {"k": 16} for self-consistency. Unknown names are rejected; list_strategies gives each strategy's parameters, types, defaults and ranges.`,
				"additionalProperties": obj{"type": []string{"string", "number", "integer", "boolean", "object", "array"}}},
			"budget": obj{"$ref": "#/$defs/budget"},
			"tools":  toolsProp,
			"collection": obj{"type": "string", "minLength": 1, "maxLength": 128,
				"description": "Document collection to ground the reasoning on: relevant passages are retrieved and given to the search. Add documents with ingest_documents."},
			"session": obj{"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$",
				"description": "A session id of your choosing. Problems solved in the same session see the earlier problems and answers, so follow-up questions work. Sessions expire when idle; clear_session forgets one."},
			"pack": obj{"type": "string", "enum": packs,
				"description": "Kind of task, which sets the prompts and how answers are read and compared: auto (detect, default), generic, gsm8k (grade-school math word problems), math (competition math, LaTeX answers), game24 (make 24 from four numbers)."},
			"seed": obj{"type": "integer", "description": "Seed for sampling: the same seed asks the model the same questions."},
		},
		"required":             []string{"problem"},
		"additionalProperties": false,
		"$defs":                obj{"budget": budgetSchema()},
	})
}

func usageSchema() obj {
	return obj{
		"type": "object",
		"properties": obj{
			"llm_calls":         obj{"type": "integer", "description": "LLM samples generated"},
			"requests":          obj{"type": "integer", "description": "requests sent to the LLM"},
			"prompt_tokens":     obj{"type": "integer"},
			"completion_tokens": obj{"type": "integer"},
			"tool_calls":        obj{"type": "integer"},
			"nodes":             obj{"type": "integer"},
			"wall_ms":           obj{"type": "number"},
		},
		"required": []string{"llm_calls", "prompt_tokens", "completion_tokens"},
	}
}

func stepSchema() obj {
	return obj{
		"type": "object",
		"properties": obj{
			"node":    obj{"type": "integer"},
			"kind":    obj{"type": "string"},
			"content": obj{"type": "string"},
			"answer":  obj{"type": "string"},
			"score":   obj{"type": "number", "minimum": -1, "maximum": 1},
			"visits":  obj{"type": "integer"},
		},
		"required": []string{"node", "kind", "content"},
	}
}

func solveOutputSchema() json.RawMessage {
	return mustJSON(obj{
		"$schema": schemaDialect,
		"type":    "object",
		"properties": obj{
			"answer":         obj{"type": "string", "description": "the final answer (empty when none was found)"},
			"strategy":       obj{"type": "string"},
			"pack":           obj{"type": "string"},
			"stopped_reason": obj{"type": "string", "enum": []string{"done", "budget", "timeout", "cancelled", "error"}},
			"score":          obj{"type": "number", "description": "the answer's score in [-1, 1], when the strategy scores answers"},
			"best_path":      obj{"type": "array", "items": stepSchema(), "description": "the reasoning steps that lead to the answer"},
			"usage":          usageSchema(),
			"trace_id":       obj{"type": "string", "pattern": "^[0-9a-f]{16}$"},
			"trace_uri":      obj{"type": "string", "description": "MCP resource holding the full trace"},
			"session":        obj{"type": "string"},
			"policy":         obj{"type": "string", "enum": []string{"endpoint", "sampling"}, "description": "whose model reasoned: the configured endpoint, or this client's through sampling"},
			"error":          obj{"type": "string"},
			"warnings": obj{"type": "array", "items": obj{"type": "string"},
				"description": "what failed without stopping the search (evaluations that left nodes unscored, LLM requests that failed)"},
		},
		"required": []string{"answer", "strategy", "stopped_reason", "best_path", "usage", "trace_id"},
	})
}

func listStrategiesInputSchema() json.RawMessage {
	return mustJSON(obj{"$schema": schemaDialect, "type": "object", "properties": obj{}, "additionalProperties": false})
}

func listStrategiesOutputSchema() json.RawMessage {
	param := obj{
		"type": "object",
		"properties": obj{
			"name": obj{"type": "string"}, "type": obj{"type": "string"}, "default": obj{},
			"description": obj{"type": "string"}, "min": obj{"type": "number"}, "max": obj{"type": "number"},
			"enum": obj{"type": "array", "items": obj{"type": "string"}},
		},
		"required": []string{"name", "type", "description"},
	}
	return mustJSON(obj{
		"$schema": schemaDialect,
		"type":    "object",
		"properties": obj{
			"default_strategy": obj{"type": "string"},
			"strategies": obj{"type": "array", "items": obj{
				"type": "object",
				"properties": obj{
					"name": obj{"type": "string"}, "summary": obj{"type": "string"}, "source": obj{"type": "string"},
					"params": obj{"type": "array", "items": param},
				},
				"required": []string{"name", "summary", "params"},
			}},
		},
		"required": []string{"strategies"},
	})
}

func searchInputSchema() json.RawMessage {
	return mustJSON(obj{
		"$schema": schemaDialect,
		"type":    "object",
		"properties": obj{
			"query":      obj{"type": "string", "minLength": 1, "maxLength": maxQueryChars, "description": "What to look for, in words (a question or key phrases)."},
			"collection": obj{"type": "string", "minLength": 1, "maxLength": 128, "description": "Collection to search (default: the server's)."},
			"k":          obj{"type": "integer", "minimum": 1, "maximum": 50, "description": "How many passages to return (default 5)."},
		},
		"required":             []string{"query"},
		"additionalProperties": false,
	})
}

func searchOutputSchema() json.RawMessage {
	return mustJSON(obj{
		"$schema": schemaDialect,
		"type":    "object",
		"properties": obj{
			"collection": obj{"type": "string"},
			"passages": obj{"type": "array", "items": obj{
				"type": "object",
				"properties": obj{
					"n": obj{"type": "integer"}, "id": obj{"type": "string"}, "text": obj{"type": "string"},
					"source": obj{"type": "string"}, "title": obj{"type": "string"}, "score": obj{"type": "number"},
				},
				"required": []string{"n", "text", "source", "score"},
			}},
		},
		"required": []string{"passages"},
	})
}

func ingestInputSchema() json.RawMessage {
	return mustJSON(obj{
		"$schema": schemaDialect,
		"type":    "object",
		"properties": obj{
			"paths": obj{"type": "array", "minItems": 1, "maxItems": 1000, "items": obj{"type": "string", "minLength": 1},
				"description": "Files, folders (read recursively) or glob patterns on the Ponder server's machine: .md, .txt, .html, .pdf and source files. Only for local clients (stdio, or a server bound to loopback)."},
			"texts": obj{"type": "array", "minItems": 1, "maxItems": 1000, "items": obj{
				"type": "object",
				"properties": obj{
					"name": obj{"type": "string", "minLength": 1, "maxLength": 256, "description": "Document name, used as its source; its extension (.md, .txt, .html) picks the reader. Default text-<12 hex digits of its SHA-256>.txt, so that another text never replaces it and the same text again is unchanged."},
					"text": obj{"type": "string", "minLength": 1, "description": "The document's content."},
				},
				"required":             []string{"text"},
				"additionalProperties": false,
			}, "description": "Documents given inline."},
			"collection": obj{"type": "string", "minLength": 1, "maxLength": 128, "description": "Collection to add to (default: the server's). Created when missing."},
		},
		"anyOf":                []obj{{"required": []string{"paths"}}, {"required": []string{"texts"}}},
		"additionalProperties": false,
	})
}

func ingestOutputSchema() json.RawMessage {
	return mustJSON(obj{
		"$schema": schemaDialect,
		"type":    "object",
		"properties": obj{
			"collection": obj{"type": "string"},
			"added":      obj{"type": "integer"}, "updated": obj{"type": "integer"}, "unchanged": obj{"type": "integer"},
			"skipped": obj{"type": "integer"}, "chunks": obj{"type": "integer"},
			"removed": obj{"type": "integer", "description": "documents whose files are gone from a folder or glob ingested again, taken out of the collection"},
			"documents": obj{"type": "array", "items": obj{
				"type": "object",
				"properties": obj{
					"source": obj{"type": "string"}, "status": obj{"type": "string", "enum": []string{"added", "updated", "unchanged", "skipped", "failed", "removed"}},
					"reason": obj{"type": "string"}, "chunks": obj{"type": "integer"},
					"note": obj{"type": "string", "description": "what was assumed in reading the file, such as its encoding"},
				},
				"required": []string{"source", "status"},
			}},
		},
		"required": []string{"collection", "documents"},
	})
}

func getTraceInputSchema() json.RawMessage {
	return mustJSON(obj{
		"$schema": schemaDialect,
		"type":    "object",
		"properties": obj{
			"trace_id": obj{"type": "string", "pattern": "^[0-9a-f]{16}$", "description": "The trace_id a solve result gave."},
			"detail": obj{"type": "string", "enum": []string{"summary", "path", "full"},
				"description": "summary: status, answer and usage; path (default): plus the best reasoning path; full: the whole trace document (every node and event, can be large)."},
		},
		"required":             []string{"trace_id"},
		"additionalProperties": false,
	})
}

func getTraceOutputSchema() json.RawMessage {
	return mustJSON(obj{
		"$schema": schemaDialect,
		"type":    "object",
		"properties": obj{
			"trace_id": obj{"type": "string"}, "status": obj{"type": "string"}, "strategy": obj{"type": "string"},
			"pack": obj{"type": "string"}, "problem": obj{"type": "string"}, "answer": obj{"type": "string"},
			"error": obj{"type": "string"}, "usage": usageSchema(),
			"nodes":     obj{"type": "integer", "description": "The nodes the search added, nested searches' included, not the roots (usage.nodes)."},
			"best_path": obj{"type": "array", "items": stepSchema()},
			"trace":     obj{"type": "object", "description": "the full trace document (detail full)"},
			"truncated": obj{"type": "boolean", "description": "the full trace was too large and was left out"},
		},
		"required": []string{"trace_id", "status", "strategy", "answer"},
	})
}

func clearSessionInputSchema() json.RawMessage {
	return mustJSON(obj{
		"$schema": schemaDialect,
		"type":    "object",
		"properties": obj{
			"session": obj{"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$", "description": "The session id to forget."},
		},
		"required":             []string{"session"},
		"additionalProperties": false,
	})
}

func clearSessionOutputSchema() json.RawMessage {
	return mustJSON(obj{
		"$schema":    schemaDialect,
		"type":       "object",
		"properties": obj{"session": obj{"type": "string"}, "cleared": obj{"type": "boolean"}, "turns": obj{"type": "integer"}},
		"required":   []string{"session", "cleared"},
	})
}

// stepOf converts a node of a best path.
func stepOf(n core.Node) solveStep {
	st := solveStep{Node: n.ID, Kind: n.Kind, Content: n.Content, Answer: n.Answer, Visits: n.Visits}
	if v, ok := n.Score(); ok {
		st.Score = &v
	}
	return st
}
