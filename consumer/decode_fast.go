package consumer

import (
	"github.com/capstan-io/capstan/internal/jsonwire"
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
	i := jsonwire.SkipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	// Copied once, after the cheapest check: the strings of e are slices
	// of it.
	d.body = string(data)
	i, more, ok := jsonwire.OpenObject(data, i)
	for ok && more {
		var ks, ke int
		if ks, ke, ok = jsonwire.PlainString(data, jsonwire.SkipSpace(data, i)); !ok {
			return false
		}
		if i, ok = jsonwire.Colon(data, ke+1); !ok {
			return false
		}
		if i, ok = d.field(e, data[ks:ke], i); !ok {
			return false
		}
		i, more, ok = jsonwire.NextMember(data, i)
	}
	return ok && jsonwire.SkipSpace(data, i) == len(data)
}

type fastDecoder struct {
	data []byte
	body string // string(data)
}

// intValue reads an integer of at most 18 digits without leading zeros
// (or null, which leaves *dst as it was) into *dst.
func (d *fastDecoder) intValue(dst *int64, i int) (int, bool) {
	v, null, end, ok := jsonwire.NullableInt(d.data, i)
	if ok && !null {
		*dst = v
	}
	return end, ok
}

// boolValue reads a boolean (or null, which leaves *dst as it was).
func (d *fastDecoder) boolValue(dst *bool, i int) (int, bool) {
	v, null, end, ok := jsonwire.NullableBool(d.data, i)
	if ok && !null {
		*dst = v
	}
	return end, ok
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
	case "reported_version":
		dst = &e.ReportedVersion
	case "ignored":
		return d.boolValue(&e.Ignored, i)
	case "metadata":
		return jsonwire.StringMap(d.data, d.body, i, &e.Metadata)
	default:
		return jsonwire.SkipUnknown(d.data, i, key, eventFieldNames[:])
	}
	if s, e, ok := jsonwire.PlainString(d.data, i); ok {
		*dst = d.body[s:e]
		return e + 1, true
	}
	// null leaves a string as it was, like encoding/json.
	return i + 4, jsonwire.IsNull(d.data, i)
}

// eventFieldNames are schema.Event's JSON keys.
var eventFieldNames = [...]string{"id", "received_ms", "client_ms", "app_id", "device_id", "platform", "action",
	"version_name", "file_name", "old_version_name", "version_build", "version_code", "version_os",
	"plugin_version", "custom_id", "channel", "install_source", "key_id", "is_emulator", "is_prod",
	"reported_version", "ignored", "metadata"}
