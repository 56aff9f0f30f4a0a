package config

import (
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"time"
)

// Field is one setting: its path in the config file, its environment
// variable and its value in some Config.
type Field struct {
	Path  string // e.g. llm.base_url
	Env   string // e.g. PONDER_LLM_BASE_URL; empty when the file only
	Type  string
	Value any
}

// secretFields are never printed.
var secretFields = map[string]bool{"llm.api_key": true, "server.token": true, "server.tokens": true, "retrieval.qdrant_api_key": true, "retrieval.embed_api_key": true}

// urlFields are printed without their password.
var urlFields = map[string]bool{"llm.base_url": true, "retrieval.qdrant_url": true, "retrieval.embed_url": true}

// Fields lists every setting of c in declaration order. Secret values are
// replaced by "(set)" or "": the secret settings, URLs' passwords, and an
// MCP server's bearer token, header values and environment values (where
// its API keys go) and the secrets in its arguments (redactedArgs). tools.mcp_servers is a list of maps, as the file
// writes it.
func Fields(c Config) []Field {
	var out []Field
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			path := prefix + name
			fv := v.Field(i)
			if f.Type.Kind() == reflect.Struct {
				walk(fv, path+".")
				continue
			}
			val := fv.Interface()
			if d, ok := val.(time.Duration); ok {
				val = d.String()
			}
			if secretFields[path] {
				if fv.Kind() == reflect.Slice { // server.tokens
					if fv.Len() > 0 {
						val = fmt.Sprintf("(%d set)", fv.Len())
					}
				} else if fv.String() != "" {
					val = "(set)"
				}
			}
			if urlFields[path] {
				val = redactedURL(fv.String())
			}
			if servers, ok := val.([]MCPServer); ok {
				val = redactedServers(servers)
			}
			typ := f.Type.String()
			if f.Type == durationType {
				typ = "duration"
			}
			if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
				typ = "list of " + f.Type.Elem().Name()
			}
			out = append(out, Field{Path: path, Env: f.Tag.Get("env"), Type: typ, Value: val})
		}
	}
	walk(reflect.ValueOf(c), "")
	return out
}

// Markdown renders the settings of Default() as a table for the docs.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| setting (file) | environment | type | default |\n|---|---|---|---|\n")
	for _, f := range Fields(Default()) {
		def := fmt.Sprint(f.Value)
		note := ""
		switch {
		case f.Path == "data_dir":
			def, note = "$XDG_DATA_HOME/ponder", " (`~/.local/share/ponder` when `XDG_DATA_HOME` is unset or not absolute, or while only that one exists; `./ponder-data` without either)"
		case def == "" || def == "[]" || def == "map[]":
			def = "(empty)"
		}
		env := f.Env
		if env == "" {
			env = "(file only)"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | `%s`%s |\n", f.Path, env, f.Type, def, note)
	}
	return b.String()
}

// redactedURL is raw without the password of its user information and
// the values of its query (an MCP server's ?api_key=...).
func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	changed := false
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			changed = true
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{"xxxxx"}
		}
		u.RawQuery, changed = q.Encode(), true
	}
	if !changed {
		return raw
	}
	return u.String()
}

// redactedServers is the MCP servers as their file writes them, with
// their secrets replaced by "(set)".
func redactedServers(servers []MCPServer) []map[string]any {
	var out []map[string]any
	hide := func(m map[string]string) map[string]string {
		h := map[string]string{}
		for k := range m {
			h[k] = "(set)"
		}
		return h
	}
	for _, s := range servers {
		m := map[string]any{"name": s.Name}
		if s.Command != "" {
			m["command"] = s.Command
		}
		if len(s.Args) > 0 {
			m["args"] = redactedArgs(s.Args)
		}
		if len(s.Env) > 0 {
			m["env"] = hide(s.Env)
		}
		if s.URL != "" {
			m["url"] = redactedURL(s.URL)
		}
		if len(s.Headers) > 0 {
			m["headers"] = hide(s.Headers)
		}
		if s.Bearer != "" {
			m["bearer"] = "(set)"
		}
		if s.Timeout != 0 {
			m["timeout"] = s.Timeout.String()
		}
		if len(s.Tools) > 0 {
			m["tools"] = s.Tools
		}
		out = append(out, m)
	}
	return out
}

// redactedArgs is an MCP server's command-line arguments with what looks
// like a secret replaced by "(set)": servers take their keys as
// arguments too (--api-key sk-..., --token=..., -e GITHUB_TOKEN=... for
// docker, a database URL with its password). Arguments are free text, so
// this goes by shape and leans to hiding:
//   - the value of an option whose name reads as a secret (secretName),
//     given as --name=value or as the argument after --name;
//   - NAME=value where NAME reads as one (an environment variable
//     passed on, as by docker -e or env);
//   - a header's value after --header or -H (mcp-remote), as the
//     server's own headers are hidden;
//   - an argument that starts as well-known keys do (tokenPrefixes);
//   - URLs' passwords and query values, as redactedURL.
func redactedArgs(args []string) []string {
	out := make([]string, len(args))
	hideNext, headerNext := false, false
	for i, a := range args {
		// A long option after a secret-named one is not its value: that
		// one was a switch.
		value := (hideNext && !strings.HasPrefix(a, "--")) || headerNext
		name, _, colon := strings.Cut(a, ":")
		switch {
		case hideNext && value:
			out[i] = "(set)"
		case headerNext && colon:
			out[i] = name + ": (set)"
		default:
			out[i] = redactedArg(a)
		}
		// Only an option (-x, --x) takes the next argument as its value.
		// --no-auth and the like are switches that turn one off.
		opt := strings.HasPrefix(a, "-") && !strings.Contains(a, "=") && !value
		off := strings.HasPrefix(strings.TrimLeft(a, "-"), "no-") || strings.HasPrefix(strings.TrimLeft(a, "-"), "no_")
		hideNext = opt && !off && secretName(a)
		headerNext = opt && (a == "--header" || a == "-H")
	}
	return out
}

// redactedArg is one argument with its secret hidden (redactedArgs).
func redactedArg(a string) string {
	name, value, hasValue := strings.Cut(a, "=")
	if strings.Contains(name, "://") {
		return redactedURL(a)
	}
	if hasValue && strings.Contains(value, "://") {
		// --db=postgres://user:password@host/db
		return name + "=" + redactedURL(value)
	}
	if hasValue && secretName(name) {
		return name + "=(set)"
	}
	if name, _, ok := strings.Cut(a, ":"); ok && !strings.Contains(a, "://") && secretName(name) {
		// A header written whole: "Authorization: Bearer ...".
		return name + ": (set)"
	}
	for _, p := range tokenPrefixes {
		if strings.HasPrefix(a, p) {
			return "(set)"
		}
		if hasValue && strings.HasPrefix(value, p) {
			return name + "=(set)"
		}
	}
	return a
}

// tokenPrefixes start well-known API keys and tokens: OpenAI and
// Anthropic (sk-), GitHub (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_),
// GitLab (glpat-), Slack (xox?-), Hugging Face (hf_), AWS access keys
// (AKIA), Google (AIza), Stripe (sk_, rk_), JWTs (eyJ) and a bearer
// token written out.
var tokenPrefixes = []string{"sk-", "sk_", "rk_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-",
	"xoxb-", "xoxp-", "xoxa-", "xoxs-", "xapp-", "hf_", "AKIA", "AIza", "eyJ", "Bearer ", "bearer "}

// secretWords end the names of options and variables that hold secrets
// (api-key, apiKey, GITHUB_TOKEN, PGPASSWORD, client_secret).
var secretWords = []string{"key", "token", "secret", "password", "passwd", "pwd", "credential", "credentials"}

// secretName reports whether an option's or variable's name reads as a
// secret's: one of its words (split at - _ . and spaces, ignoring case)
// ends with a secretWords entry or is auth, authorization, bearer, pat,
// or cookie. "tokens" (--max-tokens) is a count, not a secret.
func secretName(name string) bool {
	words := strings.FieldsFunc(strings.ToLower(strings.TrimLeft(name, "-")), func(r rune) bool {
		return r == '-' || r == '_' || r == '.' || r == ' '
	})
	for _, w := range words {
		switch w {
		case "auth", "authorization", "bearer", "pat", "cookie":
			return true
		}
		for _, s := range secretWords {
			if strings.HasSuffix(w, s) {
				return true
			}
		}
	}
	return false
}
