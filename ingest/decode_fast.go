package ingest

import (
	"strings"
	"unicode/utf8"

	"github.com/capstan-io/capstan/internal/jsonwire"
)

// fastDecode decodes the bodies plugins send — an array (or one object)
// of flat event objects with strings without escapes, integers, booleans
// and a flat metadata object of strings — without reflection; every
// string slices one copy of the body. Anything else (escapes, invalid
// UTF-8, nested unknown values, fractions, keys matching a field only
// case-insensitively, non-object elements, too many events, bad syntax,
// values of the wrong type) returns false with the decoder reset, and
// the caller decodes the body again with encoding/json: the result is
// always what that path gives, as FuzzFastDecode checks.
func (d *decoder) fastDecode(body []byte, maxEvents int) (array, ok bool) {
	f := fastDecoder{data: body}
	i := jsonwire.SkipSpace(body, 0)
	if i >= len(body) {
		return false, false
	}
	f.body = string(body) // the strings of the events are slices of it
	d.h.reset()
	switch body[i] {
	case '{':
		d.wire = wireEvent{}
		end, ok := f.object(&d.wire, i)
		if !ok || jsonwire.SkipSpace(body, end) != len(body) {
			return false, d.undo()
		}
		d.items = append(d.items, d.finish(&d.wire))
		return false, true
	case '[':
		i = jsonwire.SkipSpace(body, i+1)
		if i < len(body) && body[i] == ']' {
			return true, jsonwire.SkipSpace(body, i+1) == len(body)
		}
		for n := 0; ; n++ {
			if n == maxEvents || i >= len(body) || body[i] != '{' {
				return false, d.undo()
			}
			d.wire = wireEvent{}
			end, ok := f.object(&d.wire, i)
			if !ok {
				return false, d.undo()
			}
			d.items = append(d.items, d.finish(&d.wire))
			i = jsonwire.SkipSpace(body, end)
			if i >= len(body) {
				return false, d.undo()
			}
			switch body[i] {
			case ',':
				i = jsonwire.SkipSpace(body, i+1)
			case ']':
				if jsonwire.SkipSpace(body, i+1) != len(body) {
					return false, d.undo()
				}
				return true, true
			default:
				return false, d.undo()
			}
		}
	}
	return false, false
}

// undo forgets what a fast decode that gave up produced; it returns false.
func (d *decoder) undo() bool {
	d.reset()
	d.h.reset()
	return false
}

type fastDecoder struct {
	data []byte
	body string // string(data)
}

// object decodes the event object starting at i into w and returns the
// index after its closing brace.
func (f *fastDecoder) object(w *wireEvent, i int) (int, bool) {
	data := f.data
	i = jsonwire.SkipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return i + 1, true
	}
	for {
		ks, ke, ok := f.str(i)
		if !ok {
			return 0, false
		}
		i = jsonwire.SkipSpace(data, ke+1)
		if i >= len(data) || data[i] != ':' {
			return 0, false
		}
		i = jsonwire.SkipSpace(data, i+1)
		if i, ok = f.field(w, data[ks:ke], i); !ok {
			return 0, false
		}
		i = jsonwire.SkipSpace(data, i)
		if i >= len(data) {
			return 0, false
		}
		switch data[i] {
		case ',':
			i = jsonwire.SkipSpace(data, i+1)
		case '}':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// field reads the value at i for key and returns the index after it.
func (f *fastDecoder) field(w *wireEvent, key []byte, i int) (int, bool) {
	var dst *string
	switch string(key) { // compared in place, no allocation
	case "app_id":
		dst = &w.AppID
	case "device_id":
		dst = &w.DeviceID
	case "platform":
		dst = &w.Platform
	case "action":
		dst = &w.Action
	case "version_name":
		dst = &w.VersionName
	case "old_version_name":
		dst = &w.OldVersionName
	case "version_os":
		dst = &w.VersionOS
	case "plugin_version":
		dst = &w.PluginVersion
	case "custom_id":
		dst = &w.CustomID
	case "defaultChannel":
		dst = &w.DefaultChannel
	case "install_source":
		dst = &w.InstallSource
	case "key_id":
		dst = &w.KeyID
	case "version_build":
		return f.flexValue(&w.VersionBuild, i)
	case "version_code":
		return f.flexValue(&w.VersionCode, i)
	case "is_emulator":
		return f.boolValue(&w.IsEmulator, i)
	case "is_prod":
		return f.boolValue(&w.IsProd, i)
	case "metadata":
		return f.metadata(w, i)
	case "timestamp":
		return f.timestamp(&w.Timestamp, i)
	default:
		// encoding/json also matches keys case-insensitively (Unicode
		// folding included): leave those keys to it.
		if foldsToField(key) {
			return 0, false
		}
		return f.skipScalar(i)
	}
	// A string field: null leaves it as it was, like encoding/json.
	if isNull(f.data, i) {
		return i + 4, true
	}
	s, e, ok := f.str(i)
	if !ok {
		return 0, false
	}
	*dst = f.body[s:e]
	return e + 1, true
}

// str scans the string whose opening quote is at i: its contents are
// data[start:end], the closing quote at end. Only strings encoding/json
// copies verbatim pass: no escapes, no control bytes, valid UTF-8.
func (f *fastDecoder) str(i int) (start, end int, ok bool) {
	data := f.data
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

// integer scans a JSON integer of at most 18 digits without leading
// zeros at i (not followed by a fraction or exponent) and returns it and
// the index after it.
func (f *fastDecoder) integer(i int) (v int64, end int, ok bool) {
	data := f.data
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

// flexValue reads version_build/version_code: a string, an integer kept
// as its text, or null (which clears it, as flexString.UnmarshalJSON does).
func (f *fastDecoder) flexValue(dst *flexString, i int) (int, bool) {
	data := f.data
	if isNull(data, i) {
		*dst = ""
		return i + 4, true
	}
	if i < len(data) && data[i] == '"' {
		s, e, ok := f.str(i)
		if !ok {
			return 0, false
		}
		*dst = flexString(f.body[s:e])
		return e + 1, true
	}
	_, end, ok := f.integer(i)
	if !ok {
		return 0, false
	}
	*dst = flexString(f.body[i:end])
	return end, true
}

// boolValue reads is_emulator/is_prod as jsonwire.OptBool does; what it
// refuses goes to encoding/json, which reports the error.
func (f *fastDecoder) boolValue(dst *jsonwire.OptBool, i int) (int, bool) {
	data := f.data
	switch {
	case hasWord(data, i, "true"):
		*dst = jsonwire.BoolTrue
		return i + 4, true
	case hasWord(data, i, "false"):
		*dst = jsonwire.BoolFalse
		return i + 5, true
	case isNull(data, i):
		*dst = jsonwire.BoolUnset
		return i + 4, true
	}
	return 0, false
}

// timestamp reads an integer (or null, which clears it).
func (f *fastDecoder) timestamp(dst *optInt, i int) (int, bool) {
	if isNull(f.data, i) {
		*dst = optInt{}
		return i + 4, true
	}
	v, end, ok := f.integer(i)
	if !ok {
		return 0, false
	}
	*dst = optInt{V: v, Set: true}
	return end, true
}

// metadata reads a flat object of strings (or null) into w.Metadata,
// adding to a map an earlier "metadata" key made, like encoding/json.
func (f *fastDecoder) metadata(w *wireEvent, i int) (int, bool) {
	data := f.data
	if isNull(data, i) {
		w.Metadata = nil
		return i + 4, true
	}
	if i >= len(data) || data[i] != '{' {
		return 0, false
	}
	if w.Metadata == nil {
		w.Metadata = make(map[string]string)
	}
	i = jsonwire.SkipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return i + 1, true
	}
	for {
		ks, ke, ok := f.str(i)
		if !ok {
			return 0, false
		}
		i = jsonwire.SkipSpace(data, ke+1)
		if i >= len(data) || data[i] != ':' {
			return 0, false
		}
		i = jsonwire.SkipSpace(data, i+1)
		vs, ve, ok := f.str(i) // null values go to encoding/json
		if !ok {
			return 0, false
		}
		w.Metadata[f.body[ks:ke]] = f.body[vs:ve]
		i = jsonwire.SkipSpace(data, ve+1)
		if i >= len(data) {
			return 0, false
		}
		switch data[i] {
		case ',':
			i = jsonwire.SkipSpace(data, i+1)
		case '}':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// skipScalar passes over the value of an unknown key: a string, literal
// or integer; objects, arrays and other numbers return false.
func (f *fastDecoder) skipScalar(i int) (int, bool) {
	data := f.data
	if i >= len(data) {
		return 0, false
	}
	switch c := data[i]; {
	case c == '"':
		_, e, ok := f.str(i)
		return e + 1, ok
	case c == 't':
		return i + 4, hasWord(data, i, "true")
	case c == 'f':
		return i + 5, hasWord(data, i, "false")
	case c == 'n':
		return i + 4, isNull(data, i)
	}
	_, end, ok := f.integer(i)
	return end, ok
}

// wireFieldNames are wireEvent's JSON keys.
var wireFieldNames = [...]string{"app_id", "device_id", "platform", "action", "version_name",
	"old_version_name", "version_build", "version_code", "version_os", "plugin_version", "custom_id",
	"defaultChannel", "install_source", "key_id", "is_emulator", "is_prod", "metadata", "timestamp"}

// foldsToField reports whether key could match a field other than
// exactly: equal under case folding, or not ASCII at all.
func foldsToField(key []byte) bool {
	for _, c := range key {
		if c >= 0x80 {
			return true
		}
	}
	for _, f := range wireFieldNames {
		if len(f) == len(key) && strings.EqualFold(f, string(key)) {
			return true
		}
	}
	return false
}

// hasWord reports whether data holds w at i, not followed by more of a
// literal (as in "nullx").
func hasWord(data []byte, i int, w string) bool {
	if len(data)-i < len(w) || string(data[i:i+len(w)]) != w {
		return false
	}
	j := i + len(w)
	return j == len(data) || !(data[j] >= 'a' && data[j] <= 'z' || data[j] >= '0' && data[j] <= '9')
}

func isNull(data []byte, i int) bool { return hasWord(data, i, "null") }
