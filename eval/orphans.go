package eval

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"
)

// removeOrphanTraces removes the files of out/traces that no line of
// results.jsonl names (named), and returns how many it removed. A search's
// trace is saved before its record is appended, so a run killed between
// the two (kill -9, a power cut) leaves a trace whose search is run again:
// kept, it would stand beside the new trace of the same problem, and
// whatever reads the directory's traces (ponder export of traces/, ponder
// trace view) would count that search twice. A trace a replaced record
// (--retry-errors) names is kept, as its line is. Temporary files of a
// trace write that was cut short (.trace-*) go too. Run calls it holding
// the directory's lock, before any search, so no trace of this run is
// being written. What cannot be removed is logged and left; the count is
// for the caller to tell (ponder eval says it).
func removeOrphanTraces(out string, named map[string]bool, log zerolog.Logger) int {
	dir := filepath.Join(out, TracesDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		log.Warn().Err(err).Msg("traces not checked for ones no record names")
		return 0
	}
	removed := 0
	for _, e := range entries {
		name := e.Name()
		id, isTrace := strings.CutSuffix(name, ".json")
		orphan := isTrace && !named[id] && !strings.HasPrefix(name, ".")
		if !e.Type().IsRegular() || !(orphan || strings.HasPrefix(name, ".trace-")) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			log.Warn().Err(err).Str("file", name).Msg("trace no record names not removed")
			continue
		}
		removed++
	}
	if removed > 0 {
		log.Debug().Int("files", removed).Str("dir", dir).
			Msg("removed traces no record names: a run was stopped between saving a trace and its record, and runs that search again")
	}
	return removed
}
