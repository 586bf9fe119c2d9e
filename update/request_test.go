package update

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestDecodeJSON(t *testing.T) {
	cases := []struct {
		name    string
		body    string
		wantErr string
		check   func(t *testing.T, r Request)
	}{
		{name: "full", body: `{"platform":"ios","device_id":"6AA1C4C5-1C7E-4A3B-9D2E-0F2B8C1D9E01","app_id":"com.example.app","custom_id":"","version_build":"1.4.0","version_code":"14","version_os":"17.2","version_name":"builtin","plugin_version":"8.51.23","is_emulator":true,"is_prod":false,"install_source":"testflight","defaultChannel":"beta","key_id":"MIIBCgKCAQEAxyzxyzx"}`,
			check: func(t *testing.T, r Request) {
				want := Request{Platform: "ios", DeviceID: "6aa1c4c5-1c7e-4a3b-9d2e-0f2b8c1d9e01", AppID: "com.example.app", VersionBuild: "1.4.0", VersionCode: "14",
					VersionOS: "17.2", VersionName: "builtin", PluginVersion: "8.51.23", IsEmulator: true, IsProd: false, InstallSource: "testflight",
					DefaultChannel: "beta", KeyID: "MIIBCgKCAQEAxyzxyzx"}
				if r != want {
					t.Errorf("got %+v\nwant %+v", r, want)
				}
			}},
		{name: "bool defaults", body: `{"device_id":"d","app_id":"a"}`, check: func(t *testing.T, r Request) {
			if r.IsEmulator || !r.IsProd {
				t.Errorf("defaults: emulator %v prod %v", r.IsEmulator, r.IsProd)
			}
		}},
		{name: "null bools are defaults", body: `{"device_id":"d","app_id":"a","is_prod":null,"is_emulator":null}`, check: func(t *testing.T, r Request) {
			if r.IsEmulator || !r.IsProd {
				t.Errorf("null: emulator %v prod %v", r.IsEmulator, r.IsProd)
			}
		}},
		{name: "string bools", body: `{"device_id":"d","app_id":"a","is_prod":"false","is_emulator":"true"}`, check: func(t *testing.T, r Request) {
			if !r.IsEmulator || r.IsProd {
				t.Errorf("strings: emulator %v prod %v", r.IsEmulator, r.IsProd)
			}
		}},
		{name: "numbers where strings are expected", body: `{"device_id":"d","app_id":"a","version_code":14,"version_build":5,"custom_id":null,"platform":"Android"}`, check: func(t *testing.T, r Request) {
			if r.VersionCode != "14" || r.VersionBuild != "5" || r.Platform != "android" {
				t.Errorf("lenient: %+v", r)
			}
		}},
		{name: "booleans where strings are expected", body: `{"device_id":"d","app_id":"a","custom_id":true,"version_name":false}`, check: func(t *testing.T, r Request) {
			if r.CustomID != "true" || r.VersionName != "false" {
				t.Errorf("lenient: %+v", r)
			}
		}},
		{name: "array where a string is expected", body: `{"device_id":"d","app_id":"a","version_name":["1.0.0"]}`, wantErr: CodeInvalidJSONBody},
		{name: "unknown keys ignored", body: `{"device_id":"d","app_id":"a","future":{"x":[1,2]}}`},
		{name: "channel", body: `{"device_id":"d","app_id":"a","channel":"beta"}`, check: func(t *testing.T, r Request) {
			if r.Channel != "beta" {
				t.Error(r.Channel)
			}
		}},
		{name: "empty", body: ``, wantErr: CodeInvalidJSONBody},
		{name: "whitespace", body: " \n ", wantErr: CodeInvalidJSONBody},
		{name: "not json", body: `platform=ios`, wantErr: CodeInvalidJSONBody},
		{name: "truncated", body: `{"device_id":"d"`, wantErr: CodeInvalidJSONBody},
		{name: "trailing garbage", body: `{"device_id":"d","app_id":"a"} x`, wantErr: CodeInvalidJSONBody},
		{name: "array", body: `[{"device_id":"d","app_id":"a"}]`, wantErr: CodeInvalidJSONBody},
		{name: "string", body: `"hello"`, wantErr: CodeInvalidJSONBody},
		{name: "null", body: `null`, wantErr: CodeMissingDeviceID},
		{name: "object field", body: `{"device_id":{"a":1},"app_id":"a"}`, wantErr: CodeInvalidJSONBody},
		{name: "bad bool", body: `{"device_id":"d","app_id":"a","is_prod":"maybe"}`, wantErr: CodeInvalidJSONBody},
		{name: "missing device", body: `{"app_id":"a"}`, wantErr: CodeMissingDeviceID},
		{name: "missing app", body: `{"device_id":"d"}`, wantErr: CodeMissingAppID},
		{name: "empty device", body: `{"device_id":"","app_id":"a"}`, wantErr: CodeMissingDeviceID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := DecodeJSON([]byte(tc.body))
			if tc.wantErr != "" {
				if err == nil || err.Code != tc.wantErr || err.Status != http.StatusBadRequest {
					t.Fatalf("err = %v, want %s", err, tc.wantErr)
				}
				var m map[string]string
				if json.Unmarshal(err.Body(), &m) != nil || m["error"] != tc.wantErr || m["message"] == "" || len(m) != 2 {
					t.Fatalf("error body %s", err.Body())
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected %v", err)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

func TestValidateVersionBuild(t *testing.T) {
	for in, ok := range map[string]bool{
		"1.4.0": true, "5": true, "1.2": true, "v2.0.1": true, "1.0.0-rc.1+b5": true, "01.2.3": true, " 1.2.3 ": true,
		"": true, "unknown": true, // answered by the decision
		"abc": false, "1.2.3.4": false, "1..2": false, "-1": false, strings.Repeat("9", 300): false,
	} {
		r := Request{VersionBuild: in}
		err := r.ValidateVersionBuild()
		if (err == nil) != ok {
			t.Errorf("%q: err %v, want ok=%v", in, err, ok)
		}
		if err != nil && (err.Code != CodeSemverError || err.Status != 400) {
			t.Errorf("%q: %+v", in, err)
		}
	}
	for in, canon := range map[string]string{"5": "5.0.0", "1.2": "1.2.0", "v2.0.1": "2.0.1", "1.4.0": "1.4.0"} {
		if got := parseVersion(in).canon; got != canon {
			t.Errorf("coerce %q = %q, want %q", in, got, canon)
		}
	}
}

func TestDecodeLegacyHeaders(t *testing.T) {
	h := http.Header{}
	if _, ok, _ := DecodeLegacyHeaders(h); ok {
		t.Fatal("no headers is a health check")
	}
	h.Set("User-Agent", "CapacitorUpdater/4.0.0 (com.example.app) ios/16")
	if _, ok, _ := DecodeLegacyHeaders(h); ok {
		t.Fatal("unrelated headers are a health check")
	}
	h.Set("cap_platform", "android")
	h.Set("cap_device_id", "ABC")
	h.Set("cap_app_id", "com.example.app")
	h.Set("cap_version_build", "1.0")
	h.Set("cap_plugin_version", "4.0.0")
	h.Set("cap_version_name", "1.1.0")
	r, ok, err := DecodeLegacyHeaders(h)
	if !ok || err != nil {
		t.Fatalf("ok %v err %v", ok, err)
	}
	want := Request{Platform: "android", DeviceID: "abc", AppID: "com.example.app", VersionBuild: "1.0", PluginVersion: "4.0.0", VersionName: "1.1.0", IsProd: true}
	if r != want {
		t.Fatalf("got %+v", r)
	}
	h.Del("cap_app_id")
	if _, ok, err := DecodeLegacyHeaders(h); !ok || err == nil || err.Code != CodeMissingAppID {
		t.Fatalf("missing app: %v", err)
	}
}

func TestDecodeQuery(t *testing.T) {
	q := url.Values{"app_id": {"a"}, "device_id": {"D"}, "platform": {"IOS"}, "is_prod": {"false"}, "is_emulator": {"true"}}
	r, err := DecodeQuery(q)
	if err != nil || r.DeviceID != "d" || r.Platform != "ios" || r.IsProd || !r.IsEmulator {
		t.Fatalf("%+v %v", r, err)
	}
	if _, err := DecodeQuery(url.Values{"app_id": {"a"}, "is_prod": {"nope"}}); err == nil {
		t.Fatal("bad bool accepted")
	}
	if _, err := DecodeQuery(url.Values{}); err == nil || err.Code != CodeMissingAppID {
		t.Fatalf("missing app: %v", err)
	}
}
