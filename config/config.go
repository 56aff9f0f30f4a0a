// Package config is Ponder's one configuration struct. Values come from, in
// rising order of precedence: defaults, an optional YAML or JSON file
// (ponder.yaml in the working directory, or --config), PONDER_* environment
// variables, and command-line flags. Load validates the result once, with
// errors that name the setting to change.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"
)

// Config is everything Ponder can be told. The env tag names the PONDER_*
// variable that sets a field.
type Config struct {
	// DataDir holds traces, the document store, plugins and eval runs.
	DataDir string `json:"data_dir" env:"PONDER_DATA_DIR"`
	Log     Log    `json:"log"`
	LLM     LLM    `json:"llm"`
	Server  Server `json:"server"`
	Search  Search `json:"search"`
	Tools   Tools  `json:"tools"`
	// Retrieval configures document stores and embedders.
	Retrieval Retrieval `json:"retrieval"`
	Plugins   Plugins   `json:"plugins"`
}

// Log configures logging.
type Log struct {
	Level  string `json:"level" env:"PONDER_LOG_LEVEL"`   // trace, debug, info, warn, error
	Format string `json:"format" env:"PONDER_LOG_FORMAT"` // auto (console on a TTY, else JSON), console, json
}

// LLM configures the OpenAI-compatible endpoint of the policy.
type LLM struct {
	BaseURL     string        `json:"base_url" env:"PONDER_LLM_BASE_URL"`
	APIKey      string        `json:"api_key" env:"PONDER_LLM_API_KEY"`
	Model       string        `json:"model" env:"PONDER_LLM_MODEL"`
	Temperature float64       `json:"temperature" env:"PONDER_LLM_TEMPERATURE"`
	MaxTokens   int           `json:"max_tokens" env:"PONDER_LLM_MAX_TOKENS"`
	Timeout     time.Duration `json:"timeout" env:"PONDER_LLM_TIMEOUT"`
	MaxRetries  int           `json:"max_retries" env:"PONDER_LLM_MAX_RETRIES"`
	// Concurrency bounds concurrent requests to the endpoint.
	Concurrency int `json:"concurrency" env:"PONDER_LLM_CONCURRENCY"`
	// N says whether the endpoint honours n > 1: "auto" (try, fall back to
	// sequential requests), "yes", "no".
	N string `json:"n" env:"PONDER_LLM_N"`
	// EmbeddingModel is the model of /v1/embeddings (empty: lexical only).
	EmbeddingModel string `json:"embedding_model" env:"PONDER_EMBEDDING_MODEL"`
}

// Server configures `ponder serve`.
type Server struct {
	Addr string `json:"addr" env:"PONDER_ADDR"`
	// Token is required as a bearer token on every HTTP request when set;
	// it must be set when Addr is not a loopback address.
	Token string `json:"token" env:"PONDER_TOKEN"`
	// Tokens are more bearer tokens, one per client or person, each
	// accepted as Token is. The rate limit is per token: requests with a
	// valid token share its bucket, from wherever they come.
	Tokens         []string `json:"tokens" env:"PONDER_TOKENS"`
	AllowedOrigins []string `json:"allowed_origins" env:"PONDER_ALLOWED_ORIGINS"`
	AllowedHosts   []string `json:"allowed_hosts" env:"PONDER_ALLOWED_HOSTS"`
	MaxBodyBytes   int64    `json:"max_body_bytes" env:"PONDER_MAX_BODY_BYTES"`
	// RateLimit is requests per second per client (0: none); RateBurst is
	// how many a client may send at once (0: 2 × RateLimit).
	RateLimit float64 `json:"rate_limit" env:"PONDER_RATE_LIMIT"`
	RateBurst int     `json:"rate_burst" env:"PONDER_RATE_BURST"`
	// MaxSearches bounds the searches running or waiting for an LLM slot at
	// once, over every client (0: no bound); a request beyond it is told
	// the server is busy and when to try again.
	MaxSearches int `json:"max_searches" env:"PONDER_MAX_SEARCHES"`
	// MaxConnections bounds the HTTP connections open at once (0: no
	// bound), so a flood of idle or slow ones cannot use up the process's
	// file descriptors: beyond it an idle one is closed to make room, or
	// the new one is answered 503.
	MaxConnections int `json:"max_connections" env:"PONDER_MAX_CONNECTIONS"`
	// SessionTTL, MaxSessions, SessionMaxTurns and SessionMaxBytes bound the
	// reasoning sessions (solve's session argument): idle ones expire, the
	// least recently used go beyond MaxSessions, and the oldest turns of a
	// session go beyond its turn and byte caps.
	SessionTTL      time.Duration `json:"session_ttl" env:"PONDER_SESSION_TTL"`
	MaxSessions     int           `json:"max_sessions" env:"PONDER_MAX_SESSIONS"`
	SessionMaxTurns int           `json:"session_max_turns" env:"PONDER_SESSION_MAX_TURNS"`
	SessionMaxBytes int           `json:"session_max_bytes" env:"PONDER_SESSION_MAX_BYTES"`
	// SamplingConcurrency bounds concurrent sampling/createMessage requests
	// to one MCP client (its own model as the policy).
	SamplingConcurrency int `json:"sampling_concurrency" env:"PONDER_SAMPLING_CONCURRENCY"`
	// SamplingTimeout bounds one sampling request (0: none of its own; the
	// solve's deadline bounds it, as the client may ask its user first).
	SamplingTimeout time.Duration `json:"sampling_timeout" env:"PONDER_SAMPLING_TIMEOUT"`
	// ShutdownTimeout bounds how long shutdown waits for running requests
	// once their searches are cancelled.
	ShutdownTimeout time.Duration `json:"shutdown_timeout" env:"PONDER_SHUTDOWN_TIMEOUT"`
	TracesKept      int           `json:"traces_kept" env:"PONDER_TRACES_KEPT"`
	RecordPrompt    bool          `json:"record_prompts" env:"PONDER_RECORD_PROMPTS"`
}

// Search holds defaults for searches.
type Search struct {
	Strategy     string        `json:"strategy" env:"PONDER_STRATEGY"`
	Pack         string        `json:"pack" env:"PONDER_PACK"`
	BudgetCalls  int64         `json:"budget_calls" env:"PONDER_BUDGET_CALLS"`
	BudgetTokens int64         `json:"budget_tokens" env:"PONDER_BUDGET_TOKENS"`
	Timeout      time.Duration `json:"timeout" env:"PONDER_TIMEOUT"`
}

// Tools configures the tools of tools/.
type Tools struct {
	// Sandbox configures the python tool.
	Sandbox Sandbox `json:"sandbox"`
	// MCPServers are external MCP servers whose tools Ponder offers.
	MCPServers []MCPServer `json:"mcp_servers"`
	// MCPMaxMessageBytes bounds one message from an MCP server (a line on
	// stdio, a response body over HTTP): a bigger one closes the
	// connection rather than growing Ponder's memory.
	MCPMaxMessageBytes int `json:"mcp_max_message_bytes" env:"PONDER_MCP_MAX_MESSAGE_BYTES"`
	// Timeout bounds one call of a tool that has no timeout of its own
	// (calc; MCP servers without a timeout).
	Timeout time.Duration `json:"timeout" env:"PONDER_TOOLS_TIMEOUT"`
	// MaxOutputBytes caps the text a tool call returns to a search.
	MaxOutputBytes int `json:"max_output_bytes" env:"PONDER_TOOLS_MAX_OUTPUT_BYTES"`
	// Disabled names built-in tools to leave out: python, calc.
	Disabled []string `json:"disabled" env:"PONDER_TOOLS_DISABLED"`
}

// Sandbox configures sandboxed code execution.
type Sandbox struct {
	Timeout     time.Duration `json:"timeout" env:"PONDER_SANDBOX_TIMEOUT"`
	MemoryMB    int           `json:"memory_mb" env:"PONDER_SANDBOX_MEMORY_MB"`
	CPUSeconds  int           `json:"cpu_seconds" env:"PONDER_SANDBOX_CPU_SECONDS"`
	OutputBytes int           `json:"output_bytes" env:"PONDER_SANDBOX_OUTPUT_BYTES"`
	Python      string        `json:"python" env:"PONDER_SANDBOX_PYTHON"`
	Bubblewrap  string        `json:"bwrap" env:"PONDER_SANDBOX_BWRAP"`
	// MaxProcs limits processes and threads in one sandbox; TmpMB is the
	// size of its writable /tmp; OpenFiles limits its file descriptors.
	MaxProcs  int `json:"max_procs" env:"PONDER_SANDBOX_MAX_PROCS"`
	TmpMB     int `json:"tmp_mb" env:"PONDER_SANDBOX_TMP_MB"`
	OpenFiles int `json:"open_files" env:"PONDER_SANDBOX_OPEN_FILES"`
	// ReadOnlyPaths are host paths bound read-only into the sandbox (a
	// virtual environment's packages, data files).
	ReadOnlyPaths []string `json:"read_only_paths" env:"PONDER_SANDBOX_READ_ONLY_PATHS"`
	// MaxParallel bounds concurrent sandboxes (0: the number of CPUs);
	// MaxSessions bounds persistent python sessions.
	MaxParallel int `json:"max_parallel" env:"PONDER_SANDBOX_MAX_PARALLEL"`
	MaxSessions int `json:"max_sessions" env:"PONDER_SANDBOX_MAX_SESSIONS"`
}

// MCPServer is one external MCP server: a command (stdio) or a URL.
type MCPServer struct {
	Name    string            `json:"name"`
	Command string            `json:"command,omitempty"`
	Args    []string          `json:"args,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	URL     string            `json:"url,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Bearer  string            `json:"bearer,omitempty"`
	Timeout time.Duration     `json:"timeout,omitempty"`
	// Tools, when set, are the only tools of the server that Ponder offers.
	Tools []string `json:"tools,omitempty"`
}

// Retrieval configures document stores.
type Retrieval struct {
	// Backend is "embedded" (default) or "qdrant".
	Backend      string `json:"backend" env:"PONDER_RETRIEVAL_BACKEND"`
	QdrantURL    string `json:"qdrant_url" env:"PONDER_QDRANT_URL"`
	QdrantAPIKey string `json:"qdrant_api_key" env:"PONDER_QDRANT_API_KEY"`
	Collection   string `json:"collection" env:"PONDER_COLLECTION"`
	MaxFileBytes int64  `json:"max_file_bytes" env:"PONDER_MAX_FILE_BYTES"`
	ChunkChars   int    `json:"chunk_chars" env:"PONDER_CHUNK_CHARS"`
	ChunkOverlap int    `json:"chunk_overlap" env:"PONDER_CHUNK_OVERLAP"`
	EmbedURL     string `json:"embed_url" env:"PONDER_EMBED_URL"`
	EmbedAPIKey  string `json:"embed_api_key" env:"PONDER_EMBED_API_KEY"`
	EmbedModel   string `json:"embed_model" env:"PONDER_EMBED_MODEL"`
	EmbedDim     int    `json:"embed_dim" env:"PONDER_EMBED_DIM"`
	// EmbedTimeout bounds one request (one batch of texts) to the
	// embedding endpoint; EmbedMaxRetries is how often a failed one
	// (429, 5xx, network, timeout) is tried again.
	EmbedTimeout    time.Duration `json:"embed_timeout" env:"PONDER_EMBED_TIMEOUT"`
	EmbedMaxRetries int           `json:"embed_max_retries" env:"PONDER_EMBED_MAX_RETRIES"`
	// TopK is how many chunks a retrieval returns by default.
	TopK int `json:"top_k" env:"PONDER_RETRIEVAL_TOP_K"`
	// LockTimeout bounds the wait for the embedded store's file lock.
	LockTimeout time.Duration `json:"lock_timeout" env:"PONDER_RETRIEVAL_LOCK_TIMEOUT"`
}

// Plugins configures out-of-process plugins.
type Plugins struct {
	// Dirs are searched for plugins in addition to DataDir/plugins.
	Dirs []string `json:"dirs" env:"PONDER_PLUGIN_DIRS"`
	// Start is "lazy" (on first use, default) or "eager" (at start-up).
	Start       string        `json:"start" env:"PONDER_PLUGIN_START"`
	CallTimeout time.Duration `json:"call_timeout" env:"PONDER_PLUGIN_CALL_TIMEOUT"`
	// AbandonGrace is how long a plugin may keep running a call the host
	// gave up on before the plugin is restarted.
	AbandonGrace time.Duration `json:"abandon_grace" env:"PONDER_PLUGIN_ABANDON_GRACE"`
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		DataDir: defaultDataDir(os.Getenv("XDG_DATA_HOME")),
		Log:     Log{Level: "info", Format: "auto"},
		LLM: LLM{Model: "default", Temperature: 0.7, Timeout: 120 * time.Second, MaxRetries: 4,
			Concurrency: 8, N: "auto"},
		Server: Server{Addr: "127.0.0.1:7800", MaxBodyBytes: 4 << 20, RateLimit: 100, RateBurst: 400,
			MaxSearches: 256, MaxConnections: 4096, SessionTTL: time.Hour, MaxSessions: 1000, SessionMaxTurns: 20, SessionMaxBytes: 64 << 10,
			SamplingConcurrency: 4, ShutdownTimeout: 10 * time.Second, TracesKept: 200},
		Search: Search{Strategy: "cot", Pack: "generic", BudgetCalls: 64, Timeout: 10 * time.Minute},
		Tools: Tools{Sandbox: Sandbox{Timeout: 10 * time.Second, MemoryMB: 512, CPUSeconds: 10, OutputBytes: 64 << 10,
			Python: "python3", Bubblewrap: "bwrap", MaxProcs: 16, TmpMB: 64, OpenFiles: 64, MaxSessions: 16},
			Timeout: 30 * time.Second, MaxOutputBytes: 64 << 10, MCPMaxMessageBytes: 16 << 20},
		Retrieval: Retrieval{Backend: "embedded", Collection: "docs", MaxFileBytes: 50 << 20, ChunkChars: 1200, ChunkOverlap: 150,
			EmbedTimeout: 60 * time.Second, EmbedMaxRetries: 4, TopK: 5, LockTimeout: 2 * time.Second},
		Plugins: Plugins{Start: "lazy", CallTimeout: 30 * time.Second, AbandonGrace: 2 * time.Second},
	}
}

// defaultDataDir is where data goes when no data_dir is set: ponder in
// xdgDataHome ($XDG_DATA_HOME) when that is an absolute path, as the XDG
// Base Directory spec asks (a relative one is invalid and ignored), else
// ~/.local/share/ponder, the spec's own default, else ./ponder-data
// without a home directory. Data that Ponder kept at
// ~/.local/share/ponder before it read XDG_DATA_HOME stays found: while
// that folder exists and $XDG_DATA_HOME/ponder does not, it is still the
// one used (docs/configuration.md says how to move it).
func defaultDataDir(xdgDataHome string) string {
	old := ""
	if h, err := os.UserHomeDir(); err == nil {
		old = filepath.Join(h, ".local", "share", "ponder")
	}
	if filepath.IsAbs(xdgDataHome) {
		dir := filepath.Join(xdgDataHome, "ponder")
		if old != "" && old != dir && isDir(old) && !exists(dir) {
			return old
		}
		return dir
	}
	if old != "" {
		return old
	}
	return "ponder-data"
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// exists reports whether path is there (or may be: an error other than
// not-existing counts as there, so that a folder Ponder cannot stat is
// never passed over for the old one).
func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// Load builds the configuration: defaults, then the file at path (or
// ./ponder.yaml when path is empty and it exists), then the environment.
// Flags are applied by the caller afterwards, followed by Validate.
func Load(path string, environ []string) (Config, error) {
	c := Default()
	if path == "" {
		if _, err := os.Stat("ponder.yaml"); err == nil {
			path = "ponder.yaml"
		}
	}
	if path != "" {
		if ext := strings.ToLower(filepath.Ext(path)); ext == ".toml" || ext == ".ini" || ext == ".env" {
			return c, fmt.Errorf("config file %s: Ponder reads YAML or JSON files, not %s (docs/configuration.md has an example)", path, ext[1:])
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("config file: %w", err)
		}
		if b, err = normalise(b); err != nil {
			return c, fmt.Errorf("config file %s: %v", path, err)
		}
		if err := yaml.UnmarshalStrict(b, &c); err != nil {
			msg := decodeMessage(err)
			if n := tabIndented(b); n > 0 && strings.HasPrefix(msg, "yaml: ") && !strings.Contains(msg, "tab") {
				// "found character that cannot start any token", without
				// a line, is all the parser says of a tab.
				msg += fmt.Sprintf(" (line %d is indented with a tab: YAML indents with spaces)", n)
			}
			return c, fmt.Errorf("config file %s: %s", path, msg)
		}
	}
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "PONDER_") {
			env[k] = v
		}
	}
	if err := applyEnv(reflect.ValueOf(&c).Elem(), env); err != nil {
		return c, err
	}
	c.DataDir = ExpandHome(c.DataDir)
	for i, d := range c.Plugins.Dirs {
		c.Plugins.Dirs[i] = ExpandHome(d)
	}
	for i, d := range c.Tools.Sandbox.ReadOnlyPaths {
		c.Tools.Sandbox.ReadOnlyPaths[i] = ExpandHome(d)
	}
	return c, nil
}

// ExpandHome replaces a leading ~ of path by the home directory, as a
// shell does: a config file, a service's environment file and
// --data-dir=~/x are not read by one, and data_dir: ~/.local/share/ponder
// (the documented default) made a folder named "~" in the working
// directory.
func ExpandHome(path string) string {
	if path != "~" && !strings.HasPrefix(path, "~/") {
		return path
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return path
	}
	return filepath.Join(h, path[1:])
}

// decodeMessage is a config file's decoding error without the JSON its
// decoder reads YAML by way of: a misspelt key reads as an unknown setting.
func decodeMessage(err error) string {
	msg := err.Error()
	for _, p := range []string{"error converting YAML to JSON: ", "error unmarshaling JSON: ", "while decoding JSON: ", "json: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	// "yaml: unmarshal errors:\n  line 3: key "n" already set in map"
	msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
	if name, ok := strings.CutPrefix(msg, "unknown field "); ok {
		return "unknown setting " + name + " (`ponder config` lists every setting)"
	}
	// "cannot unmarshal string into Go struct field LLM.llm.concurrency of
	// type int": the Go type's name comes before the setting's.
	// A file that is a list, a number or a word, not settings.
	if m := topLevelRE.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("want settings, one name: value a line (llm: on a line of its own, model: ... indented below it), got %s", article(m[1]))
	}
	if m := typeErrorRE.FindStringSubmatch(msg); m != nil {
		got := article(m[1])
		if m[2] != "" { // "number 1.5": a fraction, or a number too large, for a whole number
			got = m[2]
		}
		return fmt.Sprintf("setting %q: got %s, want %s", m[3], got, wantOf(m[4]))
	}
	return msg
}

// article puts "a" or "an" before a JSON type's name.
func article(kind string) string {
	if kind != "" && strings.ContainsRune("aeiou", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}

// wantOf says in words what a setting of Go type t holds.
func wantOf(t string) string {
	switch t {
	case "time.Duration":
		return "a duration such as 30s"
	case "int", "int64", "int32", "uint", "uint64":
		return "a whole number"
	case "float64", "float32":
		return "a number"
	case "bool":
		return "true or false"
	case "string":
		return "a string"
	case "[]string":
		return "a list of strings"
	case "map[string]string":
		return "name: value pairs"
	}
	if strings.HasPrefix(t, "[]") {
		return "a list"
	}
	if strings.HasPrefix(t, "config.") {
		// A group such as llm: its settings on the lines below it.
		return "its settings, indented on the lines below it"
	}
	return t
}

var topLevelRE = regexp.MustCompile(`^cannot unmarshal (\w+) into Go value of type config\.Config$`)

// tabIndented is the number of the first line of b indented with a tab
// (0: none).
func tabIndented(b []byte) int {
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l[:len(l)-len(strings.TrimLeft(l, " \t"))], "\t") {
			return i + 1
		}
	}
	return 0
}

var typeErrorRE = regexp.MustCompile(`^cannot unmarshal (\w+)(?: (\S+))? into Go struct field \w+\.([\w.]+) of type (.+)$`)

// normalise rewrites a YAML or JSON config file, in place, so that it
// decodes as written: duration strings ("30s") become the nanoseconds
// time.Duration unmarshals from, and plain keys and plain values of text
// settings are quoted. The decoder reads YAML 1.1, where the key n of
// llm.n is the boolean false, "no" and "on" are booleans and 0123, 0x1f
// and 1.10 are numbers: a token 0123 became "83", a model 1.10 "1.1". A
// setting that is not a duration, and a key that names no setting, are
// errors naming it.
func normalise(b []byte) ([]byte, error) {
	var root yamlv3.Node
	if err := yamlv3.Unmarshal(b, &root); err != nil || len(root.Content) == 0 {
		return b, nil // UnmarshalStrict reports a malformed file
	}
	var edits []textEdit
	if err := normaliseIn(reflect.TypeOf(Config{}), root.Content[0], "", &edits); err != nil {
		return nil, err
	}
	if len(edits) == 0 {
		return b, nil
	}
	lines := strings.SplitAfter(string(b), "\n")
	sort.Slice(edits, func(i, j int) bool {
		if edits[i].line != edits[j].line {
			return edits[i].line > edits[j].line
		}
		return edits[i].col > edits[j].col
	})
	for _, e := range edits {
		if e.line < 1 || e.line > len(lines) {
			continue
		}
		l := lines[e.line-1]
		// Columns count characters; find the byte offset.
		off, n := len(l), 0
		for i := range l {
			if n == e.col-1 {
				off = i
				break
			}
			n++
		}
		// Only text found where the parser saw it is replaced (a plain
		// scalar folded over lines, an escaped quoted one, is left).
		if !strings.HasPrefix(l[off:], e.orig) {
			continue
		}
		lines[e.line-1] = l[:off] + e.text + l[off+len(e.orig):]
	}
	return []byte(strings.Join(lines, "")), nil
}

// durationType is time.Duration's type: an int64 kind that config files
// and the environment write as "30s".
var durationType = reflect.TypeOf(time.Duration(0))

// textEdit replaces orig, found at line and col (1-based, characters), by
// text.
type textEdit struct {
	line, col int
	orig      string
	text      string
}

// quotePlain quotes a plain scalar (not null) so that it reads as the
// text written.
func quotePlain(n *yamlv3.Node, edits *[]textEdit) {
	if n.Kind != yamlv3.ScalarNode || n.Style != 0 || n.Tag == "!!null" || n.Value == "" {
		return
	}
	*edits = append(*edits, textEdit{line: n.Line, col: n.Column, orig: n.Value,
		text: "'" + strings.ReplaceAll(n.Value, "'", "''") + "'"})
}

func normaliseIn(t reflect.Type, n *yamlv3.Node, at string, edits *[]textEdit) error {
	if n.Kind == yamlv3.AliasNode {
		return nil
	}
	if t == durationType {
		if n.Kind == yamlv3.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") && n.Value != "0" {
			// A bare number would be read as nanoseconds: "timeout: 30"
			// would time out every request.
			return fmt.Errorf("%s: want a duration with its unit like 30s or 10m, got the bare number %s", at, n.Value)
		}
		if n.Kind != yamlv3.ScalarNode || n.Tag != "!!str" {
			return nil
		}
		d, err := time.ParseDuration(n.Value)
		if err != nil {
			return fmt.Errorf("%s: want a duration like 30s, got %q", at, n.Value)
		}
		orig := n.Value
		switch {
		case n.Style&yamlv3.DoubleQuotedStyle != 0:
			orig = `"` + orig + `"`
		case n.Style&yamlv3.SingleQuotedStyle != 0:
			orig = "'" + orig + "'"
		}
		*edits = append(*edits, textEdit{line: n.Line, col: n.Column, orig: orig, text: strconv.FormatInt(int64(d), 10)})
		return nil
	}
	switch t.Kind() {
	case reflect.String:
		quotePlain(n, edits)
	case reflect.Int, reflect.Int64, reflect.Float64:
		// YAML 1.1 reads 0123 as octal (83) and 08 as 8: a number that
		// only looks decimal is refused rather than read as one base or
		// the other, so the file cannot mean what its writer did not;
		// .nan and .inf were refused by the decoder without the setting.
		if n.Kind == yamlv3.ScalarNode && n.Style == 0 {
			if err := CheckNumber(n.Value); err != nil {
				return fmt.Errorf("%s: %w", at, err)
			}
		}
	case reflect.Pointer:
		return normaliseIn(t.Elem(), n, at, edits)
	case reflect.Slice:
		if n.Kind == yamlv3.SequenceNode {
			for i, c := range n.Content {
				if err := normaliseIn(t.Elem(), c, fmt.Sprintf("%s[%d]", at, i), edits); err != nil {
					return err
				}
			}
		}
	case reflect.Map:
		if n.Kind == yamlv3.MappingNode && t.Key().Kind() == reflect.String {
			for i := 0; i+1 < len(n.Content); i += 2 {
				quotePlain(n.Content[i], edits)
				if err := normaliseIn(t.Elem(), n.Content[i+1], at+"."+n.Content[i].Value, edits); err != nil {
					return err
				}
			}
		}
	case reflect.Struct:
		if n.Kind != yamlv3.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yamlv3.ScalarNode || (k.Value == "<<" && k.Style == 0) {
				continue // a merge key: the decoder reads it
			}
			path := k.Value
			if at != "" {
				path = at + "." + k.Value
			}
			f, ok := fieldNamed(t, k.Value)
			if !ok {
				return unknownSetting(t, path, k.Value)
			}
			quotePlain(k, edits)
			if err := normaliseIn(f.Type, n.Content[i+1], path, edits); err != nil {
				return err
			}
		}
	}
	return nil
}

// fieldNamed is the field of struct t whose file name is name.
func fieldNamed(t reflect.Type, name string) (reflect.StructField, bool) {
	for j := 0; j < t.NumField(); j++ {
		f := t.Field(j)
		if n, _, _ := strings.Cut(f.Tag.Get("json"), ","); n == name && n != "" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// unknownSetting is the error for a key of struct t that names no setting,
// with the setting it most likely meant.
func unknownSetting(t reflect.Type, path, key string) error {
	prefix := strings.TrimSuffix(path, key)
	best, bestD := "", 3
	for j := 0; j < t.NumField(); j++ {
		n, _, _ := strings.Cut(t.Field(j).Tag.Get("json"), ",")
		if n == "" {
			continue
		}
		if strings.EqualFold(n, key) {
			best, bestD = n, 0
			break
		}
		if d := editDistance(strings.ToLower(key), n); d < bestD {
			best, bestD = n, d
		}
	}
	msg := fmt.Sprintf("unknown setting %q", path)
	if best != "" {
		msg += fmt.Sprintf("; did you mean %q?", prefix+best)
	}
	return errors.New(msg + " (`ponder config` lists every setting; names are lower case)")
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func applyEnv(v reflect.Value, env map[string]string) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f, fv := t.Field(i), v.Field(i)
		if f.Type.Kind() == reflect.Struct {
			if err := applyEnv(fv, env); err != nil {
				return err
			}
			continue
		}
		name := f.Tag.Get("env")
		raw, ok := env[name]
		if name == "" || !ok {
			continue
		}
		if err := setField(fv, raw); err != nil {
			return fmt.Errorf("%s=%q: %v", name, raw, err)
		}
		if k := fv.Kind(); (k == reflect.Int || k == reflect.Int64 || k == reflect.Float64) && fv.Type() != durationType {
			// Refused as in a file, so that one value reads the same
			// wherever it is written.
			if err := CheckNumber(raw); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	return nil
}

func setField(fv reflect.Value, raw string) error {
	switch fv.Interface().(type) {
	case time.Duration:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("want a duration like 30s")
		}
		fv.SetInt(int64(d))
		return nil
	}
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(raw)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return fmt.Errorf("want an integer")
		}
		fv.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return fmt.Errorf("want a number")
		}
		fv.SetFloat(f)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("want true or false")
		}
		fv.SetBool(b)
	case reflect.Slice:
		var parts []string
		for _, p := range strings.Split(raw, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		fv.Set(reflect.ValueOf(parts))
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}

// Validate checks the configuration once, naming the setting to change.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch c.Log.Level {
	case "trace", "debug", "info", "warn", "error":
	default:
		bad("log.level (--log-level, PONDER_LOG_LEVEL): want trace, debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "auto", "console", "json":
	default:
		bad("log.format (--log-format, PONDER_LOG_FORMAT): want auto, console or json, got %q", c.Log.Format)
	}
	if c.LLM.BaseURL != "" {
		if u, err := url.Parse(c.LLM.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("llm.base_url (--llm-url, PONDER_LLM_BASE_URL): want an http(s) URL such as http://127.0.0.1:8000/v1, got %q", c.LLM.BaseURL)
		} else if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
			// As the LLM client refuses it; without its value, which may
			// hold a key.
			bad("llm.base_url (--llm-url, PONDER_LLM_BASE_URL): want the API prefix alone, such as http://127.0.0.1:8000/v1, without ?... or #... (a key goes in llm.api_key)")
		}
	}
	if c.LLM.Concurrency < 1 {
		bad("llm.concurrency (--llm-concurrency, PONDER_LLM_CONCURRENCY): want at least 1, got %d", c.LLM.Concurrency)
	}
	// ExpandHome leaves a leading ~ when there is no home directory: it
	// would name a folder "~" in the working directory.
	tilde := func(setting, path string) {
		if path == "~" || strings.HasPrefix(path, "~/") {
			bad("%s: %q starts with ~, the home directory, and there is none (HOME is not set): give an absolute path", setting, path)
		}
	}
	tilde("data_dir (--data-dir, PONDER_DATA_DIR)", c.DataDir)
	for _, d := range c.Plugins.Dirs {
		tilde("plugins.dirs (PONDER_PLUGIN_DIRS)", d)
	}
	for _, d := range c.Tools.Sandbox.ReadOnlyPaths {
		tilde("tools.sandbox.read_only_paths", d)
	}
	if c.LLM.Timeout <= 0 {
		bad("llm.timeout (PONDER_LLM_TIMEOUT): want a positive duration, got %s", c.LLM.Timeout)
	}
	if c.LLM.MaxRetries < 0 {
		bad("llm.max_retries (PONDER_LLM_MAX_RETRIES): want 0 or more, got %d", c.LLM.MaxRetries)
	}
	switch c.LLM.N {
	case "auto", "yes", "no":
	default:
		bad("llm.n (PONDER_LLM_N): want auto, yes or no, got %q", c.LLM.N)
	}
	if !(c.LLM.Temperature >= 0 && c.LLM.Temperature <= 2) { // NaN too
		bad("llm.temperature (PONDER_LLM_TEMPERATURE): want 0 to 2, got %v", c.LLM.Temperature)
	}
	if c.Server.Token != "" && strings.TrimSpace(c.Server.Token) != c.Server.Token {
		// Headers are read trimmed: such a token could never be matched.
		bad("server.token (PONDER_TOKEN): white space at its ends, or a token of white space only, can never be sent back; remove it")
	}
	for i, tok := range c.Server.Tokens {
		if tok == "" || strings.TrimSpace(tok) != tok {
			bad("server.tokens (PONDER_TOKENS): token %d is empty or has white space at its ends, and can never be sent back; remove it", i+1)
		}
	}
	host, port, err := net.SplitHostPort(c.Server.Addr)
	if err != nil {
		bad("server.addr (--addr, PONDER_ADDR): want host:port such as 127.0.0.1:7800, got %q", c.Server.Addr)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		// Refused here, not by the listen, whose error came with a
		// hint about another server holding the port.
		bad("server.addr (--addr, PONDER_ADDR): want a port from 1 to 65535 (0: any free one), got %q", port)
	} else if !IsLoopback(host) && c.Server.Token == "" && len(c.Server.Tokens) == 0 {
		bad("server.addr %q is reachable from other machines: set server.token (PONDER_TOKEN) or server.tokens (PONDER_TOKENS) so requests need a bearer token, or bind 127.0.0.1", c.Server.Addr)
	}
	if c.Server.MaxBodyBytes <= 0 {
		bad("server.max_body_bytes (PONDER_MAX_BODY_BYTES): want a positive size, got %d", c.Server.MaxBodyBytes)
	}
	if !(c.Server.RateLimit >= 0 && c.Server.RateLimit <= math.MaxFloat64) || c.Server.RateBurst < 0 {
		// Not NaN nor +Inf, whose token buckets refused every request.
		bad("server.rate_limit and server.rate_burst (PONDER_RATE_LIMIT, PONDER_RATE_BURST): want 0 (no limit) or more, finite, got %v and %d", c.Server.RateLimit, c.Server.RateBurst)
	}
	if c.Server.SessionTTL <= 0 || c.Server.MaxSessions < 1 || c.Server.SessionMaxTurns < 1 || c.Server.SessionMaxBytes < 1 {
		bad("server.session_ttl, max_sessions, session_max_turns, session_max_bytes (PONDER_SESSION_TTL, PONDER_MAX_SESSIONS, PONDER_SESSION_MAX_TURNS, PONDER_SESSION_MAX_BYTES): want positive values, got %s, %d, %d, %d",
			c.Server.SessionTTL, c.Server.MaxSessions, c.Server.SessionMaxTurns, c.Server.SessionMaxBytes)
	}
	if c.Server.MaxConnections < 0 {
		bad("server.max_connections (PONDER_MAX_CONNECTIONS): want 0 (no bound) or more, got %d", c.Server.MaxConnections)
	}
	if c.Server.MaxSearches < 0 {
		bad("server.max_searches (PONDER_MAX_SEARCHES): want 0 (no bound) or more, got %d", c.Server.MaxSearches)
	}
	if c.Server.SamplingConcurrency < 1 {
		bad("server.sampling_concurrency (PONDER_SAMPLING_CONCURRENCY): want at least 1, got %d", c.Server.SamplingConcurrency)
	}
	if c.Server.SamplingTimeout < 0 {
		bad("server.sampling_timeout (PONDER_SAMPLING_TIMEOUT): want a duration such as 5m, or 0 for none, got %s", c.Server.SamplingTimeout)
	}
	if c.Server.ShutdownTimeout <= 0 {
		bad("server.shutdown_timeout (PONDER_SHUTDOWN_TIMEOUT): want a positive duration, got %s", c.Server.ShutdownTimeout)
	}
	if c.Server.TracesKept < 1 {
		bad("server.traces_kept (PONDER_TRACES_KEPT): want at least 1, got %d", c.Server.TracesKept)
	}
	if c.Tools.MCPMaxMessageBytes <= 0 {
		bad("tools.mcp_max_message_bytes (PONDER_MCP_MAX_MESSAGE_BYTES): want a positive size, got %d", c.Tools.MCPMaxMessageBytes)
	}
	if c.Search.BudgetCalls < 0 {
		bad("search.budget_calls (--budget-calls, PONDER_BUDGET_CALLS): want a positive number, got %d", c.Search.BudgetCalls)
	}
	if c.Search.BudgetTokens < 0 {
		bad("search.budget_tokens (--budget-tokens, PONDER_BUDGET_TOKENS): want a positive number, got %d", c.Search.BudgetTokens)
	}
	if c.Search.Timeout < 0 {
		bad("search.timeout (--timeout, PONDER_TIMEOUT): want a positive duration, got %s", c.Search.Timeout)
	}
	switch c.Retrieval.Backend {
	case "embedded", "qdrant":
	default:
		bad("retrieval.backend (PONDER_RETRIEVAL_BACKEND): want embedded or qdrant, got %q", c.Retrieval.Backend)
	}
	if c.Retrieval.Backend == "qdrant" && c.Retrieval.QdrantURL == "" {
		bad("retrieval.backend is qdrant but retrieval.qdrant_url (PONDER_QDRANT_URL) is empty")
	} else if c.Retrieval.Backend == "qdrant" {
		// Checked here, where the operator reads the value: the store's
		// own errors reach MCP clients and do not repeat it.
		u, err := url.Parse(c.Retrieval.QdrantURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.RawQuery != "" || u.Fragment != "" || u.Port() == "6333" {
			bad("retrieval.qdrant_url (PONDER_QDRANT_URL): want http://host:6334 or https://host:6334 (gRPC, not the REST port 6333; no query: the key goes in retrieval.qdrant_api_key), got %q",
				c.Retrieval.QdrantURL)
		}
	}
	if c.Retrieval.ChunkChars < 64 || c.Retrieval.ChunkOverlap < 0 || c.Retrieval.ChunkOverlap > c.Retrieval.ChunkChars/2 {
		bad("retrieval.chunk_chars (PONDER_CHUNK_CHARS) must be at least 64 and retrieval.chunk_overlap (PONDER_CHUNK_OVERLAP) 0 to half of it, got %d and %d",
			c.Retrieval.ChunkChars, c.Retrieval.ChunkOverlap)
	}
	if c.Retrieval.MaxFileBytes <= 0 {
		bad("retrieval.max_file_bytes (PONDER_MAX_FILE_BYTES): want a positive size, got %d", c.Retrieval.MaxFileBytes)
	}
	if c.Retrieval.EmbedTimeout <= 0 {
		bad("retrieval.embed_timeout (PONDER_EMBED_TIMEOUT): want a positive duration, got %s", c.Retrieval.EmbedTimeout)
	}
	if c.Retrieval.EmbedMaxRetries < 0 {
		bad("retrieval.embed_max_retries (PONDER_EMBED_MAX_RETRIES): want 0 or more, got %d", c.Retrieval.EmbedMaxRetries)
	}
	if c.Retrieval.TopK < 1 || c.Retrieval.TopK > 50 {
		bad("retrieval.top_k (PONDER_RETRIEVAL_TOP_K): want 1 to 50, got %d", c.Retrieval.TopK)
	}
	switch c.Plugins.Start {
	case "lazy", "eager":
	default:
		bad("plugins.start (PONDER_PLUGIN_START): want lazy or eager, got %q", c.Plugins.Start)
	}
	if c.Plugins.AbandonGrace <= 0 {
		bad("plugins.abandon_grace (PONDER_PLUGIN_ABANDON_GRACE): want a positive duration such as 2s, got %s", c.Plugins.AbandonGrace)
	}
	if c.DataDir == "" {
		bad("data_dir (--data-dir, PONDER_DATA_DIR) is empty")
	}
	// Sizes, counts and timeouts whose 0 means "none" or "the default":
	// a negative one means nothing (llm.max_tokens -5 was sent to the
	// endpoint with every request; the others read as their default).
	for _, n := range []struct {
		setting, env string
		v            int64
	}{
		{"llm.max_tokens", "PONDER_LLM_MAX_TOKENS", int64(c.LLM.MaxTokens)},
		{"tools.timeout", "PONDER_TOOLS_TIMEOUT", int64(c.Tools.Timeout)},
		{"tools.max_output_bytes", "PONDER_TOOLS_MAX_OUTPUT_BYTES", int64(c.Tools.MaxOutputBytes)},
		{"tools.sandbox.timeout", "PONDER_SANDBOX_TIMEOUT", int64(c.Tools.Sandbox.Timeout)},
		{"tools.sandbox.memory_mb", "PONDER_SANDBOX_MEMORY_MB", int64(c.Tools.Sandbox.MemoryMB)},
		{"tools.sandbox.cpu_seconds", "PONDER_SANDBOX_CPU_SECONDS", int64(c.Tools.Sandbox.CPUSeconds)},
		{"tools.sandbox.output_bytes", "PONDER_SANDBOX_OUTPUT_BYTES", int64(c.Tools.Sandbox.OutputBytes)},
		{"tools.sandbox.max_procs", "PONDER_SANDBOX_MAX_PROCS", int64(c.Tools.Sandbox.MaxProcs)},
		{"tools.sandbox.tmp_mb", "PONDER_SANDBOX_TMP_MB", int64(c.Tools.Sandbox.TmpMB)},
		{"tools.sandbox.open_files", "PONDER_SANDBOX_OPEN_FILES", int64(c.Tools.Sandbox.OpenFiles)},
		{"tools.sandbox.max_parallel", "PONDER_SANDBOX_MAX_PARALLEL", int64(c.Tools.Sandbox.MaxParallel)},
		{"tools.sandbox.max_sessions", "PONDER_SANDBOX_MAX_SESSIONS", int64(c.Tools.Sandbox.MaxSessions)},
		{"retrieval.embed_dim", "PONDER_EMBED_DIM", int64(c.Retrieval.EmbedDim)},
		{"retrieval.lock_timeout", "PONDER_RETRIEVAL_LOCK_TIMEOUT", int64(c.Retrieval.LockTimeout)},
		{"plugins.call_timeout", "PONDER_PLUGIN_CALL_TIMEOUT", int64(c.Plugins.CallTimeout)},
	} {
		if n.v < 0 {
			got := strconv.FormatInt(n.v, 10)
			if strings.HasSuffix(n.setting, "timeout") {
				got = time.Duration(n.v).String()
			}
			bad("%s (%s): want 0 or more, got %s", n.setting, n.env, got)
		}
	}
	return errors.Join(errs...)
}

// IsLoopback reports whether host (a name or an address) is a loopback one.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// otherVariables are PONDER_* variables that are not settings but are read
// elsewhere: benchmark files (eval, sim-llm), a plugin's handshake
// cookie, and the tests' own.
var otherVariables = []string{"PONDER_DATA_SETS", "PONDER_PLUGIN", "PONDER_ARTIFACTS", "PONDER_BIN", "PONDER_URL", "PONDER_TEST_", "PONDER_GAME24_"}

// UnknownVariables says, for each PONDER_* variable of environ that no
// setting reads, that it is ignored, with the variable most likely meant:
// a misspelt PONDER_LLM_MODLE would otherwise pass silently (a misspelt
// key in a config file is an error).
func UnknownVariables(environ []string) []string {
	known := map[string]bool{}
	var names []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.Type.Kind() == reflect.Struct && f.Type != durationType {
				walk(f.Type)
				continue
			}
			if e := f.Tag.Get("env"); e != "" {
				known[e] = true
				names = append(names, e)
			}
		}
	}
	walk(reflect.TypeOf(Config{}))
	var out []string
	seen := map[string]bool{}
outer:
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "PONDER_") || known[k] || seen[k] {
			continue
		}
		seen[k] = true
		for _, o := range otherVariables {
			if k == o || (strings.HasSuffix(o, "_") && strings.HasPrefix(k, o)) {
				continue outer
			}
		}
		msg := k + " is not a setting and is ignored"
		if best := likeliest(k, names); best != "" {
			msg += "; did you mean " + best + "?"
		}
		out = append(out, msg+" (`ponder config` lists every setting and its variable)")
	}
	return out
}

// likeliest is the variable of names that k most likely misspells: one a
// typo or two away, else the one sharing most words with it
// (PONDER_LLM_URL: PONDER_LLM_BASE_URL), closest first; "" when none is.
func likeliest(k string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(k, n); d < bestD {
			best, bestD = n, d
		}
	}
	if best != "" {
		return best
	}
	words := strings.Split(strings.TrimPrefix(k, "PONDER_"), "_")
	bestShared, bestD := 0, 0
	for _, n := range names {
		shared := 0
		for _, w := range strings.Split(strings.TrimPrefix(n, "PONDER_"), "_") {
			if w != "" && slices.Contains(words, w) {
				shared++
			}
		}
		if d := editDistance(k, n); shared > bestShared || (shared == bestShared && shared > 0 && d < bestD) {
			best, bestShared, bestD = n, shared, d
		}
	}
	return best
}
