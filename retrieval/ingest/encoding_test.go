package ingest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/ponder-rlm/ponder/retrieval"
)

// copyDir copies the files of the folder src into a new temporary folder.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestEncodings ingests the fixtures of testdata/encodings (written by
// Python's codecs, as Windows tools and old editors write them) and finds
// their words; binary files are still skipped with a reason.
func TestEncodings(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := copyDir(t, "testdata/encodings")
	st := openStore(t)
	sum, err := New(st, &Options{Collection: "docs"}).Run(ctx, []string{dir}, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	files := byPath(sum)
	for _, tc := range []struct {
		file     string
		status   Status
		note     string // in FileResult.Note (or Reason when skipped)
		encoding string // chunk meta "encoding"
		query    string // finds the file's chunk ...
		text     string // ... whose text holds this, decoded
		title    string
	}{
		{"windows-1252.txt", Added, "read as Windows-1252", "windows-1252", "crème brûlée",
			"Crème brûlée costs €5 – “smart quotes” … Œuvre, Šarka and Žofie™ were served.", "windows-1252.txt"},
		{"latin-1.txt", Added, "read as Windows-1252", "windows-1252", "Bürgersteige Ångström",
			"Größe der Bürgersteige in Zürich, señor. Ångström measured the façade.", "latin-1.txt"},
		{"utf-16le-bom.md", Added, "read as UTF-16LE (byte order mark)", "utf-16le", "Grönland Sitzung",
			"Die Sitzung in Zürich beschloss das Budget 😀 für Grönland.", "Protokoll"},
		{"utf-16be-bom.txt", Added, "read as UTF-16BE (byte order mark)", "utf-16be", "Kraków Łódź",
			"Minutes of the Kraków meeting: the Łódź ferry schedule was approved.", "utf-16be-bom.txt"},
		// The mark is dropped, so the first line is a heading again.
		{"utf-8-bom.md", Added, "", "", "Reykjavík office", "The Reykjavík office opens at nine.", "Überblick"},
		// Mostly UTF-8 with one stray Latin-1 byte: read as UTF-8, not
		// garbled into Windows-1252.
		{"stray-byte.txt", Added, "1 byte that is not valid UTF-8 became U+FFFD", "", "Malmö São Paulo",
			"Naïve café résumé in São Paulo: Kyōto and Malmö are twinned. One stray \uFFFD byte.", "stray-byte.txt"},
		// No byte order mark: guessed from where the NUL bytes fall.
		{"utf-16le-nobom.txt", Added, "read as UTF-16LE (no byte order mark: guessed from its NUL bytes)", "utf-16le", "Szczecin ferry",
			"The Szczecin ferry leaves at 06:40; tickets cost 45 zł.", "utf-16le-nobom.txt"},
		{"utf-16be-nobom.md", Added, "read as UTF-16BE (no byte order mark: guessed from its NUL bytes)", "utf-16be", "Shenzhen office",
			"The Shenzhen office (深圳办公室) moves to floor 12 in March.", "会议记录"},
		{"utf-32le-bom.txt", Skipped, "UTF-32", "", "", "", ""},
		// NULs where UTF-16 has them, but the units are control
		// characters (little-endian numbers), and NUL padding (NULs at
		// both offsets): binary still.
		{"samples.txt", Skipped, "binary content (a NUL byte)", "", "", "", ""},
		{"padded.txt", Skipped, "binary content (a NUL byte)", "", "", "", ""},
		{"archive.txt", Skipped, "binary content (a NUL byte)", "", "", "", ""},
		{"noise.log", Skipped, "binary content (control bytes", "", "", "", ""},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f := files[tc.file]
			if f.Status != tc.status {
				t.Fatalf("%s: %+v, want %s", tc.file, f, tc.status)
			}
			got := f.Note
			if tc.status == Skipped {
				got = f.Reason
			}
			if tc.note == "" && got != "" || !strings.Contains(got, tc.note) {
				t.Fatalf("%s: note/reason %q, want %q", tc.file, got, tc.note)
			}
			if tc.query == "" {
				return
			}
			hits, err := st.Search(ctx, "docs", retrieval.Query{Text: tc.query, K: 1})
			if err != nil || len(hits) != 1 {
				t.Fatalf("search %q: %v %v", tc.query, hits, err)
			}
			h := hits[0]
			if filepath.Base(h.Source) != tc.file || !strings.Contains(h.Text, tc.text) || h.Meta["encoding"] != tc.encoding || h.Title != tc.title {
				t.Fatalf("search %q: source %s title %q encoding %q text %q\nwant %s, title %q, encoding %q, text with %q",
					tc.query, h.Source, h.Title, h.Meta["encoding"], h.Text, tc.file, tc.title, tc.encoding, tc.text)
			}
			if strings.ContainsAny(h.Text, "\r\uFEFF") {
				t.Fatalf("%s: a CR or byte order mark is left in %q", tc.file, h.Text)
			}
		})
	}
	// Reading them again changes nothing: the encoding is part of the
	// params the stored version is compared with.
	sum, err = New(st, &Options{Collection: "docs"}).Run(ctx, []string{dir}, nil)
	if err != nil || sum.Unchanged != 8 || sum.Added+sum.Updated != 0 {
		t.Fatalf("second run: %+v, %v; want 8 unchanged", sum, err)
	}
}

// TestWindows1252Table checks every defined byte above 0x7F against
// Python's cp1252 codec (testdata/cp1252-high.*), and the five undefined
// ones against the WHATWG mapping (the C1 control of the same value).
func TestWindows1252Table(t *testing.T) {
	t.Parallel()
	in, err := os.ReadFile("testdata/cp1252-high.bin")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/cp1252-high.utf8")
	if err != nil {
		t.Fatal(err)
	}
	if got := decode1252(in); got != string(want) {
		t.Fatalf("decode1252 = %q\nwant        %q", got, want)
	}
	if got := decode1252([]byte{0x81, 0x8D, 0x8F, 0x90, 0x9D, 'a'}); got != "\u0081\u008D\u008F\u0090\u009Da" {
		t.Fatalf("undefined bytes: %q", got)
	}
	if enc, err := sniffText(in); err != nil || enc != encWindows1252 {
		t.Fatalf("sniffText(cp1252 bytes) = %q, %v", enc, err)
	}
}

// TestGuessUTF16 tells UTF-16 without a byte order mark from binary data
// and from ASCII with a stray NUL.
func TestGuessUTF16(t *testing.T) {
	t.Parallel()
	le := func(s string) []byte {
		var b []byte
		for _, u := range utf16.Encode([]rune(s)) {
			b = append(b, byte(u), byte(u>>8))
		}
		return b
	}
	be := func(s string) []byte {
		var b []byte
		for _, u := range utf16.Encode([]rune(s)) {
			b = append(b, byte(u>>8), byte(u))
		}
		return b
	}
	long := strings.Repeat("Die Sitzung in Zürich beschloss das Budget. ", 20)
	for _, tc := range []struct {
		name string
		in   []byte
		want string // "" for binary
	}{
		{"LE Latin", le(long), encUTF16LEGuess},
		{"BE Latin", be(long), encUTF16BEGuess},
		{"LE emoji pair and CJK", le("Plan 😀 計画 for Q3\r\n"), encUTF16LEGuess},
		{"BE tiny", be("hi"), encUTF16BEGuess},
		{"LE with one control character in 200 units", le(long[:150] + "\x07" + long[:150]), encUTF16LEGuess},
		{"odd length", le(long)[1:], ""},
		{"NUL characters", le("abc\x00\x00\x00\x00def\x00\x00\x00\x00gh"), ""},
		{"control characters", le(strings.Repeat("\x01\x02\x03ab", 10)), ""},
		{"lone surrogates", append(le(strings.Repeat("ab", 10)), 0x00, 0xD8, 0x00, 0xD8, 0x00, 0xD8), ""},
		{"private use", le(strings.Repeat("\ue000\ue001a", 10)), ""},
		{"ASCII word with a NUL", []byte("now\x00binary"), ""},
		{"NUL-separated fields", []byte("key\x00value\x00name\x00walrus\x00"), ""},
		{"ASCII with one stray NUL", append([]byte(strings.Repeat("plain ascii text ", 10)), 0, 'x'), ""},
		{"uint32 little-endian", []byte{1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sniffText(tc.in)
			if tc.want == "" {
				if err == nil || !strings.Contains(err.Error(), "binary") {
					t.Fatalf("sniffText = %q, %v; want binary", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("sniffText = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestDecodeUTF16Edges: surrogate pairs, unpaired surrogates and an odd
// last byte.
func TestDecodeUTF16Edges(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   []byte
		be   bool
		want string
		note string
	}{
		{"pair", []byte{0x3D, 0xD8, 0x00, 0xDE, 'a', 0}, false, "😀a", "read as UTF-16LE (byte order mark)"},
		{"pair BE", []byte{0xD8, 0x3D, 0xDE, 0x00}, true, "😀", "read as UTF-16BE (byte order mark)"},
		{"lone high", []byte{0x3D, 0xD8, 'a', 0}, false, "\uFFFDa", ""},
		{"lone low at end", []byte{'a', 0, 0x00, 0xDE}, false, "a\uFFFD", ""},
		{"odd byte", []byte{'a', 0, 'b'}, false, "a\uFFFD", "odd last byte"},
	} {
		got, note := decodeUTF16(tc.in, tc.be)
		if got != tc.want || !strings.Contains(note, tc.note) {
			t.Errorf("%s: %q (%s), want %q (%s)", tc.name, got, note, tc.want, tc.note)
		}
	}
}

// A Windows-1252 file stored before ingest decoded it (its bytes read as
// U+FFFD, under the params of plain text) is read again, not taken for
// unchanged.
func TestEncodingReingestsOldVersion(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := copyDir(t, "testdata/encodings")
	path := filepath.Join(dir, "windows-1252.txt")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	ing := New(st, &Options{Collection: "docs"})
	if _, err := st.EnsureCollection(ctx, retrieval.CollectionSpec{Name: "docs"}); err != nil {
		t.Fatal(err)
	}
	old := retrieval.Document{Source: path, Hash: retrieval.HashBytes(data), Params: ing.Params(), Bytes: int64(len(data)),
		Chunks: []retrieval.Chunk{{Text: strings.ToValidUTF8(string(data), "\uFFFD")}}}
	if err := st.Put(ctx, "docs", []retrieval.Document{old}); err != nil {
		t.Fatal(err)
	}
	sum, err := ing.Run(ctx, []string{path}, nil)
	if err != nil || sum.Updated != 1 {
		t.Fatalf("re-ingest of a file stored undecoded: %+v, %v; want it updated", sum, err)
	}
	if hits, _ := st.Search(ctx, "docs", retrieval.Query{Text: "brûlée", K: 1}); len(hits) != 1 {
		t.Fatalf("brûlée not found after the update: %v", hits)
	}
}
