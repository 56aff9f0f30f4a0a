package ingest

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	txt "github.com/ponder-rlm/ponder/internal/text"
)

// Text encodings a text file is read as. Old team documents are often
// UTF-16 with a byte order mark (what Windows tools write) or Windows-1252
// (whose printable characters include Latin-1's): both are decoded to UTF-8
// so that their words are indexed and found like any other.
const (
	encUTF8        = "utf-8"
	encUTF8BOM     = "utf-8-bom"
	encUTF16LE     = "utf-16le"
	encUTF16BE     = "utf-16be"
	encWindows1252 = "windows-1252"
	// UTF-16 guessed from the pattern of its NUL bytes: no byte order mark
	// to drop. Chunks say utf-16le or utf-16be (encodingName).
	encUTF16LEGuess = "utf-16le-guessed"
	encUTF16BEGuess = "utf-16be-guessed"
)

// encodingName is the encoding as chunks give it: a guessed UTF-16 is
// UTF-16 all the same.
func encodingName(enc string) string {
	switch enc {
	case encUTF16LEGuess:
		return encUTF16LE
	case encUTF16BEGuess:
		return encUTF16BE
	}
	return enc
}

// errBinary is why a file that is not text is skipped (wrapped in
// ErrMalformed by Extract).
type errBinary string

func (e errBinary) Error() string { return string(e) }

// sniffText says how data is to be read: a byte order mark decides (UTF-8,
// UTF-16LE, UTF-16BE); else a NUL byte in the first 8 KiB means binary;
// else valid UTF-8 is UTF-8, and text that is not is Windows-1252 unless
// it is mostly UTF-8 with a few bad bytes (a UTF-8 file with a stray Latin-1
// character: reading it all as Windows-1252 would garble the rest). A file
// with NUL bytes is UTF-16 without a byte order mark when guessUTF16 says
// so, and binary otherwise.
func sniffText(data []byte) (string, error) {
	switch {
	case bytes.HasPrefix(data, []byte{0xEF, 0xBB, 0xBF}):
		return encUTF8BOM, nil
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE, 0, 0}), bytes.HasPrefix(data, []byte{0, 0, 0xFE, 0xFF}):
		return "", errBinary("UTF-32 text (its byte order mark says so) is not read: save it as UTF-8 or UTF-16")
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}):
		return encUTF16LE, nil
	case bytes.HasPrefix(data, []byte{0xFE, 0xFF}):
		return encUTF16BE, nil
	case IsBinary(data):
		if enc, ok := guessUTF16(data); ok {
			return enc, nil
		}
		return "", errBinary("binary content (a NUL byte)")
	case utf8.Valid(data):
		return encUTF8, nil
	}
	multi, bad := 0, 0
	for i := 0; i < len(data); {
		if data[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n == 1 {
			bad++
		} else {
			multi++
		}
		i += n
	}
	if multi > bad {
		return encUTF8, nil
	}
	// Control bytes other than white space are rare in text of any
	// encoding: many of them mean a binary file with no NUL up front.
	ctl := 0
	for _, c := range data {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v' && c != 0x1A {
			ctl++
		}
	}
	if ctl*20 > len(data) {
		return "", errBinary("binary content (control bytes; not text in UTF-8 or Windows-1252)")
	}
	return encWindows1252, nil
}

// decodeText returns data, read as enc (from sniffText), as UTF-8 and a
// note saying what was assumed ("" when the file was plain UTF-8).
func decodeText(data []byte, enc string) (text, note string) {
	switch enc {
	case encUTF8BOM:
		data = data[3:]
	case encUTF16LE, encUTF16BE:
		return decodeUTF16(data[2:], enc == encUTF16BE)
	case encUTF16LEGuess, encUTF16BEGuess:
		text, _ := decodeUTF16(data, enc == encUTF16BEGuess)
		name := "UTF-16LE"
		if enc == encUTF16BEGuess {
			name = "UTF-16BE"
		}
		return text, "read as " + name + " (no byte order mark: guessed from its NUL bytes)"
	case encWindows1252:
		return decode1252(data), "read as Windows-1252: the file is not valid UTF-8"
	}
	if utf8.Valid(data) {
		return string(data), ""
	}
	n := 0
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size == 1 {
			n++
		}
		i += size
	}
	verb := "are"
	if n == 1 {
		verb = "is"
	}
	return strings.ToValidUTF8(string(data), "\uFFFD"), fmt.Sprintf("read as UTF-8: %s that %s not valid UTF-8 became U+FFFD", txt.Count(n, "byte"), verb)
}

// decodeUTF16 decodes UTF-16 (after its byte order mark); unpaired
// surrogates and an odd last byte become U+FFFD.
func decodeUTF16(b []byte, bigEndian bool) (string, string) {
	unit := func(i int) rune {
		if bigEndian {
			return rune(b[i])<<8 | rune(b[i+1])
		}
		return rune(b[i+1])<<8 | rune(b[i])
	}
	var sb strings.Builder
	sb.Grow(len(b) / 2 * 3 / 2)
	for i := 0; i+1 < len(b); i += 2 {
		r := unit(i)
		if utf16.IsSurrogate(r) {
			if i+3 < len(b) {
				if d := utf16.DecodeRune(r, unit(i+2)); d != utf8.RuneError {
					sb.WriteRune(d)
					i += 2
					continue
				}
			}
			r = utf8.RuneError
		}
		sb.WriteRune(r)
	}
	name := "UTF-16LE"
	if bigEndian {
		name = "UTF-16BE"
	}
	note := "read as " + name + " (byte order mark)"
	if len(b)%2 == 1 {
		sb.WriteRune(utf8.RuneError)
		note += "; the odd last byte became U+FFFD"
	}
	return sb.String(), note
}

// cp1252 maps the bytes 0x80-0x9F of Windows-1252 to Unicode; the five
// bytes it leaves undefined map to the C1 controls of the same value, as
// the WHATWG Encoding Standard (what browsers do) has it. Every other byte
// is its own code point (ASCII, and Latin-1 above 0x9F).
var cp1252 = [32]rune{
	0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
	0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
}

func decode1252(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b) + len(b)/8)
	for _, c := range b {
		switch {
		case c < 0x80:
			sb.WriteByte(c)
		case c < 0xA0:
			sb.WriteRune(cp1252[c-0x80])
		default:
			sb.WriteRune(rune(c))
		}
	}
	return sb.String()
}

// guessUTF16 says whether data (no byte order mark, NUL bytes in it) is
// UTF-16 text, and in which byte order. Text that Windows tools saved as
// "Unicode" without a mark has a NUL high byte in every ASCII or Latin-1
// character: zero bytes at odd offsets (little-endian) or even ones
// (big-endian), hardly ever at the other parity. Binary files fail it:
// their NULs fall at both parities (NUL characters), or their units decode
// to control characters, unpaired surrogates, private-use or unassigned
// code points. The file must also have an even length, and at least one
// unit in three must carry a NUL high byte (an ASCII or Latin-1
// character): pairs of ASCII bytes decode to CJK and other letters, so
// ASCII with a few NULs ("now\x00binary", NUL-separated fields) would
// otherwise read as UTF-16. Text with fewer such characters (most of it
// CJK, say) is not guessed.
func guessUTF16(data []byte) (string, bool) {
	if len(data) < 4 || len(data)%2 == 1 {
		return "", false
	}
	var zeros [2]int // by parity of the offset
	for i, c := range data {
		if c == 0 {
			zeros[i%2]++
		}
	}
	be := zeros[0] > zeros[1]
	high, low := zeros[1], zeros[0] // NUL high bytes, NUL low bytes
	if be {
		high, low = low, high
	}
	units := len(data) / 2
	if high*3 < units || high < 4*low {
		return "", false
	}
	unit := func(i int) rune {
		if be {
			return rune(data[i])<<8 | rune(data[i+1])
		}
		return rune(data[i+1])<<8 | rune(data[i])
	}
	bad, limit := 0, units/200 // a stray control character in 200 is tolerated
	for i := 0; i+1 < len(data); i += 2 {
		r := unit(i)
		if utf16.IsSurrogate(r) && i+3 < len(data) {
			if d := utf16.DecodeRune(r, unit(i+2)); d != utf8.RuneError {
				r = d
				i += 2
			}
		}
		switch {
		case r == '\t', r == '\n', r == '\r', r == '\f', r == '\v':
		case unicode.IsGraphic(r), unicode.Is(unicode.Cf, r): // text, and format marks (joiners, direction marks)
		default:
			if bad++; bad > limit {
				return "", false
			}
		}
	}
	if be {
		return encUTF16BEGuess, true
	}
	return encUTF16LEGuess, true
}
