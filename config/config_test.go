package config_test

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/config"
)

func TestLoadPrecedenceFileThenEnv(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "ponder.yaml")
	yaml := "llm:\n  base_url: http://file:8000/v1\n  model: from-file\n  concurrency: 3\nserver:\n  addr: 127.0.0.1:9999\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(file, []string{"PONDER_LLM_MODEL=from-env", "PONDER_TIMEOUT=90s", "PONDER_ALLOWED_ORIGINS=http://a, http://b", "HOME=/x"})
	if err != nil {
		t.Fatal(err)
	}
	if c.LLM.BaseURL != "http://file:8000/v1" || c.LLM.Concurrency != 3 || c.Server.Addr != "127.0.0.1:9999" {
		t.Fatalf("file values not applied: %+v", c)
	}
	if c.LLM.Model != "from-env" {
		t.Fatalf("env must override the file: model %q", c.LLM.Model)
	}
	if c.Search.Timeout != 90*time.Second || len(c.Server.AllowedOrigins) != 2 || c.Server.AllowedOrigins[1] != "http://b" {
		t.Fatalf("env parsing: timeout %v origins %v", c.Search.Timeout, c.Server.AllowedOrigins)
	}
	if c.Log.Level != "info" || c.Retrieval.Backend != "embedded" {
		t.Fatalf("defaults lost: %+v", c.Log)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// The embedder's timeout and retries, 0 meaning no retry at all.
	c, err = config.Load("", []string{"PONDER_EMBED_TIMEOUT=5s", "PONDER_EMBED_MAX_RETRIES=0"})
	if err != nil || c.Retrieval.EmbedTimeout != 5*time.Second || c.Retrieval.EmbedMaxRetries != 0 || c.Validate() != nil {
		t.Fatalf("embed settings from the environment: %v, %v, %d", err, c.Retrieval.EmbedTimeout, c.Retrieval.EmbedMaxRetries)
	}
	// The MCP bridge's message cap, 16 MiB unless set.
	if d := config.Default().Tools.MCPMaxMessageBytes; d != 16<<20 {
		t.Fatalf("default tools.mcp_max_message_bytes = %d, want 16 MiB", d)
	}
	c, err = config.Load("", []string{"PONDER_MCP_MAX_MESSAGE_BYTES=1048576"})
	if err != nil || c.Tools.MCPMaxMessageBytes != 1<<20 || c.Validate() != nil {
		t.Fatalf("mcp message cap from the environment: %v, %d", err, c.Tools.MCPMaxMessageBytes)
	}
}

func TestLoadRejectsUnknownFileKeysAndBadEnv(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "ponder.yaml")
	if err := os.WriteFile(file, []byte("llm:\n  base_ur: http://x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(file, nil); err == nil || !strings.Contains(err.Error(), `unknown setting "llm.base_ur"; did you mean "llm.base_url"?`) || strings.Contains(err.Error(), "JSON") {
		t.Fatalf("misspelt key accepted, or refused in the decoder's words: %v", err)
	}
	if _, err := config.Load("", []string{"PONDER_LLM_CONCURRENCY=many"}); err == nil || !strings.Contains(err.Error(), "PONDER_LLM_CONCURRENCY") {
		t.Fatalf("bad env value accepted: %v", err)
	}
	if _, err := config.Load("", []string{"PONDER_EMBED_TIMEOUT=30"}); err == nil || !strings.Contains(err.Error(), "PONDER_EMBED_TIMEOUT") {
		t.Fatalf("embed timeout without a unit accepted: %v", err)
	}
	if _, err := config.Load(filepath.Join(t.TempDir(), "missing.yaml"), nil); err == nil {
		t.Fatal("missing explicit config file accepted")
	}
}

// A config file's value of the wrong type names the setting and what it
// holds, in the file's words, not the Go types and JSON its decoder reads.
func TestLoadNamesTheSettingOfAWrongType(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ yaml, want string }{
		{"llm:\n  concurrency: lots\n", `setting "llm.concurrency": got a string, want a whole number`},
		{"search:\n  timeout: [1]\n", `setting "search.timeout": got an array, want a duration such as 30s`},
		{"llm: qwen\n", `setting "llm": got a string, want its settings, indented on the lines below it`},
		{"tools:\n  mcp_servers: npx\n", `setting "tools.mcp_servers": got a string, want a list`},
		// A fraction, or a number too large, for a whole number: it read
		// "cannot unmarshal number 1.5 into Go struct field Server.server.max_searches of type int".
		{"server:\n  max_searches: 1.5\n", `setting "server.max_searches": got 1.5, want a whole number`},
		{"server:\n  max_searches: 100000000000000000000\n", `setting "server.max_searches": got 100000000000000000000, want a whole number`},
		{"llm:\n  n: auto\n  n: no\n", `ponder.yaml: yaml: line 3: key "n" already set in map`},
		// A file that is not settings at all: it read "cannot unmarshal
		// array into Go value of type config.Config".
		{"- llm\n", `ponder.yaml: want settings, one name: value a line (llm: on a line of its own, model: ... indented below it), got an array`},
		{"qwen2.5\n", `got a string`},
		// A tab, of which the parser names neither the line nor the tab.
		{"llm:\n  model: x\nserver:\n\taddr: 127.0.0.1:7800\n", `(line 4 is indented with a tab: YAML indents with spaces)`},
	} {
		file := filepath.Join(t.TempDir(), "ponder.yaml")
		if err := os.WriteFile(file, []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := config.Load(file, nil)
		if err == nil || !strings.HasSuffix(err.Error(), tc.want) {
			t.Errorf("%q: %v, want it to end %q", tc.yaml, err, tc.want)
		}
	}
}

func TestValidateNamesTheSetting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mod  func(*config.Config)
		want string
	}{
		{"log level", func(c *config.Config) { c.Log.Level = "loud" }, "log.level"},
		{"llm url", func(c *config.Config) { c.LLM.BaseURL = "localhost:8000" }, "llm.base_url"},
		{"llm url with a query", func(c *config.Config) { c.LLM.BaseURL = "http://h/v1?api-key=k" }, "llm.base_url (--llm-url, PONDER_LLM_BASE_URL): want the API prefix alone"},
		{"concurrency", func(c *config.Config) { c.LLM.Concurrency = 0 }, "llm.concurrency (--llm-concurrency, PONDER_LLM_CONCURRENCY)"},
		{"log format", func(c *config.Config) { c.Log.Format = "xml" }, "log.format (--log-format, PONDER_LOG_FORMAT)"},
		{"public bind without token", func(c *config.Config) { c.Server.Addr = "0.0.0.0:7800" }, "set server.token (PONDER_TOKEN) or server.tokens (PONDER_TOKENS)"},
		{"addr", func(c *config.Config) { c.Server.Addr = "7800" }, "server.addr"},
		{"port out of range", func(c *config.Config) { c.Server.Addr = "127.0.0.1:99999" }, `server.addr (--addr, PONDER_ADDR): want a port from 1 to 65535 (0: any free one), got "99999"`},
		{"negative port", func(c *config.Config) { c.Server.Addr = "127.0.0.1:-1" }, `got "-1"`},
		{"no port", func(c *config.Config) { c.Server.Addr = "127.0.0.1:" }, `got ""`},
		{"qdrant without url", func(c *config.Config) { c.Retrieval.Backend = "qdrant" }, "qdrant_url"},
		{"qdrant url without scheme", func(c *config.Config) { c.Retrieval.Backend, c.Retrieval.QdrantURL = "qdrant", "qdrant:6334" }, "retrieval.qdrant_url"},
		{"qdrant rest port", func(c *config.Config) { c.Retrieval.Backend, c.Retrieval.QdrantURL = "qdrant", "http://qdrant:6333" }, "REST port"},
		{"qdrant key in the url", func(c *config.Config) {
			c.Retrieval.Backend, c.Retrieval.QdrantURL = "qdrant", "https://q.example:6334?api-key=k"
		}, "retrieval.qdrant_url"},
		{"budget", func(c *config.Config) { c.Search.BudgetCalls = -1 }, "budget_calls"},
		{"token of white space", func(c *config.Config) { c.Server.Token = " " }, "server.token"},
		{"token with a trailing newline", func(c *config.Config) { c.Server.Token = "secret\n" }, "server.token"},
		{"an empty one of the tokens", func(c *config.Config) { c.Server.Tokens = []string{"a", ""} }, "server.tokens (PONDER_TOKENS): token 2 is empty"},
		{"negative max connections", func(c *config.Config) { c.Server.MaxConnections = -1 }, "server.max_connections (PONDER_MAX_CONNECTIONS)"},
		// NaN passed temperature < 0 || > 2 and rate_limit < 0; a NaN or
		// +Inf rate limit refused every request.
		{"NaN temperature", func(c *config.Config) { c.LLM.Temperature = math.NaN() }, "llm.temperature (PONDER_LLM_TEMPERATURE): want 0 to 2, got NaN"},
		{"NaN rate limit", func(c *config.Config) { c.Server.RateLimit = math.NaN() }, "server.rate_limit and server.rate_burst (PONDER_RATE_LIMIT, PONDER_RATE_BURST): want 0 (no limit) or more, finite, got NaN"},
		{"infinite rate limit", func(c *config.Config) { c.Server.RateLimit = math.Inf(1) }, "got +Inf"},
		{"llm timeout", func(c *config.Config) { c.LLM.Timeout = 0 }, "llm.timeout (PONDER_LLM_TIMEOUT)"},
		{"llm retries", func(c *config.Config) { c.LLM.MaxRetries = -1 }, "llm.max_retries (PONDER_LLM_MAX_RETRIES)"},
		{"embed timeout", func(c *config.Config) { c.Retrieval.EmbedTimeout = 0 }, "retrieval.embed_timeout (PONDER_EMBED_TIMEOUT)"},
		{"negative embed timeout", func(c *config.Config) { c.Retrieval.EmbedTimeout = -time.Second }, "retrieval.embed_timeout"},
		{"embed retries", func(c *config.Config) { c.Retrieval.EmbedMaxRetries = -1 }, "retrieval.embed_max_retries (PONDER_EMBED_MAX_RETRIES)"},
		{"mcp message cap", func(c *config.Config) { c.Tools.MCPMaxMessageBytes = 0 }, "tools.mcp_max_message_bytes (PONDER_MCP_MAX_MESSAGE_BYTES)"},
		{"negative max tokens", func(c *config.Config) { c.LLM.MaxTokens = -5 }, "llm.max_tokens (PONDER_LLM_MAX_TOKENS): want 0 or more, got -5"},
		{"negative tool timeout", func(c *config.Config) { c.Tools.Timeout = -time.Second }, "tools.timeout (PONDER_TOOLS_TIMEOUT): want 0 or more, got -1s"},
		{"negative sandbox memory", func(c *config.Config) { c.Tools.Sandbox.MemoryMB = -1 }, "tools.sandbox.memory_mb (PONDER_SANDBOX_MEMORY_MB)"},
		{"negative plugin call timeout", func(c *config.Config) { c.Plugins.CallTimeout = -1 }, "plugins.call_timeout"},
		{"negative mcp message cap", func(c *config.Config) { c.Tools.MCPMaxMessageBytes = -1 }, "tools.mcp_max_message_bytes"},
		{"no traces kept", func(c *config.Config) { c.Server.TracesKept = 0 }, "server.traces_kept"},
		{"negative traces kept", func(c *config.Config) { c.Server.TracesKept = -5 }, "server.traces_kept"},
		{"negative sampling timeout", func(c *config.Config) { c.Server.SamplingTimeout = -time.Second }, "server.sampling_timeout (PONDER_SAMPLING_TIMEOUT)"},
		{"no abandon grace", func(c *config.Config) { c.Plugins.AbandonGrace = 0 }, "plugins.abandon_grace (PONDER_PLUGIN_ABANDON_GRACE)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := config.Default()
			tt.mod(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tt.want)
			}
		})
	}
	ok := config.Default()
	ok.Server.Addr, ok.Server.Token = "0.0.0.0:7800", "secret"
	if err := ok.Validate(); err != nil {
		t.Fatalf("public bind with a token rejected: %v", err)
	}
	ok = config.Default()
	ok.Server.Addr, ok.Server.Tokens = "0.0.0.0:7800", []string{"alice-secret", "bob-secret"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("public bind with per-client tokens rejected: %v", err)
	}
	ok = config.Default()
	ok.Retrieval.Backend, ok.Retrieval.QdrantURL = "qdrant", "https://qdrant.example"
	if err := ok.Validate(); err != nil {
		t.Fatalf("qdrant url without a port (6334) rejected: %v", err)
	}
}

// A duration written as a bare number in a config file is refused: it
// would be nanoseconds ("timeout: 30" timing out every request).
func TestLoadRefusesBareNumberDurations(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, body := range []string{"llm:\n  timeout: 30\n", "search:\n  timeout: 1.5\n", `{"server": {"session_ttl": 3600}}`} {
		file := filepath.Join(dir, "ponder.yaml")
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if c, err := config.Load(file, nil); err == nil || !strings.Contains(err.Error(), "30s") {
			t.Errorf("%q: Load = %v (llm.timeout %v, search.timeout %v), want an error asking for a unit", body, err, c.LLM.Timeout, c.Search.Timeout)
		}
	}
	file := filepath.Join(dir, "ok.yaml")
	if err := os.WriteFile(file, []byte("llm:\n  timeout: 30s\nsearch:\n  timeout: 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(file, nil)
	if err != nil || c.LLM.Timeout != 30*time.Second || c.Search.Timeout != 0 {
		t.Fatalf("Load = %+v, %v", c.Search, err)
	}
}

// A number setting written with a leading zero is refused, naming the
// setting: YAML 1.1 read max_connections: 0123 as 83 (octal) and 08 as 8,
// silently. A variable is refused the same way, so one value never reads
// two ways. 0, 0.5, 0x1f and numbers without a leading zero still read.
func TestLoadRefusesLeadingZeroNumbers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct{ body, want string }{
		{"server:\n  max_connections: 0123\n", "server.max_connections: 0123 has a leading zero, which could be read as octal (010 is 8) and is refused in every number; write it without the leading zero: 123"},
		{"llm:\n  max_tokens: 08\n", "llm.max_tokens: 08 has a leading zero"},
		{"server:\n  max_body_bytes: 0_400\n", "server.max_body_bytes: 0_400 has a leading zero"},
		{"search:\n  budget_calls: -010\n", "write it without the leading zero: -10"},
		{"server:\n  rate_limit: 010\n", "server.rate_limit: 010 has a leading zero"},
		{"tools:\n  sandbox:\n    memory_mb: 0512\n", "tools.sandbox.memory_mb: 0512 has a leading zero"},
		{`{"retrieval": {"top_k": 05}}`, "retrieval.top_k: 05 has a leading zero"},
		{"server:\n  max_searches: 00\n", "write it without the leading zero: 0"},
		// A fraction is held to the rule as a flag is (YAML read 00.5 as
		// 0.5 while sim-llm --accuracy 00.5 was refused).
		{"llm:\n  temperature: 00.5\n", "llm.temperature: 00.5 has a leading zero, which could be read as octal (010 is 8) and is refused in every number; write it without the leading zero: 0.5"},
		{"server:\n  rate_limit: -01e2\n", "server.rate_limit: -01e2 has a leading zero, which could be read as octal (010 is 8) and is refused in every number; write it without the leading zero: -1e2"},
		{"server:\n  rate_limit: 0_0.5\n", "write it without the leading zero: 0.5"},
		// The decoder refused these without naming the setting
		// ("unsupported value: NaN"); plain NaN was "got a string".
		{"llm:\n  temperature: .nan\n", "llm.temperature: .nan is not a finite number; write one in decimal digits"},
		{"server:\n  rate_limit: .inf\n", "server.rate_limit: .inf is not a finite number"},
		{"server:\n  rate_limit: -.Inf\n", "server.rate_limit: -.Inf is not a finite number"},
		{"llm:\n  temperature: NaN\n", "llm.temperature: NaN is not a finite number"},
	} {
		file := filepath.Join(dir, "ponder.yaml")
		if err := os.WriteFile(file, []byte(tc.body), 0o600); err != nil {
			t.Fatal(err)
		}
		if c, err := config.Load(file, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: Load = %v (max_connections %d, max_tokens %d), want an error containing %q", tc.body, err, c.Server.MaxConnections, c.LLM.MaxTokens, tc.want)
		}
	}
	for _, tc := range []struct{ kv, want string }{
		{"PONDER_MAX_CONNECTIONS=0123", "PONDER_MAX_CONNECTIONS: 0123 has a leading zero"},
		{"PONDER_RATE_LIMIT=010", "PONDER_RATE_LIMIT: 010 has a leading zero"},
		{"PONDER_BUDGET_CALLS=-07", "PONDER_BUDGET_CALLS: -07 has a leading zero"},
		{"PONDER_LLM_TEMPERATURE=00.5", "PONDER_LLM_TEMPERATURE: 00.5 has a leading zero, which could be read as octal (010 is 8) and is refused in every number; write it without the leading zero: 0.5"},
		// strconv.ParseFloat reads these; NaN passed every range check.
		{"PONDER_LLM_TEMPERATURE=NaN", "PONDER_LLM_TEMPERATURE: NaN is not a finite number; write one in decimal digits"},
		{"PONDER_RATE_LIMIT=Inf", "PONDER_RATE_LIMIT: Inf is not a finite number"},
		{"PONDER_RATE_LIMIT=-infinity", "PONDER_RATE_LIMIT: -infinity is not a finite number"},
	} {
		if _, err := config.Load("", []string{tc.kv}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.kv, err, tc.want)
		}
	}
	file := filepath.Join(dir, "ok.yaml")
	if err := os.WriteFile(file, []byte("server:\n  max_connections: 123\n  max_searches: 0\n  rate_limit: 0.5\n  max_body_bytes: 0x100\n  rate_burst: 1_000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(file, []string{"PONDER_LLM_MAX_TOKENS=0", "PONDER_LLM_TEMPERATURE=0.25"})
	if err != nil || c.Server.MaxConnections != 123 || c.Server.MaxSearches != 0 || c.Server.RateLimit != 0.5 || c.Server.MaxBodyBytes != 256 ||
		c.Server.RateBurst != 1000 || c.LLM.MaxTokens != 0 || c.LLM.Temperature != 0.25 {
		t.Fatalf("Load = %+v, %v", c.Server, err)
	}
}

// A config file reads as written, though its decoder reads YAML 1.1: the
// key n (llm.n) is not the boolean false, and text settings that look like
// numbers or booleans keep their text (a token 0123 was "83", an all-digit
// key 1.2345679e+22, a model 1.10 "1.1"). Keys are the settings' own
// names: "LLM" or "Timeout" is refused, not matched case-blind (where a
// duration then failed as "want a duration such as 30s").
func TestLoadReadsTextAsWritten(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	load := func(body string) (config.Config, error) {
		file := filepath.Join(dir, "ponder.yaml")
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return config.Load(file, nil)
	}
	c, err := load("llm:\n  n: no\n  model: 1.10\n  api_key: 12345678901234567890123\nserver:\n  token: 0123\n" +
		"  allowed_hosts: [on, 0x1f]\nretrieval: {embed_model: yes, qdrant_api_key: 'it''s'}\n" +
		"tools:\n  mcp_servers:\n    - name: x\n      command: c\n      args: [1.10, --x='a']\n      env: {DEBUG: on, n: 007}\n      timeout: 5s\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.LLM.N != "no" || c.LLM.Model != "1.10" || c.LLM.APIKey != "12345678901234567890123" || c.Server.Token != "0123" ||
		strings.Join(c.Server.AllowedHosts, ",") != "on,0x1f" || c.Retrieval.EmbedModel != "yes" || c.Retrieval.QdrantAPIKey != "it's" {
		t.Fatalf("text settings changed: n %q model %q key %q token %q hosts %q embed %q qdrant key %q",
			c.LLM.N, c.LLM.Model, c.LLM.APIKey, c.Server.Token, c.Server.AllowedHosts, c.Retrieval.EmbedModel, c.Retrieval.QdrantAPIKey)
	}
	m := c.Tools.MCPServers[0]
	if strings.Join(m.Args, " ") != "1.10 --x='a'" || m.Env["DEBUG"] != "on" || m.Env["n"] != "007" || m.Timeout != 5*time.Second {
		t.Fatalf("mcp server changed: %+v", m)
	}
	for body, want := range map[string]string{
		"LLM:\n  timeout: 30s\n":               `unknown setting "LLM"; did you mean "llm"?`,
		"llm:\n  Timeout: 30s\n":               `unknown setting "llm.Timeout"; did you mean "llm.timeout"?`,
		`{"search": {"budget_call": 3}}`:       `unknown setting "search.budget_call"; did you mean "search.budget_calls"?`,
		"tools:\n  mcp_servers:\n  - cmd: x\n": `unknown setting "tools.mcp_servers[0].cmd"`,
	} {
		if _, err := load(body); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", body, err, want)
		}
	}
}

// A PONDER_* variable no setting reads is reported, with the one meant; the
// variables read elsewhere (benchmark files, plugins, tests) are not.
func TestUnknownVariables(t *testing.T) {
	t.Parallel()
	got := config.UnknownVariables([]string{"PONDER_LLM_MODLE=x", "PONDER_TOKEN=t", "PONDER_DATA_SETS=/d", "PONDER_TEST_STORE=1",
		"PONDER_PLUGIN=cookie", "HOME=/root", "PONDER_FROBNICATE=1", "PONDER_LLM_MODLE=y", "PONDER_LLM_URL=u", "PONDER_MODEL=m"})
	want := []string{
		"PONDER_LLM_MODLE is not a setting and is ignored; did you mean PONDER_LLM_MODEL? (`ponder config` lists every setting and its variable)",
		"PONDER_FROBNICATE is not a setting and is ignored (`ponder config` lists every setting and its variable)",
		"PONDER_LLM_URL is not a setting and is ignored; did you mean PONDER_LLM_BASE_URL? (`ponder config` lists every setting and its variable)",
		"PONDER_MODEL is not a setting and is ignored; did you mean PONDER_LLM_MODEL? (`ponder config` lists every setting and its variable)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("UnknownVariables = %q, want %q", got, want)
	}
}

// A leading ~ in a path setting is the home directory, wherever it was
// written: data_dir: ~/.local/share/ponder (the documented default) made a
// folder named "~" in the working directory.
func TestLoadExpandsHome(t *testing.T) {
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip(err)
	}
	file := filepath.Join(t.TempDir(), "ponder.yaml")
	if err := os.WriteFile(file, []byte("data_dir: ~/.local/share/ponder\nplugins:\n  dirs: [~/plugins, /abs, ~x/y]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(file, []string{"PONDER_SANDBOX_READ_ONLY_PATHS=~/venv"})
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != filepath.Join(home, ".local/share/ponder") || c.Tools.Sandbox.ReadOnlyPaths[0] != filepath.Join(home, "venv") ||
		strings.Join(c.Plugins.Dirs, ",") != filepath.Join(home, "plugins")+",/abs,~x/y" {
		t.Fatalf("data_dir %q, read_only_paths %q, plugins.dirs %q", c.DataDir, c.Tools.Sandbox.ReadOnlyPaths, c.Plugins.Dirs)
	}
	if c, err := config.Load("", []string{"PONDER_DATA_DIR=~"}); err != nil || c.DataDir != home {
		t.Fatalf("PONDER_DATA_DIR=~: %q, %v", c.DataDir, err)
	}
}

// Without a home directory a leading ~ cannot be expanded: it is refused,
// naming the setting, instead of making a folder named "~" in the working
// directory (HOME unset, PONDER_DATA_DIR=~/q made ./~/q).
func TestTildeWithoutHomeIsRefused(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		set  func(*config.Config)
		want string
	}{
		{func(c *config.Config) { c.DataDir = "~/q" }, `data_dir (--data-dir, PONDER_DATA_DIR): "~/q" starts with ~`},
		{func(c *config.Config) { c.Plugins.Dirs = []string{"/abs", "~"} }, `plugins.dirs (PONDER_PLUGIN_DIRS): "~" starts with ~`},
		{func(c *config.Config) { c.Tools.Sandbox.ReadOnlyPaths = []string{"~/venv"} }, `tools.sandbox.read_only_paths: "~/venv" starts with ~`},
	} {
		cfg := config.Default()
		c.set(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want an error saying %s", err, c.want)
		}
	}
	cfg := config.Default()
	cfg.Plugins.Dirs = []string{"~x/y"} // another user's home: left as written
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

// A TOML file is refused as such, not as "cannot unmarshal array into Go
// value of type config.Config".
func TestLoadRefusesTOML(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "ponder.toml")
	if err := os.WriteFile(file, []byte("[llm]\nmodel = \"x\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(file, nil); err == nil || !strings.Contains(err.Error(), "Ponder reads YAML or JSON files, not toml") {
		t.Fatalf("Load = %v", err)
	}
}

// The default data_dir honours XDG_DATA_HOME as the XDG Base Directory
// spec asks (an absolute path; a relative one is ignored), and data kept
// at ~/.local/share/ponder before stays found until the new folder exists.
func TestDefaultDataDirFollowsXDG(t *testing.T) {
	for _, tc := range []struct {
		name string
		xdg  string   // XDG_DATA_HOME, relative to the temporary folder when it starts with /
		dirs []string // folders that exist, relative to it
		want string   // relative to it
	}{
		{name: "unset", want: "home/.local/share/ponder"},
		{name: "set", xdg: "/xdg", want: "xdg/ponder"},
		{name: "relative is ignored", xdg: "rel", want: "home/.local/share/ponder"},
		{name: "the old folder is kept", xdg: "/xdg", dirs: []string{"home/.local/share/ponder"}, want: "home/.local/share/ponder"},
		{name: "the new folder wins once it exists", xdg: "/xdg", dirs: []string{"home/.local/share/ponder", "xdg/ponder"}, want: "xdg/ponder"},
		{name: "the spec's default written out", xdg: "/home/.local/share", dirs: []string{"home/.local/share/ponder"}, want: "home/.local/share/ponder"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			t.Setenv("HOME", filepath.Join(root, "home"))
			xdg := tc.xdg
			if strings.HasPrefix(xdg, "/") {
				xdg = root + xdg
			}
			t.Setenv("XDG_DATA_HOME", xdg)
			for _, d := range tc.dirs {
				if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			c, err := config.Load("", nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(root, tc.want); c.DataDir != want {
				t.Errorf("data_dir %q, want %q", c.DataDir, want)
			}
			// A data_dir that is set is used as it is.
			if c, err := config.Load("", []string{"PONDER_DATA_DIR=/elsewhere"}); err != nil || c.DataDir != "/elsewhere" {
				t.Errorf("PONDER_DATA_DIR=/elsewhere: %q, %v", c.DataDir, err)
			}
		})
	}
}
