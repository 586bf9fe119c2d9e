package update

import "github.com/capstan-io/capstan/internal/jsonwire"

// fastDecode handles the body every plugin sends — one flat object of
// plain ASCII strings and booleans — without reflection. Anything else
// (escapes, non-ASCII, nesting, numbers in string fields, keys that only
// match case-insensitively, bad syntax) returns false and the caller falls
// back to encoding/json, so the result is always what encoding/json would
// produce; FuzzFastDecode checks exactly that.
func fastDecode(data []byte, w *wireRequest) bool {
	i := jsonwire.SkipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = jsonwire.SkipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return jsonwire.SkipSpace(data, i+1) == len(data)
	}
	for {
		// key
		if i >= len(data) || data[i] != '"' {
			return false
		}
		ks, ke, ok := scanPlainString(data, i+1)
		if !ok {
			return false
		}
		key := data[ks:ke]
		i = jsonwire.SkipSpace(data, ke+1)
		if i >= len(data) || data[i] != ':' {
			return false
		}
		i = jsonwire.SkipSpace(data, i+1)
		if i >= len(data) {
			return false
		}
		// value: a plain string, a literal or a simple number
		vs, ve := i, 0
		isString := false
		switch c := data[i]; {
		case c == '"':
			s, e, ok := scanPlainString(data, i+1)
			if !ok {
				return false
			}
			vs, ve, i, isString = s, e, e+1, true
		case c == 't' || c == 'f' || c == 'n':
			for i < len(data) && data[i] >= 'a' && data[i] <= 'z' {
				i++
			}
			switch string(data[vs:i]) {
			case "true", "false", "null":
			default:
				return false
			}
		case c == '-' || (c >= '0' && c <= '9'):
			if c == '-' {
				i++
			}
			for i < len(data) && (data[i] >= '0' && data[i] <= '9') {
				i++
			}
			// Only plain integers without leading zeros; the rest goes slow.
			if (data[vs] == '-' && (i == vs+1 || data[vs+1] == '0' && i > vs+2)) || (data[vs] == '0' && i > vs+1) {
				return false
			}
		default:
			return false
		}
		if !isString {
			ve = i
		}
		if !fastField(w, key, data, vs, ve, isString) {
			return false
		}
		i = jsonwire.SkipSpace(data, i)
		if i >= len(data) {
			return false
		}
		switch data[i] {
		case ',':
			i = jsonwire.SkipSpace(data, i+1)
		case '}':
			return jsonwire.SkipSpace(data, i+1) == len(data)
		default:
			return false
		}
	}
}

// fastField stores one value; data[vs:ve] is the string's contents when
// isString, else the raw literal or number.
func fastField(w *wireRequest, key, data []byte, vs, ve int, isString bool) bool {
	var dst *string
	switch string(key) { // no allocation: the compiler compares in place
	case "platform":
		dst = &w.Platform
	case "device_id":
		dst = &w.DeviceID
	case "app_id":
		dst = &w.AppID
	case "custom_id":
		dst = &w.CustomID
	case "version_build":
		dst = &w.VersionBuild
	case "version_code":
		dst = &w.VersionCode
	case "version_os":
		dst = &w.VersionOS
	case "version_name":
		dst = &w.VersionName
	case "plugin_version":
		dst = &w.PluginVersion
	case "install_source":
		dst = &w.InstallSource
	case "defaultChannel":
		dst = &w.DefaultChannel
	case "key_id":
		dst = &w.KeyID
	case "channel":
		dst = &w.Channel
	case "is_emulator", "is_prod":
		b := &w.IsProd
		if key[3] == 'e' {
			b = &w.IsEmulator
		}
		raw := data[vs:ve]
		if isString {
			raw = data[vs-1 : ve+1] // with its quotes
		}
		return b.UnmarshalJSON(raw) == nil
	default:
		// encoding/json also matches keys case-insensitively: leave
		// such keys to it. Other unknown keys are ignored.
		return !foldsToField(key)
	}
	if !isString {
		// null leaves a string field as it was, like encoding/json;
		// numbers and booleans go to the lenient path.
		return string(data[vs:ve]) == "null"
	}
	*dst = internValue(data[vs:ve])
	return true
}

// internValue avoids allocating the strings nearly every request repeats.
func internValue(b []byte) string {
	switch string(b) {
	case "":
		return ""
	case "ios":
		return "ios"
	case "android":
		return "android"
	case "electron":
		return "electron"
	case "builtin":
		return "builtin"
	}
	return string(b)
}

var wireFieldNames = [...]string{"platform", "device_id", "app_id", "custom_id", "version_build", "version_code",
	"version_os", "version_name", "plugin_version", "install_source", "defaultChannel", "key_id", "channel",
	"is_emulator", "is_prod"}

func foldsToField(key []byte) bool {
	for _, f := range wireFieldNames {
		if len(f) != len(key) {
			continue
		}
		eq := true
		for j := 0; j < len(f); j++ {
			a, b := f[j], key[j]
			if a|0x20 != b|0x20 || (a|0x20 < 'a' || a|0x20 > 'z') && a != b {
				eq = false
				break
			}
		}
		if eq {
			return true
		}
	}
	// Non-ASCII keys can fold to ASCII ones (U+017F ſ folds to s, U+212A K
	// to k): leave them to encoding/json too.
	for _, c := range key {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// scanPlainString finds the closing quote of a string starting at i. It
// accepts printable ASCII without escapes only.
func scanPlainString(data []byte, i int) (start, end int, ok bool) {
	start = i
	for ; i < len(data); i++ {
		c := data[i]
		if c == '"' {
			return start, i, true
		}
		if c < 0x20 || c == '\\' || c >= 0x80 {
			return 0, 0, false
		}
	}
	return 0, 0, false
}
