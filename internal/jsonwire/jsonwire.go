// Package jsonwire holds the reflection-free JSON pieces Capstan shares: a
// lenient optional boolean, string, string-map and error-body encoding, and
// the scanners of the fast event decoders.
package jsonwire

import (
	"errors"
	"slices"
	"unicode/utf8"
)

// OptBool is a JSON boolean that may be missing, null or empty; it also
// accepts "true"/"false" strings and 0/1, since some clients stringify
// everything. Its zero value is BoolUnset.
type OptBool uint8

// The values are hashed into stats event ids: never renumber them.
const (
	BoolUnset OptBool = iota
	BoolFalse
	BoolTrue
)

// ErrBadBool is what UnmarshalJSON returns for anything else.
var ErrBadBool = errors.New("not a boolean")

// UnmarshalJSON reads a raw JSON value. An empty value is unset, so a
// missing header or query parameter can be passed as is.
func (b *OptBool) UnmarshalJSON(data []byte) error {
	switch string(data) {
	case "true", `"true"`, "1", `"1"`:
		*b = BoolTrue
	case "false", `"false"`, "0", `"0"`:
		*b = BoolFalse
	case "null", `""`, "":
		*b = BoolUnset
	default:
		return ErrBadBool
	}
	return nil
}

// Or returns the boolean, or def when unset.
func (b OptBool) Or(def bool) bool {
	switch b {
	case BoolTrue:
		return true
	case BoolFalse:
		return false
	}
	return def
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string, escaping like encoding/json
// except that <, > and & stay literal. Invalid UTF-8 becomes U+FFFD.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = AppendChars(dst, s)
	return append(dst, '"')
}

// AppendChars appends the escaped contents of a JSON string, unquoted.
func AppendChars(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 break JavaScript string literals.
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

// ErrorBody renders the error body every Capstan endpoint answers with:
// {"error":code,"message":msg}.
func ErrorBody(code, msg string) []byte {
	b := make([]byte, 0, 32+len(code)+len(msg))
	b = append(b, `{"error":`...)
	b = AppendString(b, code)
	b = append(b, `,"message":`...)
	b = AppendString(b, msg)
	return append(b, '}')
}

// AppendStringMap appends m as a JSON object with its keys sorted, as
// encoding/json writes a map. keys is scratch space, returned for reuse.
func AppendStringMap(dst []byte, m map[string]string, keys []string) ([]byte, []string) {
	keys = SortedKeys(keys[:0], m)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendString(dst, k)
		dst = append(dst, ':')
		dst = AppendString(dst, m[k])
	}
	return append(dst, '}'), keys
}

// SortedKeys appends the keys of m to dst in order.
func SortedKeys(dst []string, m map[string]string) []string {
	start := len(dst)
	for k := range m {
		dst = append(dst, k)
	}
	slices.Sort(dst[start:])
	return dst
}

// SkipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func SkipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}
