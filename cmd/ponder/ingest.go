package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/text"
	"github.com/ponder-rlm/ponder/retrieval"
	"github.com/ponder-rlm/ponder/retrieval/embed"
	"github.com/ponder-rlm/ponder/retrieval/embedded"
	"github.com/ponder-rlm/ponder/retrieval/ingest"
	"github.com/ponder-rlm/ponder/retrieval/qdrant"
	"github.com/ponder-rlm/ponder/tools"
)

func init() {
	extraCommands = append(extraCommands, newIngestCmd, newSearchCmd, newCollectionsCmd, newDocsCmd)
	appHooks = append(appHooks, retrievalHook)
}

// storePath is where the embedded store lives under the data dir.
func storePath(cfg config.Config) string {
	return filepath.Join(cfg.DataDir, "retrieval", "store.db")
}

// openStoreFor opens the configured document store: embedded under the
// data dir (default) or Qdrant. An embedded store this user cannot write
// is opened read-only (writes then fail saying so). readOnly (commands
// that only read: search, solve) opens an existing embedded store
// read-only, with a shared lock, so they run side by side and need no
// write access.
func openStoreFor(ctx context.Context, cfg config.Config, log zerolog.Logger, readOnly bool) (retrieval.Store, error) {
	if cfg.Retrieval.Backend == "qdrant" {
		return qdrant.Open(ctx, qdrant.Options{URL: cfg.Retrieval.QdrantURL, APIKey: cfg.Retrieval.QdrantAPIKey, Logger: log})
	}
	opts := storeOptions(cfg, log, readOnly)
	if _, err := os.Stat(storePath(cfg)); readOnly && err == nil {
		opts.ReadOnly = true
		return embedded.Open(storePath(cfg), opts)
	}
	// A store that is not there yet is made, as for any command: a search
	// then says the collection does not exist.
	if err := ensureDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	// A command that may write (serve, ingest, deletes) locks the file
	// only for each read or write, so `ponder ingest` and `ponder search`
	// run beside a running `ponder serve`, and a CLI ingest and the
	// server's ingest_documents interleave transaction by transaction.
	return embedded.OpenShared(storePath(cfg), opts)
}

// storeOptions are the embedded store's options for a command; readOnly:
// it only reads (search, solve, eval, tools call). Those are short-lived
// and make a few dense queries, so they score them exactly (milliseconds
// each) rather than build the HNSW graph for the first (about 40s at
// 20,000 chunks of 384 dimensions); `ponder serve` builds it once and
// keeps it.
func storeOptions(cfg config.Config, log zerolog.Logger, readOnly bool) *embedded.Options {
	return &embedded.Options{Logger: log, LockTimeout: cfg.Retrieval.LockTimeout, ExactDense: readOnly}
}

// newEmbedder returns the configured embedder, or nil for lexical only.
// An embedding model is named by retrieval.embed_model (or
// llm.embedding_model); its endpoint is retrieval.embed_url, else the LLM's.
func newEmbedder(cfg config.Config, log zerolog.Logger) (retrieval.Embedder, error) {
	model := cfg.Retrieval.EmbedModel
	if model == "" {
		model = cfg.LLM.EmbeddingModel
	}
	if model == "" {
		return nil, nil
	}
	url, key := cfg.Retrieval.EmbedURL, cfg.Retrieval.EmbedAPIKey
	if url == "" {
		url = cfg.LLM.BaseURL
	}
	if key == "" {
		key = cfg.LLM.APIKey
	}
	if url == "" {
		return nil, fmt.Errorf("embedding model %q is set but no endpoint: set retrieval.embed_url (PONDER_EMBED_URL) or PONDER_LLM_BASE_URL", model)
	}
	retries := cfg.Retrieval.EmbedMaxRetries
	if retries == 0 {
		retries = -1 // embed.Options reads 0 as its default; the setting's 0 is no retry
	}
	return embed.NewOpenAI(embed.Options{BaseURL: url, APIKey: key, Model: model, Dim: cfg.Retrieval.EmbedDim,
		Timeout: cfg.Retrieval.EmbedTimeout, MaxRetries: retries, Logger: log})
}

// retrievalHook gives the app a retriever over a store that is opened on
// first use (so `ponder strategies` never locks it), and the retrieve tool.
func retrievalHook(ctx context.Context, a *app) error {
	emb, err := newEmbedder(a.cfg, a.log)
	if err != nil {
		return err
	}
	cfg, log, readOnly := a.cfg, a.log, a.readOnlyStore
	lazy := retrieval.NewLazy(func(ctx context.Context) (retrieval.Store, error) { return openStoreFor(ctx, cfg, log, readOnly) })
	a.closers = append(a.closers, lazy.Close)
	r := retrieval.NewRetriever(lazy, &retrieval.RetrieverOptions{Embedder: emb, Collection: cfg.Retrieval.Collection,
		K: cfg.Retrieval.TopK, Logger: log})
	a.retriever = r
	// The retrieve tool joins the app's tool registry (made here if no
	// other part made one yet).
	reg, ok := a.tools.(*tools.Registry)
	if a.tools == nil {
		reg, ok = tools.NewRegistry(&tools.Options{Logger: log}), true
		a.tools = reg
	}
	if ok {
		if _, taken := reg.Tool(retrieval.ToolName); !taken {
			return reg.Register(retrieval.NewTool(r), nil)
		}
	}
	return nil
}

// retrievalSetup is what the document commands share.
type retrievalSetup struct {
	cfg   config.Config
	log   zerolog.Logger
	store retrieval.Store
	emb   retrieval.Embedder
}

// setupRetrieval loads what the document commands share; readOnly: the
// command only reads the store (see openStoreFor).
func setupRetrieval(cmd *cobra.Command, readOnly bool) (*retrievalSetup, error) {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := newLogger(cfg.Log, cmd.ErrOrStderr())
	emb, err := newEmbedder(cfg, log)
	if err != nil {
		return nil, err
	}
	st, err := openStoreFor(cmd.Context(), cfg, log, readOnly)
	if err != nil {
		return nil, err
	}
	return &retrievalSetup{cfg: cfg, log: log, store: st, emb: emb}, nil
}

func collectionOf(cmd *cobra.Command, flag string, cfg config.Config) (string, error) {
	c := flag
	if c == "" {
		c = cfg.Retrieval.Collection
	}
	if err := retrieval.ValidateCollection(c); err != nil {
		return "", usageError("--collection: %v", err)
	}
	return c, nil
}

func newIngestCmd() *cobra.Command {
	var collection, stdinName string
	var jsonOut, quiet, keepMissing bool
	cmd := &cobra.Command{
		Use:   "ingest [flags] PATH...",
		Short: "Add documents (.md .txt .html .pdf, source files) to a collection: files, folders, globs, - for stdin",
		Example: `  ponder ingest ./docs
  ponder ingest --collection handbook "manuals/**/*.pdf" notes.md
  curl -s https://example.com/page.html | ponder ingest --stdin-name page.html -
  ponder ingest --json ./docs | jq '.files[] | select(.status=="skipped")'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rs, err := setupRetrieval(cmd, false)
			if err != nil {
				return err
			}
			defer rs.store.Close()
			coll, err := collectionOf(cmd, collection, rs.cfg)
			if err != nil {
				return err
			}
			ew := cmd.ErrOrStderr()
			var bar *progressbar.ProgressBar
			if f, ok := ew.(*os.File); ok && isatty.IsTerminal(f.Fd()) && !quiet {
				bar = progressbar.NewOptions(-1, progressbar.OptionSetWriter(ew), progressbar.OptionSetDescription("ingesting"),
					progressbar.OptionShowCount(), progressbar.OptionSetItsString("files"), progressbar.OptionShowIts(),
					progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
			}
			ing := ingest.New(rs.store, &ingest.Options{
				Collection: coll, Embedder: rs.emb, MaxFileBytes: rs.cfg.Retrieval.MaxFileBytes, StdinName: stdinName, KeepMissing: keepMissing,
				Chunk:  ingest.ChunkOptions{Size: rs.cfg.Retrieval.ChunkChars, Overlap: rs.cfg.Retrieval.ChunkOverlap},
				Logger: rs.log,
				OnFile: func(f ingest.FileResult) {
					if bar != nil {
						_ = bar.Add(1)
					}
				},
			})
			sum, runErr := ing.Run(cmd.Context(), args, cmd.InOrStdin())
			if bar != nil {
				_ = bar.Finish()
			}
			w := cmd.OutOrStdout()
			if jsonOut {
				if err := printJSON(w, sum); err != nil {
					return err
				}
			} else {
				for _, f := range sum.Files {
					switch {
					// File names and reasons (a parser's error) are shown
					// through text.Terminal: a name may hold anything.
					case f.Status == ingest.Skipped || f.Status == ingest.Failed || f.Status == ingest.Removed:
						fmt.Fprintf(ew, "%s %s: %s\n", f.Status, text.Terminal(f.Path), text.Terminal(f.Reason))
					case f.Note != "":
						// What was assumed (an encoding) is worth a look.
						fmt.Fprintf(ew, "%s %s: %s\n", f.Status, text.Terminal(f.Path), text.Terminal(f.Note))
					}
				}
				mb := float64(sum.Bytes) / (1 << 20)
				removed := ""
				if sum.Removed > 0 {
					removed = fmt.Sprintf(", %d removed (gone from the folder or glob)", sum.Removed)
				}
				fmt.Fprintf(w, "%s: %d added, %d updated, %d unchanged, %d skipped, %d failed%s; %d chunks, %.1f MiB in %.1fs\n",
					coll, sum.Added, sum.Updated, sum.Unchanged, sum.Skipped, sum.Failed, removed, sum.Chunks, mb, sum.Seconds)
			}
			if runErr != nil {
				return fmt.Errorf("ingest stopped: %w", runErr)
			}
			if sum.Added+sum.Updated+sum.Unchanged == 0 {
				if len(sum.Files) == 0 {
					return exitError{code: 1, err: fmt.Errorf("no file found in %s (hidden entries and node_modules are skipped)", strings.Join(args, " "))}
				}
				return exitError{code: 1, err: errors.New("no document could be ingested (see the reasons above)")}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&collection, "collection", "c", "", "collection to add to (default from config: docs)")
	fl.BoolVar(&jsonOut, "json", false, "print a JSON summary with each file's status and skip reason")
	fl.BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	fl.BoolVar(&keepMissing, "keep-missing", false, "keep the documents of files gone from a folder or glob being ingested (default: remove them)")
	fl.StringVar(&stdinName, "stdin-name", "stdin.txt", "source name of the document read from - (its extension picks the reader)")
	return cmd
}

// searchOutput is what `ponder search --json` prints.
type searchOutput struct {
	Query      string       `json:"query"`
	Collection string       `json:"collection"`
	Chunks     []core.Chunk `json:"chunks"`
}

func newSearchCmd() *cobra.Command {
	var collection, mode string
	var k int
	var jsonOut bool
	var filters []string
	cmd := &cobra.Command{
		Use:   `search [flags] "query"`,
		Short: "Search a document collection and print ranked, cited chunks",
		Example: `  ponder search "which port does the admin console use"
  ponder search --collection handbook --k 3 --filter type=pdf --json "evacuation assembly point"`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			query := strings.TrimSpace(strings.Join(args, " "))
			if query == "" {
				return usageError("the query is empty")
			}
			if cmd.Flags().Changed("k") && (k < 1 || k > 50) {
				return usageError("--k must be 1 to 50, got %d", k)
			}
			filter := map[string]string{}
			for _, f := range filters {
				key, v, ok := strings.Cut(f, "=")
				if !ok || key == "" {
					return usageError("--filter %q: want key=value, e.g. type=pdf or source=/abs/path.md", f)
				}
				filter[key] = v
			}
			switch retrieval.Mode(mode) {
			case retrieval.ModeAuto, retrieval.ModeLexical, retrieval.ModeDense, retrieval.ModeHybrid:
			default:
				return usageError("--mode %q: want lexical, dense or hybrid (default: the best available)", mode)
			}
			rs, err := setupRetrieval(cmd, true)
			if err != nil {
				return err
			}
			defer rs.store.Close()
			coll, err := collectionOf(cmd, collection, rs.cfg)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("k") {
				k = rs.cfg.Retrieval.TopK // retrieval.top_k: 5 was fixed here
			}
			r := retrieval.NewRetriever(rs.store, &retrieval.RetrieverOptions{Embedder: rs.emb, Collection: coll})
			hits, err := r.Search(cmd.Context(), retrieval.SearchRequest{Query: query, Collection: coll, K: k, Filter: filter, Mode: retrieval.Mode(mode)})
			if err != nil {
				return err
			}
			out := searchOutput{Query: query, Collection: coll, Chunks: []core.Chunk{}}
			for _, h := range hits {
				out.Chunks = append(out.Chunks, retrieval.ToCore(h))
			}
			w := cmd.OutOrStdout()
			if jsonOut {
				return printJSON(w, out)
			}
			if len(hits) == 0 {
				fmt.Fprintln(w, "no matching chunks")
				return nil
			}
			printHits(w, hits)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&collection, "collection", "c", "", "collection to search (default from config: docs)")
	fl.IntVarP(&k, "k", "k", 0, "number of chunks, 1 to 50 (default from config: 5)")
	fl.BoolVar(&jsonOut, "json", false, "print JSON: the chunks with source, score and metadata")
	fl.StringArrayVar(&filters, "filter", nil, "metadata that must match, key=value (repeatable): type, source, name, title, page, encoding, doc_hash")
	fl.StringVar(&mode, "mode", "", "lexical, dense or hybrid (default: hybrid when the collection has vectors and an embedder is set)")
	return cmd
}

// printHits writes search results for a person. A document's text, title,
// headings and name are the document's: shown through text.Terminal, so
// that an escape sequence in a file does not act on the terminal.
func printHits(w io.Writer, hits []retrieval.Hit) {
	for i, h := range hits {
		where := strings.Join(h.Headings, " › ")
		if where == "" {
			where = h.Title
		}
		loc := fmt.Sprintf("%s:%d-%d", h.Source, h.Start, h.End)
		if p := h.Meta["page"]; p != "" {
			loc += " page " + p
		}
		fmt.Fprintf(w, "[%d] %s  (score %.3f)\n    %s\n", i+1, text.OneLine(text.Terminal(loc)), h.Score, text.OneLine(text.Terminal(where)))
		fmt.Fprintf(w, "    %s\n\n", text.Clip(text.OneLine(text.Terminal(h.Text)), 400))
	}
}

func newCollectionsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "collections", Short: "List or delete document collections"}
	var jsonOut bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List collections with their document and chunk counts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rs, err := setupRetrieval(cmd, true)
			if err != nil {
				return err
			}
			defer rs.store.Close()
			cs, err := rs.store.Collections(cmd.Context())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if jsonOut {
				if cs == nil {
					cs = []retrieval.CollectionInfo{}
				}
				return printJSON(w, cs)
			}
			if len(cs) == 0 {
				fmt.Fprintln(w, "no collections yet: add documents with `ponder ingest PATH`")
				return nil
			}
			for _, c := range cs {
				vec := "lexical"
				if c.Dim > 0 {
					vec = fmt.Sprintf("hybrid, %d-dim %s", c.Dim, c.Model)
				}
				fmt.Fprintf(w, "%-20s %6d documents %8d chunks  (%s)\n", text.Terminal(c.Name), c.Documents, c.Chunks, text.Terminal(vec))
			}
			return nil
		},
	}
	list.Flags().BoolVar(&jsonOut, "json", false, "print JSON")
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a collection and all its documents",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// A name no collection can have is said so, not "no such
			// collection" with advice to ingest into it (which fails).
			if err := retrieval.ValidateCollection(args[0]); err != nil {
				return usageError("%v", err)
			}
			rs, err := setupRetrieval(cmd, false)
			if err != nil {
				return err
			}
			defer rs.store.Close()
			if err := rs.store.DeleteCollection(cmd.Context(), args[0]); err != nil {
				if retrieval.IsNotFound(err) {
					return exitError{code: 1, err: err}
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted collection %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(list, del)
	return cmd
}

func newDocsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "docs", Short: "Manage documents of a collection"}
	var collection, source string
	del := &cobra.Command{
		Use:     "delete --source PATH",
		Short:   "Remove one document (all its chunks) from a collection",
		Example: "  ponder docs delete --source ./docs/old-guide.md",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if source == "" {
				return usageError("--source is required: the path the document was ingested from")
			}
			rs, err := setupRetrieval(cmd, false)
			if err != nil {
				return err
			}
			defer rs.store.Close()
			coll, err := collectionOf(cmd, collection, rs.cfg)
			if err != nil {
				return err
			}
			// Sources are stored as absolute paths; stdin documents by name.
			candidates := []string{source}
			if abs, err := filepath.Abs(source); err == nil && abs != source {
				candidates = append([]string{abs}, candidates...)
			}
			for _, src := range candidates {
				ok, err := rs.store.DeleteDocument(cmd.Context(), coll, src)
				if err != nil {
					return err
				}
				if ok {
					fmt.Fprintf(cmd.OutOrStdout(), "deleted %s from %s\n", text.Terminal(src), text.Terminal(coll))
					return nil
				}
			}
			return exitError{code: 1, err: fmt.Errorf("collection %s has no document %s", coll, candidates[0])}
		},
	}
	del.Flags().StringVarP(&collection, "collection", "c", "", "collection (default from config: docs)")
	del.Flags().StringVar(&source, "source", "", "path of the document, as ingested")
	cmd.AddCommand(del)
	return cmd
}
