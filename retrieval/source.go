package retrieval

import (
	"path/filepath"

	"github.com/ponder-rlm/ponder/core"
)

// MetaName is the chunk (and document) metadata key ingest stores a
// source's name under: its path relative to the folder that holds what
// was ingested ("docs/guide/setup.md" for `ingest docs`, "setup.md" for a
// file named by itself), or the name a text was given.
const MetaName = "name"

// PublicSource is the source to show a client that is not on the
// server's machine: the chunk's name rather than the absolute path it is
// stored under, which would tell such a client how the server's file
// system is laid out (user names, mount points). Chunks stored before
// ingest recorded names show their file name alone; a text's source is
// already its name.
func PublicSource(c core.Chunk) string {
	if n := c.Meta[MetaName]; n != "" {
		return n
	}
	if !filepath.IsAbs(c.Source) {
		return c.Source
	}
	return filepath.Base(c.Source)
}

// PublicChunks returns chunks with PublicSource as their source (the
// chunks given are not changed).
func PublicChunks(chunks []core.Chunk) []core.Chunk {
	out := make([]core.Chunk, len(chunks))
	for i, c := range chunks {
		c.Source = PublicSource(c)
		out[i] = c
	}
	return out
}
