package embed

import (
	"fmt"
	"strings"
)

// endpointName is how messages name the embedding endpoint. Not its URL:
// these messages reach the clients of `ponder serve` (MCP tool results
// of ingest_documents and search_documents, a file's reason) and traces
// (a grounded search that failed), and the endpoint may be internal
// infrastructure they should not learn of. The URL goes to the debug log
// (the "endpoint" field), `ponder serve` logs it at start, and the
// command line adds it to its own message (Endpoint).
const endpointName = "the embedding endpoint"

// settingHint names the settings that say where the endpoint is.
const settingHint = "retrieval.embed_url (PONDER_EMBED_URL; default the LLM's PONDER_LLM_BASE_URL)"

// The settings of Options.Timeout and Options.MaxRetries.
const (
	timeoutSetting = "retrieval.embed_timeout (PONDER_EMBED_TIMEOUT)"
	retriesSetting = "retrieval.embed_max_retries (PONDER_EMBED_MAX_RETRIES)"
)

// embedError is a failure of the endpoint: one line saying what failed
// and why, and what to change. It wraps ErrEmbedder and its cause, whose
// text (which names addresses) it does not show.
type embedError struct {
	what     string // what failed, naming the endpoint endpointName
	why      string // the cause, in parentheses with the tries
	attempts int    // tries made, shown when more than one
	detail   string // what the endpoint said (": ..."), after them
	hint     string // what to change
	cause    error
}

// Error reads "WHAT (WHY, N attempts)DETAIL: HINT".
func (e *embedError) Error() string {
	var paren []string
	if e.why != "" {
		paren = append(paren, e.why)
	}
	if e.attempts > 1 {
		paren = append(paren, fmt.Sprintf("%d attempts", e.attempts))
	}
	s := e.what
	if len(paren) > 0 {
		s += " (" + strings.Join(paren, ", ") + ")"
	}
	s += e.detail
	if e.hint != "" {
		s += ": " + e.hint
	}
	return s
}

func (e *embedError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrEmbedder}
	}
	return []error{ErrEmbedder, e.cause}
}
