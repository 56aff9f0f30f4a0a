package config

import (
	"fmt"
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

// Fields lists every setting of c in declaration order. Secret values are
// replaced by "(set)" or "".
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
		switch {
		case f.Path == "data_dir":
			def = "~/.local/share/ponder"
		case def == "" || def == "[]" || def == "map[]":
			def = "(empty)"
		}
		env := f.Env
		if env == "" {
			env = "(file only)"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | `%s` |\n", f.Path, env, f.Type, def)
	}
	return b.String()
}
