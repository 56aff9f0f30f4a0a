package ingest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"golang.org/x/net/html"
)

// Extracted is a document's text with the structure the chunker follows.
type Extracted struct {
	Text  string
	Title string
	// Type is the document type: md, txt, html, pdf, or the source
	// language (go, py, ...).
	Type string
	// Heads are the section headings, in order; a heading's Start..End is
	// its line in Text.
	Heads []Head
	// Breaks are offsets in Text where a paragraph or block ends: the
	// preferred places to cut chunks.
	Breaks []int
	// Pages are the offsets where pages 2, 3, ... start (PDF).
	Pages []int
	// Encoding is what a text file was decoded from when it was not plain
	// UTF-8 (utf-16le, utf-16be, windows-1252; "utf-8-bom" for UTF-8
	// with a byte order mark), and Note says so for the user ("" when
	// nothing was assumed).
	Encoding string
	Note     string
}

// Head is one heading.
type Head struct {
	Start, End int
	Level      int
	Text       string
}

// ErrUnsupported marks files whose type ingest does not read.
var ErrUnsupported = errors.New("unsupported file type")

// ErrMalformed marks files that could not be parsed.
var ErrMalformed = errors.New("malformed file")

// sourceExts maps source-file extensions to their type.
var sourceExts = map[string]string{
	".go": "go", ".py": "py", ".js": "js", ".mjs": "js", ".ts": "ts", ".tsx": "ts", ".jsx": "js", ".java": "java",
	".kt": "kotlin", ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".hpp": "cpp", ".cs": "csharp", ".rs": "rust",
	".rb": "ruby", ".php": "php", ".swift": "swift", ".scala": "scala", ".sh": "sh", ".bash": "sh", ".sql": "sql",
	".proto": "proto", ".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".json": "json", ".ini": "ini", ".cfg": "ini",
	".lua": "lua", ".r": "r", ".pl": "perl", ".ex": "elixir", ".exs": "elixir", ".hs": "haskell", ".ml": "ocaml",
	".tf": "terraform", ".css": "css", ".scss": "css", ".vue": "vue", ".svelte": "svelte", ".dart": "dart", ".zig": "zig",
	".make": "make", ".mk": "make", ".dockerfile": "docker", ".gradle": "gradle", ".xml": "xml", ".csv": "csv",
}

var plainNames = map[string]string{"makefile": "make", "dockerfile": "docker", "readme": "txt", "license": "txt"}

// TypeOf returns the document type of a file name, or "" if unsupported.
func TypeOf(name string) string {
	ext := strings.ToLower(filepath.Ext(name))
	switch ext {
	case ".md", ".markdown", ".mdx":
		return "md"
	case ".txt", ".text", ".rst", ".adoc", ".org", ".log":
		return "txt"
	case ".html", ".htm", ".xhtml":
		return "html"
	case ".pdf":
		return "pdf"
	}
	if t, ok := sourceExts[ext]; ok {
		return t
	}
	return plainNames[strings.ToLower(filepath.Base(name))]
}

// IsBinary reports whether data looks like a binary file: a NUL byte in its
// first 8 KiB.
func IsBinary(data []byte) bool {
	return bytes.IndexByte(data[:min(len(data), 8192)], 0) >= 0
}

// Extract reads the text and structure of a document named name (its
// extension picks the reader). PDFs are read with poppler's pdftotext.
// Text files are decoded first: a byte order mark picks UTF-8, UTF-16LE or
// UTF-16BE, and text that is not valid UTF-8 is read as Windows-1252
// (Extracted.Note says what was assumed).
func Extract(ctx context.Context, name string, data []byte) (Extracted, error) {
	enc := ""
	if t := TypeOf(name); t != "" && t != "pdf" {
		var err error
		if enc, err = sniffText(data); err != nil {
			return Extracted{}, fmt.Errorf("%w: %v in a .%s file", ErrMalformed, err, t)
		}
	}
	return extract(ctx, name, data, enc, 0)
}

// extract is Extract with the text encoding already sniffed (enc, unused
// for PDFs).
//
// A PDF whose text is longer than maxText bytes (0: the default
// max_file_bytes, 50 MiB) is refused with errTextTooLarge: a few MiB of
// PDF can hold pages that repeat one content stream, hundreds of MiB of
// text, and ingest held all of it (and its chunks) in memory.
func extract(ctx context.Context, name string, data []byte, enc string, maxText int64) (Extracted, error) {
	typ := TypeOf(name)
	base := filepath.Base(name)
	var ex Extracted
	switch typ {
	case "":
		return ex, fmt.Errorf("%w %q (ingest reads .md .txt .html .pdf and source files)", ErrUnsupported, filepath.Ext(name))
	case "pdf":
		var err error
		if ex, err = extractPDF(ctx, data, maxText); err != nil {
			return ex, err
		}
	default:
		text, note := decodeText(data, enc)
		text = strings.ReplaceAll(text, "\r\n", "\n")
		switch typ {
		case "md":
			ex = extractMarkdown(text)
		case "html":
			ex = extractHTML(text)
		default:
			ex = Extracted{Text: text, Breaks: blankLines(text)}
		}
		if enc != encUTF8 {
			ex.Encoding = encodingName(enc)
		}
		ex.Note = note
	}
	ex.Type = typ
	if ex.Title == "" && len(ex.Heads) > 0 {
		ex.Title = ex.Heads[0].Text
	}
	if ex.Title == "" {
		ex.Title = base
	}
	return ex, nil
}

// blankLines returns the offsets just after each run of blank lines.
func blankLines(text string) []int {
	var out []int
	i := 0
	for {
		j := strings.Index(text[i:], "\n\n")
		if j < 0 {
			return out
		}
		k := i + j + 1
		for k < len(text) && (text[k] == '\n' || text[k] == ' ' || text[k] == '\t') {
			k++
		}
		out = append(out, k)
		i = k
		if i >= len(text) {
			return out
		}
	}
}

var (
	atxHeading = regexp.MustCompile(`^(#{1,6})[ \t]+(.+?)[ \t#]*$`)
	fence      = regexp.MustCompile("^\\s{0,3}(```|~~~)")
	frontTitle = regexp.MustCompile(`(?m)^title:\s*["']?(.+?)["']?\s*$`)
)

func extractMarkdown(text string) Extracted {
	ex := Extracted{Text: text}
	off, skipTo := 0, 0
	// YAML front matter: its title names the document; it is not text.
	if strings.HasPrefix(text, "---\n") {
		if end := strings.Index(text[4:], "\n---"); end >= 0 {
			if m := frontTitle.FindStringSubmatch(text[4 : 4+end]); m != nil {
				ex.Title = m[1]
			}
			skipTo = 4 + end + len("\n---")
		}
	}
	inFence := false
	prevLine, prevStart, prevBlank := "", 0, true
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), len(text)+1)
	for sc.Scan() {
		line := sc.Text()
		start := off
		off += len(line) + 1
		end := min(off-1, len(text))
		if start < skipTo {
			continue
		}
		if fence.MatchString(line) {
			inFence = !inFence
			if !inFence {
				ex.Breaks = append(ex.Breaks, min(off, len(text)))
			}
			prevBlank = false
			prevLine = ""
			continue
		}
		if inFence {
			continue
		}
		if strings.TrimSpace(line) == "" {
			if !prevBlank {
				ex.Breaks = append(ex.Breaks, min(off, len(text)))
			}
			prevBlank = true
			prevLine = ""
			continue
		}
		if m := atxHeading.FindStringSubmatch(line); m != nil {
			ex.Heads = append(ex.Heads, Head{Start: start, End: end, Level: len(m[1]), Text: strings.TrimSpace(m[2])})
			if len(m[1]) == 1 && ex.Title == "" {
				ex.Title = strings.TrimSpace(m[2])
			}
		} else if prevLine != "" && (isRule(line, '=') || isRule(line, '-')) {
			// Setext heading: the previous line underlined.
			lvl := 1
			if line[0] == '-' || strings.TrimSpace(line)[0] == '-' {
				lvl = 2
			}
			ex.Heads = append(ex.Heads, Head{Start: prevStart, End: end, Level: lvl, Text: strings.TrimSpace(prevLine)})
			if lvl == 1 && ex.Title == "" {
				ex.Title = strings.TrimSpace(prevLine)
			}
			prevLine = ""
			prevBlank = false
			continue
		}
		prevLine, prevStart, prevBlank = line, start, false
	}
	return ex
}

func isRule(line string, c byte) bool {
	t := strings.TrimSpace(line)
	if len(t) < 2 {
		return false
	}
	for i := 0; i < len(t); i++ {
		if t[i] != c {
			return false
		}
	}
	return true
}

// extractHTML turns HTML into text: headings and blocks become lines and
// paragraph breaks; scripts, styles and navigation are dropped.
func extractHTML(src string) Extracted {
	var ex Extracted
	var b strings.Builder
	z := html.NewTokenizer(strings.NewReader(src))
	skip := 0
	pre := 0
	var title strings.Builder
	inTitle := false
	headLevel, headStart := 0, 0
	lastSpace := true
	breakPara := func() {
		s := b.String()
		if len(s) == 0 || strings.HasSuffix(s, "\n\n") {
			return
		}
		if strings.HasSuffix(s, "\n") {
			b.WriteString("\n")
		} else {
			b.WriteString("\n\n")
		}
		ex.Breaks = append(ex.Breaks, b.Len())
		lastSpace = true
	}
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			ex.Text = strings.TrimRight(b.String(), "\n ") + "\n"
			ex.Title = strings.TrimSpace(title.String())
			return ex
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			tag := string(name)
			start := tt == html.StartTagToken
			switch tag {
			case "script", "style", "noscript", "template", "svg", "nav", "iframe", "object":
				if tt == html.SelfClosingTagToken {
					continue
				}
				if start {
					skip++
				} else if skip > 0 {
					skip--
				}
				continue
			case "title":
				inTitle = start
				continue
			case "pre":
				if start {
					pre++
				} else if pre > 0 {
					pre--
				}
				breakPara()
			case "h1", "h2", "h3", "h4", "h5", "h6":
				if start {
					breakPara()
					headLevel, headStart = int(tag[1]-'0'), b.Len()
				} else if headLevel > 0 {
					text := strings.TrimSpace(b.String()[headStart:])
					if text != "" {
						ex.Heads = append(ex.Heads, Head{Start: headStart, End: b.Len(), Level: headLevel, Text: text})
					}
					headLevel = 0
					breakPara()
				}
			case "br":
				b.WriteString("\n")
				lastSpace = true
			case "p", "div", "li", "tr", "section", "article", "blockquote", "table", "ul", "ol", "dl", "dt", "dd",
				"header", "footer", "main", "aside", "figure", "figcaption", "hr", "form":
				breakPara()
			case "td", "th":
				if !lastSpace {
					b.WriteString(" ")
					lastSpace = true
				}
			}
		case html.TextToken:
			if skip > 0 {
				continue
			}
			t := html.UnescapeString(string(z.Text()))
			if inTitle {
				title.WriteString(t)
				continue
			}
			if pre > 0 {
				b.WriteString(t)
				lastSpace = strings.HasSuffix(t, "\n") || strings.HasSuffix(t, " ")
				continue
			}
			for _, f := range strings.FieldsFunc(t, func(r rune) bool { return r == ' ' || r == '\n' || r == '\t' || r == '\r' }) {
				if !lastSpace {
					b.WriteString(" ")
				}
				b.WriteString(f)
				lastSpace = false
			}
			if len(t) > 0 && strings.ContainsAny(t[len(t)-1:], " \n\t\r") {
				lastSpace = true
				if b.Len() > 0 && !strings.HasSuffix(b.String(), " ") && !strings.HasSuffix(b.String(), "\n") {
					b.WriteString(" ")
				}
			}
		}
	}
}

// PDFToText is the pdftotext binary (poppler-utils); tests may point it
// elsewhere.
var PDFToText = "pdftotext"

// PDFTimeout bounds one PDF's text extraction. A PDF of a few hundred KiB
// whose pages repeat one long drawing (no text) kept pdftotext busy for
// about 7s a page, minutes for 40 pages and hours for thousands, with
// nothing written that the text cap could stop, and the ingest waited for
// it on every run (a PDF with no text is skipped, so read again). Real
// PDFs take seconds even at thousands of pages. Tests may lower it.
var PDFTimeout = 2 * time.Minute

func extractPDF(ctx context.Context, data []byte, maxText int64) (Extracted, error) {
	if !bytes.HasPrefix(bytes.TrimLeft(data[:min(len(data), 1024)], "\x00\t\r\n "), []byte("%PDF-")) {
		return Extracted{}, fmt.Errorf("%w: not a PDF (no %%PDF- header)", ErrMalformed)
	}
	bin, err := exec.LookPath(PDFToText)
	if err != nil {
		return Extracted{}, fmt.Errorf("reading PDFs needs pdftotext: install poppler-utils (apt-get install poppler-utils, or run scripts/deps.sh)")
	}
	// Not -q: it silences the error messages too, and they are the reason
	// a PDF is skipped.
	runCtx, cancel := context.WithTimeout(ctx, PDFTimeout)
	defer cancel()
	cmd := exec.CommandContext(runCtx, bin, "-enc", "UTF-8", "-", "-")
	cmd.Stdin = bytes.NewReader(data)
	if maxText <= 0 {
		maxText = 50 << 20
	}
	// Writing past maxText fails, which closes pdftotext's output: it
	// stops at once rather than writing the rest nobody reads.
	out := &capBuffer{max: maxText}
	stderr := &tailBuffer{max: 8 << 10}
	cmd.Stdout, cmd.Stderr = out, stderr
	err = cmd.Run()
	if out.over {
		return Extracted{}, fmt.Errorf("%w: its text is more than %d bytes", errTextTooLarge, maxText)
	}
	if err != nil {
		if ctx.Err() != nil {
			return Extracted{}, ctx.Err()
		}
		if runCtx.Err() != nil {
			return Extracted{}, fmt.Errorf("%w: pdftotext did not finish reading it within %v (a PDF made to be slow to read, such as pages that repeat one long drawing?)", ErrMalformed, PDFTimeout)
		}
		return Extracted{}, fmt.Errorf("%w: pdftotext: %s", ErrMalformed, pdfError(stderr.String(), err))
	}
	text := strings.ToValidUTF8(out.b.String(), "\uFFFD")
	ex := Extracted{}
	var b strings.Builder
	// pdftotext ends every page with a form feed, so the last piece is
	// what follows the last page (nothing). A blank page (a scan, a
	// separator) still counts: without its start, every later page was
	// cited one page early.
	pages := strings.Split(text, "\f")
	if len(pages) > 1 && strings.TrimSpace(pages[len(pages)-1]) == "" {
		pages = pages[:len(pages)-1]
	}
	for i, p := range pages {
		if i > 0 {
			ex.Pages = append(ex.Pages, b.Len())
		}
		b.WriteString(p)
		if i < len(pages)-1 && !strings.HasSuffix(p, "\n\n") {
			b.WriteString("\n\n")
		}
	}
	ex.Text = b.String()
	ex.Breaks = blankLines(ex.Text)
	// The first short line of the first page is usually the title.
	for _, line := range strings.Split(strings.TrimSpace(ex.Text), "\n") {
		if l := strings.TrimSpace(line); l != "" {
			if len(l) <= 120 {
				ex.Title = l
			}
			break
		}
	}
	return ex, nil
}

// pdfError is the reason pdftotext gave for failing: an encrypted PDF says
// so; otherwise its last message (the fatal one comes after the warnings).
func pdfError(stderr string, err error) string {
	var last string
	for _, line := range strings.Split(stderr, "\n") {
		line = strings.TrimSpace(line)
		if strings.Contains(line, "Incorrect password") {
			return "encrypted with a password (" + line + ")"
		}
		if line != "" {
			last = line
		}
	}
	if last == "" {
		return err.Error()
	}
	return last
}

// errTextTooLarge: a document's extracted text is longer than allowed.
var errTextTooLarge = errors.New("too large")

// capBuffer keeps what is written to it, up to max bytes; a write past
// that fails.
type capBuffer struct {
	max  int64
	b    bytes.Buffer
	over bool
}

func (c *capBuffer) Write(p []byte) (int, error) {
	if int64(c.b.Len()+len(p)) > c.max {
		c.over = true
		return 0, errTextTooLarge
	}
	return c.b.Write(p)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }
