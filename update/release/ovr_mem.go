package release

import (
	"bytes"
	"errors"
	"unicode/utf8"
)

// Override values as this package writes them: json.Marshal of Override.
var (
	ovrJSONApp     = []byte(`{"app_id":"`)
	ovrJSONDevice  = []byte(`","device_id":"`)
	ovrJSONChannel = []byte(`","channel":"`)
	ovrJSONEnd     = []byte(`"}`)
)

// overrideChannelFast returns the channel of an override value in exactly
// the form json.Marshal writes it, with plain (unescaped, valid UTF-8,
// non-empty) strings; ok is false for anything else, which then goes
// through encoding/json. It saves a full JSON decode and three strings
// per override on a million-key load.
func overrideChannelFast(v []byte) (channel []byte, ok bool) {
	rest, ok := bytes.CutPrefix(v, ovrJSONApp)
	if !ok {
		return nil, false
	}
	if _, rest, ok = plainJSONString(rest, ovrJSONDevice); !ok {
		return nil, false
	}
	if _, rest, ok = plainJSONString(rest, ovrJSONChannel); !ok {
		return nil, false
	}
	channel, rest, ok = plainJSONString(rest, ovrJSONEnd)
	if !ok || len(rest) != 0 || len(channel) == 0 {
		return nil, false
	}
	return channel, true
}

// overrideChannel is the channel of an override value: read in place
// when the value is as json.Marshal writes it, decoded otherwise.
func overrideChannel(v []byte) ([]byte, error) {
	if ch, ok := overrideChannelFast(v); ok {
		return ch, nil
	}
	var o Override
	if err := decodeValue(v, &o); err != nil {
		return nil, err
	}
	if o.Channel == "" {
		return nil, errors.New("override without a channel")
	}
	return []byte(o.Channel), nil
}

// plainJSONString splits a string's contents up to its closing quote,
// which must be followed by sep; the contents must need no unescaping.
func plainJSONString(v, sep []byte) (s, rest []byte, ok bool) {
	i := bytes.IndexByte(v, '"')
	if i < 0 || !bytes.HasPrefix(v[i:], sep) {
		return nil, nil, false
	}
	s = v[:i]
	ascii := true
	for _, c := range s {
		if c < 0x20 || c == '\\' {
			return nil, nil, false
		}
		if c >= 0x80 {
			ascii = false
		}
	}
	if !ascii && !utf8.Valid(s) {
		return nil, nil, false
	}
	return s, v[i+len(sep):], true
}
