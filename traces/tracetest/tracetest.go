// Package tracetest checks traces against docs/trace.schema.json, for the
// tests of every package that produces traces.
//
//	b, _ := json.Marshal(res.Trace)
//	if err := tracetest.Validate(t, b); err != nil {
//		t.Errorf("trace does not match the schema: %v", err)
//	}
package tracetest

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var (
	once    sync.Once
	schema  *jsonschema.Schema
	loadErr error
)

// SchemaPath is docs/trace.schema.json of this repository, found from this
// file's location so tests of any package can use it.
func SchemaPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "docs", "trace.schema.json")
}

func load() (*jsonschema.Schema, error) {
	once.Do(func() {
		raw, err := os.ReadFile(SchemaPath())
		if err != nil {
			loadErr = err
			return
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			loadErr = err
			return
		}
		c := jsonschema.NewCompiler()
		if loadErr = c.AddResource("trace.schema.json", doc); loadErr != nil {
			return
		}
		schema, loadErr = c.Compile("trace.schema.json")
	})
	return schema, loadErr
}

// Validate reports how the JSON trace b departs from the schema (nil when it
// matches). A schema that cannot be read or compiled fails the test.
func Validate(tb testing.TB, b []byte) error {
	tb.Helper()
	s, err := load()
	if err != nil {
		tb.Fatalf("trace schema: %v", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return err
	}
	return s.Validate(doc)
}
