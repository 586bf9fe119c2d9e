package consumer

import (
	"strings"
	"unicode/utf8"

	"github.com/capstan-io/capstan/schema"
)

// fastDecode decodes what ingest publishes — one object of strings
// without escapes, integers, booleans and a flat metadata object of such
// strings — without reflection, with all strings slicing one copy of the
// body. Anything else (escapes, invalid UTF-8, nesting under unknown
// keys, fractions, keys matching a field only case-insensitively, bad
// syntax, type mismatches) returns false, and the caller starts over
// with encoding/json: the result is always what encoding/json gives, as
// FuzzFastDecode checks.
func fastDecode(data []byte, e *schema.Event) bool {
	d := fastDecoder{data: data}
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	// Copied once, after the cheapest check: the strings of e are slices
	// of it.
	d.body = string(data)
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return skipSpace(data, i+1) == len(data)
	}
	for {
		ks, ke, ok := d.str(i)
		if !ok {
			return false
		}
		i = skipSpace(data, ke+1)
		if i >= len(data) || data[i] != ':' {
			return false
		}
		i = skipSpace(data, i+1)
		if i, ok = d.field(e, data[ks:ke], i); !ok {
			return false
		}
		i = skipSpace(data, i)
		if i >= len(data) {
			return false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return skipSpace(data, i+1) == len(data)
		default:
			return false
		}
	}
}

type fastDecoder struct {
	data []byte
	body string // string(data)
}

// str scans the string whose opening quote is at i: its contents are
// data[start:end], the closing quote at end. Only strings encoding/json
// copies verbatim pass: no escapes, no control bytes, valid UTF-8.
func (d *fastDecoder) str(i int) (start, end int, ok bool) {
	data := d.data
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

// strValue reads a string value at i into *dst (null leaves it, as
// encoding/json does) and returns the index after it.
func (d *fastDecoder) strValue(dst *string, i int) (int, bool) {
	if isNull(d.data, i) {
		return i + 4, true
	}
	s, e, ok := d.str(i)
	if !ok {
		return 0, false
	}
	*dst = d.body[s:e]
	return e + 1, true
}

// intValue reads an integer of at most 18 digits without leading zeros
// (or null) into *dst.
func (d *fastDecoder) intValue(dst *int64, i int) (int, bool) {
	data := d.data
	if isNull(data, i) {
		return i + 4, true
	}
	neg := i < len(data) && data[i] == '-'
	if neg {
		i++
	}
	start := i
	var v int64
	for i < len(data) && data[i] >= '0' && data[i] <= '9' {
		v = v*10 + int64(data[i]-'0')
		i++
	}
	n := i - start
	if n == 0 || n > 18 || n > 1 && data[start] == '0' {
		return 0, false
	}
	if i < len(data) && (data[i] == '.' || data[i] == 'e' || data[i] == 'E') {
		return 0, false
	}
	if neg {
		v = -v
	}
	*dst = v
	return i, true
}

func (d *fastDecoder) boolValue(dst *bool, i int) (int, bool) {
	data := d.data
	switch {
	case isNull(data, i):
		return i + 4, true
	case hasWord(data, i, "true"):
		*dst = true
		return i + 4, true
	case hasWord(data, i, "false"):
		*dst = false
		return i + 5, true
	}
	return 0, false
}

// metadata reads a flat object of strings (or null) into e.Metadata,
// adding to a map an earlier "metadata" key made, like encoding/json.
func (d *fastDecoder) metadata(e *schema.Event, i int) (int, bool) {
	data := d.data
	if isNull(data, i) {
		e.Metadata = nil
		return i + 4, true
	}
	if i >= len(data) || data[i] != '{' {
		return 0, false
	}
	if e.Metadata == nil {
		e.Metadata = make(map[string]string)
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return i + 1, true
	}
	for {
		ks, ke, ok := d.str(i)
		if !ok {
			return 0, false
		}
		i = skipSpace(data, ke+1)
		if i >= len(data) || data[i] != ':' {
			return 0, false
		}
		i = skipSpace(data, i+1)
		vs, ve, ok := d.str(i) // null values go to encoding/json
		if !ok {
			return 0, false
		}
		e.Metadata[d.body[ks:ke]] = d.body[vs:ve]
		i = skipSpace(data, ve+1)
		if i >= len(data) {
			return 0, false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// field reads the value at i for key and returns the index after it.
func (d *fastDecoder) field(e *schema.Event, key []byte, i int) (int, bool) {
	var dst *string
	switch string(key) { // compared in place, no allocation
	case "id":
		dst = &e.ID
	case "received_ms":
		return d.intValue(&e.ReceivedMs, i)
	case "client_ms":
		return d.intValue(&e.ClientMs, i)
	case "app_id":
		dst = &e.AppID
	case "device_id":
		dst = &e.DeviceID
	case "platform":
		dst = &e.Platform
	case "action":
		dst = &e.Action
	case "version_name":
		dst = &e.VersionName
	case "file_name":
		dst = &e.FileName
	case "old_version_name":
		dst = &e.OldVersionName
	case "version_build":
		dst = &e.VersionBuild
	case "version_code":
		dst = &e.VersionCode
	case "version_os":
		dst = &e.VersionOS
	case "plugin_version":
		dst = &e.PluginVersion
	case "custom_id":
		dst = &e.CustomID
	case "channel":
		dst = &e.Channel
	case "install_source":
		dst = &e.InstallSource
	case "key_id":
		dst = &e.KeyID
	case "is_emulator":
		return d.boolValue(&e.IsEmulator, i)
	case "is_prod":
		return d.boolValue(&e.IsProd, i)
	case "metadata":
		return d.metadata(e, i)
	default:
		// encoding/json also matches keys case-insensitively (Unicode
		// folding included): leave those keys to it.
		if foldsToField(key) {
			return 0, false
		}
		return d.skipScalar(i)
	}
	return d.strValue(dst, i)
}

// skipScalar passes over the value of an unknown key: a string, literal
// or integer; objects, arrays and other numbers return false.
func (d *fastDecoder) skipScalar(i int) (int, bool) {
	data := d.data
	if i >= len(data) {
		return 0, false
	}
	switch c := data[i]; {
	case c == '"':
		_, e, ok := d.str(i)
		return e + 1, ok
	case c == 't':
		return i + 4, hasWord(data, i, "true")
	case c == 'f':
		return i + 5, hasWord(data, i, "false")
	case c == 'n':
		return i + 4, isNull(data, i)
	}
	var v int64
	return d.intValue(&v, i)
}

// eventFieldNames are schema.Event's JSON keys.
var eventFieldNames = [...]string{"id", "received_ms", "client_ms", "app_id", "device_id", "platform", "action",
	"version_name", "file_name", "old_version_name", "version_build", "version_code", "version_os",
	"plugin_version", "custom_id", "channel", "install_source", "key_id", "is_emulator", "is_prod", "metadata"}

// foldsToField reports whether key could match a field other than
// exactly: equal under case folding, or not ASCII at all.
func foldsToField(key []byte) bool {
	for _, c := range key {
		if c >= 0x80 {
			return true
		}
	}
	for _, f := range eventFieldNames {
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

func skipSpace(data []byte, i int) int {
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
