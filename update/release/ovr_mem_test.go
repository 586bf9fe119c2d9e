package release

import (
	"encoding/json"
	"testing"
)

// FuzzOverrideChannelFast checks the fast path agrees with encoding/json
// on every value it accepts.
func FuzzOverrideChannelFast(f *testing.F) {
	for _, s := range []string{
		`{"app_id":"com.a","device_id":"00000000-0000-4000-8000-000000000000","channel":"beta"}`,
		`{"app_id":"com.a","device_id":"d","channel":""}`,
		`{"app_id":"com.a","device_id":"d","channel":"b\"c"}`,
		`{"app_id":"com.a","device_id":"d","channel":"b\\u0041"}`,
		`{"app_id":"com.a","device_id":"d","channel":"bêta"}`,
		"{\"app_id\":\"com.a\",\"device_id\":\"d\",\"channel\":\"b\xff\"}",
		"{\"app_id\":\"com.a\",\"device_id\":\"d\",\"channel\":\"b\x01\"}",
		`{"app_id":"com.a","device_id":"d","channel":"beta"} `,
		`{"app_id":"com.a","device_id":"d","channel":"beta","channel":"qa"}`,
		`{"app_id":"com.a","device_id":"d","Channel":"beta"}`,
		`{"app_id":"com.a","device_id":"d","channel":"beta"}}`,
		`{"app_id":"com.a","device_id":"d","channel":"beta"`,
		`{"app_id":"com.a","device_id":"d\",\"channel\":\"x","channel":"beta"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		ch, ok := overrideChannelFast(v)
		if !ok {
			return
		}
		var o Override
		if err := decodeValue(v, &o); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json: %v", v, err)
		}
		if o.Channel != string(ch) || o.Channel == "" {
			t.Fatalf("fast path read channel %q from %q, encoding/json %q", ch, v, o.Channel)
		}
	})
}

func TestOverrideChannelFastMarshal(t *testing.T) {
	for _, ch := range []string{"beta", "production", "bêta", "a b"} {
		v, _ := json.Marshal(Override{AppID: "com.a", DeviceID: "00000000-0000-4000-8000-000000000000", Channel: ch})
		if got, ok := overrideChannelFast(v); !ok || string(got) != ch {
			t.Errorf("%s: got %q, %v", v, got, ok)
		}
	}
}
