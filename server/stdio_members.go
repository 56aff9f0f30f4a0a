package server

import (
	"bytes"
	"encoding/json"
)

// memberScan reads the top-level members of one JSON object as its bytes
// arrive, in chunks of any size, keeping only what answering an over-long
// stdio message needs: the "id" member's value and whether "method",
// "result" or "error" appear. It never holds more than a key and an id
// (maxScanKey, maxScanID), so a 1 GB line costs what a short one does;
// the id may stand anywhere in the object (a client's answer to a sampling
// request may well put it after a long "result").
//
// It is not a validator: it tracks strings, escapes and nesting, which is
// all that finding a top-level member needs, and gives up (no id) on input
// that does not start as an object.
type memberScan struct {
	started, done, notObject bool

	depth     int  // nesting; the object itself is depth 1
	inStr     bool // inside a string
	esc       bool // the previous byte in the string was a backslash
	expectKey bool // at depth 1, the next string is a member's name

	inKey   bool   // the string being read is a top-level member's name
	key     []byte // its raw bytes so far, at most maxScanKey+1
	member  string // the member whose value is being read, when it matters
	val     []byte // the "id" value's raw bytes so far, at most maxScanID+1
	inValue bool   // reading a top-level member's value

	id                     json.RawMessage // the last valid "id" seen
	method, result, errKey bool
}

const (
	// maxScanKey is longer than any member name looked for, escapes
	// included ("\u0069\u0064" is "id").
	maxScanKey = 64
	// maxScanID bounds an id kept: a longer one is no id (Ponder's own
	// sampling ids are integers; a client's request ids are short).
	maxScanID = 1024
)

// feed scans the next bytes of the message.
func (s *memberScan) feed(b []byte) {
	for len(b) > 0 && !s.done && !s.notObject {
		if s.inStr {
			b = s.feedString(b)
			continue
		}
		c := b[0]
		b = b[1:]
		if !s.started {
			switch c {
			case ' ', '\t', '\r', '\n':
			case '{':
				s.started, s.depth, s.expectKey = true, 1, true
			default:
				s.notObject = true
			}
			continue
		}
		if s.depth == 1 {
			switch c {
			case ' ', '\t', '\r', '\n':
				if s.inValue && s.member == "id" {
					s.keep(c)
				}
				continue
			case ':':
				s.memberValue()
				continue
			case ',':
				s.endValue()
				s.expectKey = true
				continue
			case '}':
				s.endValue()
				s.depth, s.done = 0, true
				continue
			case '"':
				s.inStr, s.inKey = true, s.expectKey
				s.key = s.key[:0]
				if !s.inKey && s.member == "id" {
					s.keep(c)
				}
				continue
			}
			if s.member == "id" {
				s.keep(c)
			}
			if c == '{' || c == '[' {
				s.depth++
			}
			continue
		}
		// Inside a nested value.
		if s.member == "id" {
			s.keep(c)
		}
		switch c {
		case '"':
			s.inStr = true
		case '{', '[':
			s.depth++
		case '}', ']':
			s.depth--
		}
	}
}

// feedString consumes string bytes up to and including the closing quote,
// if b holds it, and returns the rest. Bytes nobody keeps are skipped with
// IndexByte: the long strings of an over-long message pass at memory speed.
func (s *memberScan) feedString(b []byte) []byte {
	keeping := s.inKey || s.member == "id"
	for len(b) > 0 {
		if s.esc {
			s.esc = false
			s.keepString(b[:1], keeping)
			b = b[1:]
			continue
		}
		q := bytes.IndexByte(b, '"')
		end := len(b)
		if q >= 0 {
			end = q
		}
		if bs := bytes.IndexByte(b[:end], '\\'); bs >= 0 {
			s.keepString(b[:bs+1], keeping)
			s.esc = true
			b = b[bs+1:]
			continue
		}
		s.keepString(b[:end], keeping)
		if q < 0 {
			return nil
		}
		s.inStr = false
		if s.inKey {
			s.inKey = false
		} else if keeping {
			s.keep('"')
		}
		return b[q+1:]
	}
	return b
}

// keepString keeps string bytes of a member name or of an id.
func (s *memberScan) keepString(b []byte, keeping bool) {
	if !keeping {
		return
	}
	if s.inKey {
		if n := maxScanKey + 1 - len(s.key); n > 0 {
			s.key = append(s.key, b[:min(n, len(b))]...)
		}
		return
	}
	for _, c := range b[:min(len(b), maxScanID+1)] {
		s.keep(c)
	}
}

// keep appends one byte of the id value, up to one past the bound (which
// marks it too long).
func (s *memberScan) keep(c byte) {
	if len(s.val) <= maxScanID {
		s.val = append(s.val, c)
	}
}

// memberValue starts the value of the member whose name was just read.
func (s *memberScan) memberValue() {
	s.expectKey, s.inValue = false, true
	s.member = ""
	var name string
	if len(s.key) > maxScanKey || json.Unmarshal(append(append([]byte{'"'}, s.key...), '"'), &name) != nil {
		return
	}
	switch name {
	case "id":
		s.member, s.val = "id", s.val[:0]
	case "method":
		s.method = true
	case "result":
		s.result = true
	case "error":
		s.errKey = true
	}
}

// endValue ends a top-level member's value; an id that is a string or a
// number is kept (the last one, as encoding/json and mcp-go read it).
func (s *memberScan) endValue() {
	if s.member == "id" {
		v := bytes.TrimSpace(s.val)
		if len(v) > 0 && len(v) <= maxScanID && (v[0] == '"' || v[0] == '-' || v[0] >= '0' && v[0] <= '9') && json.Valid(v) {
			s.id = append(json.RawMessage(nil), v...)
		}
	}
	s.member, s.inValue = "", false
}

// outcome says what was seen: the message's id, if a string or a number,
// and whether it is a response (a "result" or "error" member, no
// "method"). A message cut short keeps what its complete members showed.
func (s *memberScan) outcome() (id json.RawMessage, isResponse bool) {
	return s.id, (s.result || s.errKey) && !s.method
}
