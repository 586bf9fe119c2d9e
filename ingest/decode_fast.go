package ingest

import "github.com/capstan-io/capstan/internal/jsonwire"

// fastDecode decodes the bodies plugins send — an array (or one object)
// of flat event objects with strings without escapes, integers, booleans
// and a flat metadata object of strings — without reflection; every
// string slices one copy of the body. Anything else (escapes, invalid
// UTF-8, nested unknown values, fractions, keys matching a field only
// case-insensitively, non-object elements, too many events, bad syntax,
// objects or arrays where a string belongs, values of the wrong type) returns false with the decoder reset, and
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
	i, more, ok := jsonwire.OpenObject(data, i)
	for ok && more {
		var ks, ke int
		if ks, ke, ok = jsonwire.PlainString(data, jsonwire.SkipSpace(data, i)); !ok {
			return 0, false
		}
		if i, ok = jsonwire.Colon(data, ke+1); !ok {
			return 0, false
		}
		if i, ok = f.field(w, data[ks:ke], i); !ok {
			return 0, false
		}
		i, more, ok = jsonwire.NextMember(data, i)
	}
	return i, ok
}

// field reads the value at i for key and returns the index after it.
func (f *fastDecoder) field(w *wireEvent, key []byte, i int) (int, bool) {
	var dst *flexString
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
		dst = &w.VersionBuild
	case "version_code":
		dst = &w.VersionCode
	case "is_emulator":
		return f.boolValue(&w.IsEmulator, i)
	case "is_prod":
		return f.boolValue(&w.IsProd, i)
	case "metadata":
		return jsonwire.StringMap(f.data, f.body, i, &w.Metadata)
	case "timestamp":
		return f.timestamp(&w.Timestamp, i)
	default:
		return jsonwire.SkipUnknown(f.data, i, key, wireFieldNames[:])
	}
	return f.flexValue(dst, i)
}

// flexValue reads a string field as flexString.UnmarshalJSON does: a
// string, an integer or boolean kept as its text, or null (which clears
// it). Anything else goes to encoding/json.
func (f *fastDecoder) flexValue(dst *flexString, i int) (int, bool) {
	data := f.data
	if i >= len(data) {
		return 0, false
	}
	switch data[i] {
	case '"':
		s, e, ok := jsonwire.PlainString(data, i)
		if !ok {
			return 0, false
		}
		*dst = flexString(f.body[s:e])
		return e + 1, true
	case 'n':
		*dst = ""
		return i + 4, jsonwire.IsNull(data, i)
	case 't':
		*dst = "true"
		return i + 4, jsonwire.HasWord(data, i, "true")
	case 'f':
		*dst = "false"
		return i + 5, jsonwire.HasWord(data, i, "false")
	}
	_, end, ok := jsonwire.Int(data, i)
	if !ok {
		return 0, false
	}
	*dst = flexString(f.body[i:end])
	return end, true
}

// boolValue reads is_emulator/is_prod as jsonwire.OptBool does; what it
// refuses goes to encoding/json, which reports the error.
func (f *fastDecoder) boolValue(dst *jsonwire.OptBool, i int) (int, bool) {
	v, null, end, ok := jsonwire.NullableBool(f.data, i)
	switch {
	case !ok:
	case null:
		*dst = jsonwire.BoolUnset
	case v:
		*dst = jsonwire.BoolTrue
	default:
		*dst = jsonwire.BoolFalse
	}
	return end, ok
}

// timestamp reads an integer (or null, which clears it).
func (f *fastDecoder) timestamp(dst *optInt, i int) (int, bool) {
	v, null, end, ok := jsonwire.NullableInt(f.data, i)
	if ok {
		*dst = optInt{V: v, Set: !null}
	}
	return end, ok
}

// wireFieldNames are wireEvent's JSON keys.
var wireFieldNames = [...]string{"app_id", "device_id", "platform", "action", "version_name",
	"old_version_name", "version_build", "version_code", "version_os", "plugin_version", "custom_id",
	"defaultChannel", "install_source", "key_id", "is_emulator", "is_prod", "metadata", "timestamp"}
