package tools

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/ponder-rlm/ponder/internal/text"
)

// ValidateArgs checks args against sch. The error wraps
// ErrInvalidArguments and says, for each violated constraint, which
// argument and what it must be:
//
//	invalid arguments: argument "expression": missing; argument "expr": not accepted
//	invalid arguments: argument "budget.llm_calls": got -1, want at least 1
//
// It is the one place such messages are written: the registry's tools,
// plugin test calls and the MCP server's own tools all report through it,
// so a model sees the same words for the same mistake wherever it made it.
func ValidateArgs(sch *jsonschema.Schema, args json.RawMessage) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(args))
	if err != nil {
		return fmt.Errorf("%w: the arguments are not JSON: %v", ErrInvalidArguments, err)
	}
	err = sch.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return fmt.Errorf("%w: %v", ErrInvalidArguments, err)
	}
	// The validator walks an object's properties in map order; sorted by
	// where they are, the same arguments get the same message every time.
	ls := leaves(ve)
	slices.SortStableFunc(ls, func(a, b *jsonschema.ValidationError) int {
		return slices.Compare(a.InstanceLocation, b.InstanceLocation)
	})
	var msgs []string
	seen := map[string]bool{}
	for _, leaf := range ls {
		// The branches of an anyOf or oneOf can break the same way.
		if m := describe(leaf, v); !seen[m] {
			seen[m] = true
			msgs = append(msgs, m)
		}
	}
	return fmt.Errorf("%w: %s", ErrInvalidArguments, strings.Join(msgs, "; "))
}

// leaves are the violated constraints themselves; the errors above them
// only group them ("validation failed", "'anyOf' failed").
func leaves(e *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return []*jsonschema.ValidationError{e}
	}
	var out []*jsonschema.ValidationError
	for _, c := range e.Causes {
		out = append(out, leaves(c)...)
	}
	return out
}

// describe writes one violated constraint as `argument "<path>": <what
// is wrong>`. The argument leads, quoted as the caller spelled it (a
// dotted path inside objects), and the rest reads "got X, want Y" where it
// can: the validator's own words ("minimum: got -1, want 1", "missing
// property 'problem'" placed on the enclosing object) name a schema
// keyword instead of the argument to fix, and its enum and const messages
// leave out what was sent.
//
// args is the arguments as UnmarshalJSON read them, numbers as json.Number:
// a number is quoted as the caller wrote it (1e308, not a 309-digit
// integer).
func describe(e *jsonschema.ValidationError, args any) string {
	field := strings.Join(e.InstanceLocation, ".")
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		return argNames(field, k.Missing) + ": missing"
	case *kind.AdditionalProperties:
		return argNames(field, slices.Sorted(slices.Values(k.Properties))) + ": not accepted"
	}
	return argName(field) + ": " + problem(e.ErrorKind, written(args, e.InstanceLocation))
}

// written is the number at loc in args as the caller wrote it, clipped;
// "" when what is there is no number.
func written(args any, loc []string) string {
	for _, k := range loc {
		switch x := args.(type) {
		case map[string]any:
			args = x[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(x) {
				return ""
			}
			args = x[i]
		default:
			return ""
		}
	}
	if n, ok := args.(json.Number); ok {
		return text.Clip(string(n), 40)
	}
	return ""
}

// problem is what is wrong with one value, in words; num is the value as
// written when it is a number.
func problem(k jsonschema.ErrorKind, num string) string {
	switch k := k.(type) {
	case *kind.Type:
		if num != "" && slices.Contains(k.Want, "integer") {
			// "got number, want integer" of a number: which one.
			return fmt.Sprintf("got %s, want %s", num, strings.Join(k.Want, " or "))
		}
		return fmt.Sprintf("got %s, want %s", k.Got, strings.Join(k.Want, " or "))
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = shortJSON(w)
		}
		if len(want) == 1 {
			return fmt.Sprintf("got %s, want %s", shortJSON(k.Got), want[0])
		}
		return fmt.Sprintf("got %s, want one of %s", shortJSON(k.Got), strings.Join(want, ", "))
	case *kind.Const:
		return fmt.Sprintf("got %s, want %s", shortJSON(k.Got), shortJSON(k.Want))
	case *kind.Minimum:
		return number(num, k.Got, "at least", k.Want)
	case *kind.Maximum:
		return number(num, k.Got, "at most", k.Want)
	case *kind.ExclusiveMinimum:
		return number(num, k.Got, "more than", k.Want)
	case *kind.ExclusiveMaximum:
		return number(num, k.Got, "less than", k.Want)
	case *kind.MultipleOf:
		return number(num, k.Got, "a multiple of", k.Want)
	case *kind.MinLength:
		return fmt.Sprintf("got %d characters, want at least %d", k.Got, k.Want)
	case *kind.MaxLength:
		return fmt.Sprintf("got %d characters, want at most %d", k.Got, k.Want)
	case *kind.MinItems:
		return fmt.Sprintf("got %d items, want at least %d", k.Got, k.Want)
	case *kind.MaxItems:
		return fmt.Sprintf("got %d items, want at most %d", k.Got, k.Want)
	case *kind.Pattern:
		// The value is the caller's and may be long; the pattern is ours.
		return fmt.Sprintf("got %s, want a string matching %s", shortJSON(k.Got), k.Want)
	}
	// The rest (format, uniqueItems, contains, ...) in the validator's
	// words, clipped: a format's message quotes the value.
	return text.Clip(k.LocalizedString(printer), 1000)
}

var printer = message.NewPrinter(language.English)

// argName names the argument at a dotted path; the empty path is the
// arguments object itself.
func argName(field string) string {
	if field == "" {
		return "arguments"
	}
	return fmt.Sprintf("argument %q", field)
}

// argNames names the properties of the object at parent.
func argNames(parent string, names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		if parent != "" {
			n = parent + "." + n
		}
		q[i] = fmt.Sprintf("%q", n)
	}
	if len(q) == 1 {
		return "argument " + q[0]
	}
	return "arguments " + strings.Join(q, ", ")
}

// shortJSON is v as JSON, clipped for a message.
func shortJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return text.Clip(fmt.Sprint(v), 200)
	}
	return text.Clip(string(b), 200)
}

// number is a numeric bound's message: "got -1, want at least 1". The
// value is quoted as written when known.
func number(written string, got *big.Rat, rel string, want *big.Rat) string {
	if written == "" {
		written = ratString(got)
	}
	return fmt.Sprintf("got %s, want %s %s", written, rel, ratString(want))
}

// ratString is an exact number as the caller would write it: an integer
// whole (the validator's %v of a float64 prints 1000000 as 1e+06).
func ratString(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}
