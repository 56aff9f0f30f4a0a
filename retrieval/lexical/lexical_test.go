package lexical

import (
	"slices"
	"testing"
)

func TestTokenize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
	}{
		{"The admin console listens on port 7443.", []string{"admin", "console", "listen", "port", "7443"}},
		{"Backups, restores & snapshots!", []string{"backup", "restore", "snapshot"}},
		{"Café ÜBER straße", []string{"café", "über", "straße"}},
		{"policies classes", []string{"policy", "classe"}},
		{"", []string{}},
	}
	for _, tc := range tests {
		if got := Tokenize(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("Tokenize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSparseVectors(t *testing.T) {
	t.Parallel()
	idx, val := DocSparse("port port admin")
	if len(idx) != 2 || !slices.IsSorted(idx) {
		t.Fatalf("DocSparse indices %v", idx)
	}
	var port, admin float32
	for i, id := range idx {
		switch id {
		case TermID("port"):
			port = val[i]
		case TermID("admin"):
			admin = val[i]
		}
	}
	if !(port > admin && admin > 0) {
		t.Fatalf("term weights port %v admin %v: a repeated term must weigh more", port, admin)
	}
	qi, qv := QuerySparse("admin port port")
	if len(qi) != 2 || qv[0] != 1 || qv[1] != 1 {
		t.Fatalf("QuerySparse = %v %v", qi, qv)
	}
	if IDF(100, 1) <= IDF(100, 50) || IDF(100, 100) < 0 {
		t.Fatal("IDF must fall with document frequency and stay non-negative")
	}
}
