package server

import (
	"context"
	"regexp"
	"strings"
)

// The document store's own errors for a damaged, read-only or locked store
// (retrieval.ErrDamaged, ErrReadOnly, ErrLocked, as retrieval/embedded
// words them) name the store's file, an absolute path in the server's data
// directory, and end with the operator's advice: restore it from a backup
// or move it aside, give write access to the path, set another --data-dir.
// A client not on the server's machine can do none of that, and the path
// tells it how the server's disk is laid out: it is told what is wrong with
// the server's store and to contact the operator, whose log keeps the
// error whole. They reach clients in tool errors (search_documents,
// ingest_documents), in a solve's error and warnings, and in traces (a
// retrieve event's error), so a sourceMask rewrites them too.

// storeFault matches such an error, from its sentinel's words to the end
// of the advice it ends with, or else to the end of the line (the store's
// error is the innermost, so the last, of the chain that wraps it);
// storeFaultJSON the same inside a JSON string. What a remote client is
// told instead (publicStoreFault) does not match: a text rewritten once is
// left as it is.
var (
	storeFault     = storeFaultRegexp(`[^\n]`)
	storeFaultJSON = storeFaultRegexp(`(?:[^"\\\n]|\\.)`)
)

// storeFaultRegexp is storeFault with char standing for one character of
// the error.
func storeFaultRegexp(char string) *regexp.Regexp {
	upTo := func(end string) string {
		return "(?:" + char + "*?" + regexp.QuoteMeta(end) + "|" + char + "*)"
	}
	return regexp.MustCompile(`document store is (?:` +
		`damaged: ` + upTo("ingest the documents again") +
		`|read-only \(` + upTo("(or another --data-dir)") +
		`|locked by another process: ` + upTo("set a different --data-dir") + `)`)
}

// publicStoreFault is what a remote client is told in place of fault, one
// of storeFault's matches.
func publicStoreFault(fault string) string {
	switch {
	case strings.HasPrefix(fault, "document store is damaged"):
		return "this server's document store is damaged; contact the server's operator (its log says what is wrong)"
	case strings.HasPrefix(fault, "document store is read-only"):
		return "this server's document store is read-only: searching works, adding or removing documents does not; " +
			"contact the server's operator"
	}
	return "this server's document store is in use by another process; try again later, or contact the server's operator"
}

// publicStoreFaults returns s with every store error in it told as to a
// remote client; json is whether s is a JSON document (the error is then
// inside one of its strings).
func publicStoreFaults(s string, json bool) string {
	if !strings.Contains(s, "document store is ") {
		return s // the cheap test first
	}
	re := storeFault
	if json {
		re = storeFaultJSON
	}
	return re.ReplaceAllStringFunc(s, publicStoreFault)
}

// storeErrorFor is msg, an error of the document store or one wrapping it,
// as the client of ctx is told it: whole for a local client, else without
// the server's paths and the operator's advice, which the log keeps (what
// names the tool or route that failed).
func (s *Server) storeErrorFor(ctx context.Context, what, msg string) string {
	if s.localClient(ctx) {
		return msg
	}
	pub := publicStoreFaults(msg, false)
	if pub != msg {
		s.log.Warn().Str("via", what).Str("error", msg).
			Msg("document store failed: the remote client was told to contact the operator")
	}
	return pub
}
