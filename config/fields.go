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
var secretFields = map[string]bool{"llm.api_key": true, "server.token": true, "retrieval.qdrant_api_key": true, "retrieval.embed_api_key": true}

// urlFields are printed without their password.
var urlFields = map[string]bool{"llm.base_url": true, "retrieval.qdrant_url": true, "retrieval.embed_url": true}

// Fields lists every setting of c in declaration order. Secret values are
// replaced by "(set)" or "": the secret settings, URLs' passwords, and an
// MCP server's bearer token, header values and environment values (where
// its API keys go). tools.mcp_servers is a list of maps, as the file
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
				if fv.String() != "" {
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
			def, note = "~/.local/share/ponder", " (`./ponder-data` without a home directory)"
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
			m["args"] = s.Args
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
