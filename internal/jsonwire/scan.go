package jsonwire

import (
	"strings"
	"unicode/utf8"
)

// The scanners below read the narrow JSON the fast decoders accept: plain
// strings, short integers, literals and flat objects. Each takes the index
// of the value in data and reports false for anything it does not accept
// (the caller then falls back to encoding/json); the index returned with
// false means nothing.

// PlainString scans the string whose opening quote is at i: its contents
// are data[start:end], the closing quote at end. Only strings encoding/json
// copies verbatim pass: no escapes, no control bytes, valid UTF-8.
func PlainString(data []byte, i int) (start, end int, ok bool) {
	if i >= len(data) || data[i] != '"' {
		return 0, 0, false
	}
	start = i + 1
	high := false
	for i = start; i < len(data); i++ {
		switch c := data[i]; {
		case c == '"':
			if high && !utf8.Valid(data[start:i]) {
				return 0, 0, false
			}
			return start, i, true
		case c < 0x20 || c == '\\':
			return 0, 0, false
		case c >= 0x80:
			high = true
		}
	}
	return 0, 0, false
}

// Int scans an integer of at most 18 digits without leading zeros at i,
// not followed by a fraction or exponent, and returns it and the index
// after it.
func Int(data []byte, i int) (v int64, end int, ok bool) {
	neg := i < len(data) && data[i] == '-'
	if neg {
		i++
	}
	start := i
	for i < len(data) && data[i] >= '0' && data[i] <= '9' {
		v = v*10 + int64(data[i]-'0')
		i++
	}
	n := i - start
	if n == 0 || n > 18 || n > 1 && data[start] == '0' {
		return 0, 0, false
	}
	if i < len(data) && (data[i] == '.' || data[i] == 'e' || data[i] == 'E') {
		return 0, 0, false
	}
	if neg {
		v = -v
	}
	return v, i, true
}

// NullableInt reads null or an integer as Int does: null is (0, true).
func NullableInt(data []byte, i int) (v int64, null bool, end int, ok bool) {
	if IsNull(data, i) {
		return 0, true, i + 4, true
	}
	v, end, ok = Int(data, i)
	return v, false, end, ok
}

// NullableBool reads true, false or null (which is (false, true)).
func NullableBool(data []byte, i int) (v, null bool, end int, ok bool) {
	switch {
	case HasWord(data, i, "true"):
		return true, false, i + 4, true
	case HasWord(data, i, "false"):
		return false, false, i + 5, true
	case IsNull(data, i):
		return false, true, i + 4, true
	}
	return false, false, 0, false
}

// HasWord reports whether data holds the literal w at i, not followed by
// more of a literal (as in "nullx").
func HasWord(data []byte, i int, w string) bool {
	if len(data)-i < len(w) || string(data[i:i+len(w)]) != w {
		return false
	}
	j := i + len(w)
	return j == len(data) || !(data[j] >= 'a' && data[j] <= 'z' || data[j] >= '0' && data[j] <= '9')
}

// IsNull reports whether data holds null at i.
func IsNull(data []byte, i int) bool { return HasWord(data, i, "null") }

// SkipScalar passes over a plain string, literal or integer at i; objects,
// arrays and other numbers return false.
func SkipScalar(data []byte, i int) (int, bool) {
	if i >= len(data) {
		return 0, false
	}
	switch c := data[i]; {
	case c == '"':
		_, e, ok := PlainString(data, i)
		return e + 1, ok
	case c == 't':
		return i + 4, HasWord(data, i, "true")
	case c == 'f':
		return i + 5, HasWord(data, i, "false")
	case c == 'n':
		return i + 4, IsNull(data, i)
	}
	_, end, ok := Int(data, i)
	return end, ok
}

// OpenObject reads the '{' at i. If the object has members, more is true
// and the first key is at next; if it is empty, next is the index after
// its '}'.
func OpenObject(data []byte, i int) (next int, more, ok bool) {
	if i >= len(data) || data[i] != '{' {
		return 0, false, false
	}
	i = SkipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return i + 1, false, true
	}
	return i, true, true
}

// Colon reads the colon after an object key, from i just past the key's
// closing quote, and returns where the value starts.
func Colon(data []byte, i int) (next int, ok bool) {
	if i = SkipSpace(data, i); i < len(data) && data[i] == ':' {
		return SkipSpace(data, i+1), true
	}
	return 0, false
}

// NextMember reads what follows a member's value ending at i: the comma
// (more is true) or the closing '}'. next is the index after either.
// Read the next key at SkipSpace(data, next).
func NextMember(data []byte, i int) (next int, more, ok bool) {
	if i = SkipSpace(data, i); i < len(data) {
		return i + 1, data[i] == ',', data[i] == ',' || data[i] == '}'
	}
	return 0, false, false
}

// StringMap reads a flat object of plain strings (or null, which sets *m
// to nil) at i into *m, keys and values slicing body, which is
// string(data). Like encoding/json it adds to a map already there. Null
// values return false.
func StringMap(data []byte, body string, i int, m *map[string]string) (int, bool) {
	if IsNull(data, i) {
		*m = nil
		return i + 4, true
	}
	i, more, ok := OpenObject(data, i)
	if !ok {
		return 0, false
	}
	if *m == nil {
		*m = make(map[string]string)
	}
	for more {
		var ks, ke, vs, ve int
		if ks, ke, ok = PlainString(data, SkipSpace(data, i)); !ok {
			return 0, false
		}
		if i, ok = Colon(data, ke+1); !ok {
			return 0, false
		}
		if vs, ve, ok = PlainString(data, i); !ok {
			return 0, false
		}
		(*m)[body[ks:ke]] = body[vs:ve]
		if i, more, ok = NextMember(data, ve+1); !ok {
			return 0, false
		}
	}
	return i, true
}

// SkipUnknown passes over the value at i of a key that matches none of
// fields exactly, as SkipScalar does. Since encoding/json also matches keys
// case-insensitively (Unicode folding included), a key it could match to
// one of fields returns false.
func SkipUnknown(data []byte, i int, key []byte, fields []string) (int, bool) {
	if FoldsToField(key, fields) {
		return 0, false
	}
	return SkipScalar(data, i)
}

// FoldsToField reports whether encoding/json could match key to one of
// fields: equal under case folding, or not ASCII at all (Unicode folding).
func FoldsToField(key []byte, fields []string) bool {
	for _, c := range key {
		if c >= 0x80 {
			return true
		}
	}
	for _, f := range fields {
		if len(f) == len(key) && strings.EqualFold(f, string(key)) {
			return true
		}
	}
	return false
}
