package update

import (
	"encoding/json"
	"testing"
)

// FuzzFastDecode: whenever the fast path accepts a body, encoding/json
// accepts it too and decodes exactly the same values.
func FuzzFastDecode(f *testing.F) {
	for _, s := range []string{
		string(benchBody), `{}`, ` { "platform" : "ios" , "is_prod" : null } `, `{"is_prod":"false","is_emulator":1}`,
		`{"Device_ID":"x"}`, `{"device_id":"a","device_id":null}`, `{"x":-0,"y":12}`, `{"version_code":5}`, `{"a":"\u00e9"}`,
		`{"is_prod":true,"is_prod":null}`, `{"ſhannel":"x"}`, `{"app_id":"a"} x`, `{"n":01}`, `{"n":-}`, `{"k":1.5}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast, slow wireRequest
		if !fastDecode(data, &fast) {
			return
		}
		if err := json.Unmarshal(data, &slow); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json: %v", data, err)
		}
		if fast != slow {
			t.Fatalf("%q: fast %+v, encoding/json %+v", data, fast, slow)
		}
	})
}

func TestFastDecodeTakesPluginBodies(t *testing.T) {
	for _, s := range []string{
		string(benchBody),
		`{"platform":"ios","device_id":"6AA1C4C5-1C7E-4A3B-9D2E-0F2B8C1D9E01","app_id":"com.example.app","custom_id":"","version_build":"1.4.0","version_code":"14","version_os":"17.2","version_name":"builtin","plugin_version":"8.51.23","is_emulator":false,"is_prod":true,"defaultChannel":"beta"}`,
		"{\n  \"device_id\" : \"d\",\n  \"app_id\" : \"a\", \"channel\": null\n}\n",
	} {
		var w wireRequest
		if !fastDecode([]byte(s), &w) {
			t.Errorf("slow path for %s", s)
		}
	}
	for _, s := range []string{`{"DEVICE_ID":"d"}`, `{"device_id":"d\u00e9"}`, `{"version_code":14}`, `{"x":{"y":1}}`, `[]`, `{"a":"b"`, `{"a":"b"}}`} {
		var w wireRequest
		if fastDecode([]byte(s), &w) {
			t.Errorf("fast path took %s", s)
		}
	}
}
