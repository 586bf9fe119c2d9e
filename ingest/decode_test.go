package ingest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/capstan-io/capstan/schema"
)

func decodeOne(t *testing.T, body string) item {
	t.Helper()
	var d decoder
	array, items, berr := d.decode([]byte(body), DefaultMaxEvents)
	if berr != nil || array || len(items) != 1 {
		t.Fatalf("decode %s: array=%v items=%d err=%v", body, array, len(items), berr)
	}
	return items[0]
}

func base(extra string) string {
	s := `{"platform":"ios","device_id":"D-1","app_id":"com.example.app","action":"set","version_name":"1.0.0"`
	if extra != "" {
		s += "," + extra
	}
	return s + "}"
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		code  string
		check func(schema.Event) bool
	}{
		{"plain", "", "", func(e schema.Event) bool { return e.DeviceID == "d-1" && e.VersionName == "1.0.0" && e.IsProd }},
		{"version file", `"version_name":"1.2.3:public/assets/app.js.br"`, "",
			func(e schema.Event) bool { return e.VersionName == "1.2.3" && e.FileName == "public/assets/app.js.br" }},
		{"file with colon", `"version_name":"1.2.3:a:b"`, "", func(e schema.Event) bool { return e.VersionName == "1.2.3" && e.FileName == "a:b" }},
		{"builtin", `"version_name":"builtin"`, "", func(e schema.Event) bool { return e.VersionName == "builtin" }},
		{"empty version", `"version_name":""`, "", func(e schema.Event) bool { return e.VersionName == "unknown" }},
		{"numeric build", `"version_build":5,"version_code":1234`, "", func(e schema.Event) bool { return e.VersionBuild == "5" && e.VersionCode == "1234" }},
		{"escaped build", `"version_build":"1.\u0032.0"`, "", func(e schema.Event) bool { return e.VersionBuild == "1.2.0" }},
		{"string bools", `"is_emulator":"true","is_prod":"false"`, "", func(e schema.Event) bool { return e.IsEmulator && !e.IsProd }},
		{"null bools", `"is_emulator":null,"is_prod":null`, "", func(e schema.Event) bool { return !e.IsEmulator && e.IsProd }},
		{"timestamp", `"timestamp":1749999999000`, "", func(e schema.Event) bool { return e.ClientMs == 1749999999000 }},
		{"float timestamp", `"timestamp":1749999999000.7`, "", func(e schema.Event) bool { return e.ClientMs == 1749999999000 }},
		{"absurd timestamp", `"timestamp":-5`, "", func(e schema.Event) bool { return e.ClientMs == 0 }},
		{"future timestamp", `"timestamp":99999999999999`, "", func(e schema.Event) bool { return e.ClientMs == 0 }},
		{"unknown keys ignored", `"foo":{"bar":[1,2]},"channel":"x"`, "", nil},
		{"upper platform", `"platform":"IOS"`, "", func(e schema.Event) bool { return e.Platform == "ios" }},
		{"empty metadata", `"metadata":{}`, "", func(e schema.Event) bool { return e.Metadata == nil }},
		{"null metadata", `"metadata":null`, "", func(e schema.Event) bool { return e.Metadata == nil }},
		{"bad timestamp", `"timestamp":"soon"`, CodeInvalidEvent, nil},
		{"bad bool", `"is_prod":"maybe"`, CodeInvalidEvent, nil},
		{"object build", `"version_build":{}`, CodeInvalidEvent, nil},
		{"metadata number", `"metadata":{"a":1}`, CodeInvalidEvent, nil},
		{"metadata array", `"metadata":[]`, CodeInvalidEvent, nil},
		{"action too long", `"action":"` + strings.Repeat("a", 65) + `"`, CodeInvalidAction, nil},
		{"action 64", `"action":"` + strings.Repeat("a", 64) + `"`, "", nil},
		{"action space", `"action":"a b"`, CodeInvalidAction, nil},
		{"app id too long", `"app_id":"` + strings.Repeat("a", 129) + `"`, CodeInvalidAppID, nil},
		{"device control char", `"device_id":"a\u0001"`, CodeInvalidDeviceID, nil},
		{"device id too long", `"device_id":"` + strings.Repeat("a", 129) + `"`, CodeInvalidDeviceID, nil},
		{"version too long", `"version_name":"` + strings.Repeat("1", 257) + `"`, CodeFieldTooLong, nil},
		{"file too long", `"version_name":"1:` + strings.Repeat("f", 1025) + `"`, CodeFieldTooLong, nil},
		{"platform", `"platform":"web"`, CodeInvalidPlatform, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it := decodeOne(t, base(tt.extra))
			if tt.code != "" {
				if it.err == nil || it.err.Code != tt.code {
					t.Fatalf("err = %v, want %s", it.err, tt.code)
				}
				return
			}
			if it.err != nil {
				t.Fatalf("unexpected error %v", it.err)
			}
			if tt.check != nil && !tt.check(it.ev) {
				t.Fatalf("event %+v", it.ev)
			}
		})
	}
}

func TestEventIDs(t *testing.T) {
	id := func(body string) string { return decodeOne(t, body).ev.ID }
	a := id(base(`"timestamp":1,"metadata":{"x":"1","y":"2"}`))
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(a) {
		t.Fatalf("id %q", a)
	}
	same := []string{
		base(`"metadata":{"y":"2","x":"1"},"timestamp":1`),                                   // key order
		strings.Replace(base(`"timestamp":1,"metadata":{"x":"1","y":"2"}`), "D-1", "d-1", 1), // device case
		base(`"timestamp":1,"metadata":{"x":"1","y":"2"},"unknown_key":"z"`),
	}
	for _, b := range same {
		if got := id(b); got != a {
			t.Errorf("%s: id %s, want %s", b, got, a)
		}
	}
	differ := []string{
		base(`"timestamp":2,"metadata":{"x":"1","y":"2"}`),
		base(`"timestamp":1,"metadata":{"x":"1","y":"3"}`),
		base(`"timestamp":1,"metadata":{"x":"1"}`),
		base(`"timestamp":1,"metadata":{"x":"1","y":"2"},"custom_id":"c"`),
		base(`"timestamp":1,"metadata":{"x":"1","y":"2"},"is_emulator":true`),
		base(`"metadata":{"x":"1","y":"2"}`),
		// Length prefixes keep field boundaries apart.
		base(`"timestamp":1,"metadata":{"x":"1","y":"2"},"custom_id":"ab","install_source":""`),
	}
	seen := map[string]bool{a: true}
	for _, b := range differ {
		got := id(b)
		if seen[got] {
			t.Errorf("%s: id %s collides", b, got)
		}
		seen[got] = true
	}
	x := id(base(`"custom_id":"ab","install_source":""`))
	y := id(base(`"custom_id":"a","install_source":"b"`))
	if x == y {
		t.Error("field boundary not part of the id")
	}
}

// Event ids must not change between releases, or a batch resent across
// an upgrade would be stored twice.
func TestEventIDsStable(t *testing.T) {
	for body, want := range map[string]string{
		base(""): "fd5469a282539a4d1f635edd736174f8",
		base(`"timestamp":1749999999000,"metadata":{"b":"2","a":"1\n","é":""},"is_emulator":true,"is_prod":"false"`): "521f73e43b492678923b261ad4b0888f",
		base(`"is_emulator":"0","is_prod":null,"custom_id":"c\u2028","version_build":5`):                             "6c1eb3e886d356168ee8aca1a97e2be4",
	} {
		if got := decodeOne(t, body).ev.ID; got != want {
			t.Errorf("%s: id %s, want %s", body, got, want)
		}
	}
}

// The per-request nonce changes the ids of timestamp-less events only.
func TestEventIDNonce(t *testing.T) {
	id := func(nonce byte, body string) string {
		var d decoder
		d.h.nonce[15] = nonce
		_, items, berr := d.decode([]byte(body), 10)
		if berr != nil || len(items) != 1 || items[0].err != nil {
			t.Fatalf("%s: %v %+v", body, berr, items)
		}
		return items[0].ev.ID
	}
	stamped := base(`"timestamp":1749999999000`)
	if id(1, stamped) != id(2, stamped) || id(1, stamped) != id(0, stamped) {
		t.Error("nonce changed a timestamped event's id")
	}
	bare := base("")
	if id(1, bare) == id(2, bare) || id(1, bare) == id(0, bare) {
		t.Error("nonce did not change a timestamp-less event's id")
	}
	if id(1, bare) != id(1, bare) {
		t.Error("same nonce, different ids")
	}
}

func TestBadBoolMessage(t *testing.T) {
	for _, extra := range []string{`"is_prod":"maybe"`, `"is_emulator":2`} {
		it := decodeOne(t, base(extra))
		if it.err != errBadBool {
			t.Errorf("%s: err = %v, want %v", extra, it.err, errBadBool)
		}
	}
}

func TestRepeatedContentInOneRequest(t *testing.T) {
	for _, n := range []int{3, 100} { // linear scan and map
		var evs []string
		for i := 0; i < n; i++ {
			if i%3 == 0 {
				evs = append(evs, base(fmt.Sprintf(`"timestamp":%d`, i)))
			} else {
				evs = append(evs, base(`"action":"app_moved_to_foreground"`))
			}
		}
		body := []byte("[" + strings.Join(evs, ",") + "]")
		var d decoder
		_, items, berr := d.decode(body, 1000)
		if berr != nil {
			t.Fatal(berr)
		}
		ids := map[string]bool{}
		var first []string
		for _, it := range items {
			if ids[it.ev.ID] {
				t.Fatalf("n=%d: id %s given twice", n, it.ev.ID)
			}
			ids[it.ev.ID] = true
			first = append(first, it.ev.ID)
		}
		// Resending with the same pooled decoder gives the same ids.
		_, items, _ = d.decode(body, 1000)
		for i, it := range items {
			if it.ev.ID != first[i] {
				t.Fatalf("n=%d: resend changed id %d", n, i)
			}
		}
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for _, tt := range []struct {
		base int
		r    uint64
		want int
	}{{2, 0, 2}, {2, 1, 3}, {2, 2, 4}, {2, 3, 2}, {1, 1, 2}, {5, 11, 10}} {
		if got := retryAfterSeconds(tt.base, tt.r); got != tt.want {
			t.Errorf("retryAfterSeconds(%d, %d) = %d, want %d", tt.base, tt.r, got, tt.want)
		}
	}
}

func TestScopeLabel(t *testing.T) {
	for _, tt := range []struct {
		ev   schema.Event
		want string
	}{
		{schema.Event{IsProd: true}, ScopeProduction},
		{schema.Event{IsProd: true, IsEmulator: true}, ScopeOther},
		{schema.Event{IsProd: false}, ScopeOther},
		{schema.Event{IsProd: true, Ignored: true}, ScopeIgnored},
		{schema.Event{IsProd: false, IsEmulator: true, Ignored: true}, ScopeIgnored},
	} {
		if got := scopeLabel(&tt.ev); got != tt.want {
			t.Errorf("scopeLabel(%+v) = %s, want %s", tt.ev, got, tt.want)
		}
	}
}

func TestActionLabel(t *testing.T) {
	for a, want := range map[string]string{"set": "set", "download_40": "download_40", "download_45": "other",
		"app_crash_native": "app_crash_native", "revert": "revert", "brand_new": "other",
		"session_key_required": "session_key_required", "checksum_required": "checksum_required"} {
		if got := actionLabel(a); got != want {
			t.Errorf("actionLabel(%q) = %q, want %q", a, got, want)
		}
	}
}

// FuzzDecode feeds arbitrary bodies to the stats decoder: it must never
// panic, must refuse or accept the body as a whole consistently, and every
// event it accepts must satisfy the limits and encode as schema.Event.
// Seeds live in testdata/fuzz/FuzzDecode and run with go test.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(base(`"timestamp":1,"metadata":{"a":"b"}`)))
	f.Add([]byte("[" + base("") + "," + base(`"device_id":""`) + ",1,null]"))
	f.Fuzz(func(t *testing.T, body []byte) {
		var d decoder
		array, items, berr := d.decode(body, 50)
		if berr != nil {
			if items != nil || berr.code == "" || berr.message == "" || (berr.status != 400 && berr.status != 413) {
				t.Fatalf("bad refusal %+v items=%d", berr, len(items))
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		if !array && len(items) != 1 {
			t.Fatalf("object body gave %d items", len(items))
		}
		if len(items) > 50 {
			t.Fatalf("%d items over the limit", len(items))
		}
		ids := map[string]bool{}
		for i, it := range items {
			if it.err != nil {
				if it.err.Code == "" || it.err.Message == "" {
					t.Fatalf("item %d: empty error %+v", i, it.err)
				}
				continue
			}
			checkEvent(t, it.ev)
			if ids[it.ev.ID] {
				t.Fatalf("item %d: id %s repeated in one request", i, it.ev.ID)
			}
			ids[it.ev.ID] = true
		}
		// Decoding again (a resend) gives the same ids.
		var d2 decoder
		_, again, _ := d2.decode(body, 50)
		for i := range items {
			if items[i].ev.ID != again[i].ev.ID {
				t.Fatalf("item %d: id not deterministic", i)
			}
		}
		out := appendResults(nil, items)
		if !json.Valid(out) {
			t.Fatalf("results not JSON: %s", out)
		}
	})
}

func checkEvent(t *testing.T, ev schema.Event) {
	t.Helper()
	if len(ev.ID) != eventIDLen || ev.AppID == "" || ev.DeviceID == "" || ev.Action == "" || ev.VersionName == "" {
		t.Fatalf("incomplete event %+v", ev)
	}
	if ev.DeviceID != strings.ToLower(ev.DeviceID) {
		t.Fatalf("device id not lowercase: %q", ev.DeviceID)
	}
	switch ev.Platform {
	case "ios", "android", "electron":
	default:
		t.Fatalf("platform %q", ev.Platform)
	}
	if len(ev.Action) > MaxActionLen || len(ev.AppID) > MaxAppIDLen || len(ev.DeviceID) > MaxDeviceIDLen {
		t.Fatalf("over length: %+v", ev)
	}
	if strings.Contains(ev.VersionName, ":") {
		t.Fatalf("composite version not split: %q", ev.VersionName)
	}
	if len(ev.Metadata) > MaxMetadataKeys {
		t.Fatalf("%d metadata keys", len(ev.Metadata))
	}
	for k, v := range ev.Metadata {
		if utf8.RuneCountInString(k) > MaxMetadataKeyLen || utf8.RuneCountInString(v) > MaxMetadataValueLen {
			t.Fatalf("metadata over limits")
		}
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var back schema.Event
	if err := json.Unmarshal(b, &back); err != nil || back.ID != ev.ID || back.DeviceID != ev.DeviceID {
		t.Fatalf("event does not round-trip: %v", err)
	}
}

// Numbers and booleans where a string belongs are kept as their JSON text,
// as /updates and /channel_self do; objects and arrays fail only their
// own event, naming the field. Both decoder paths agree.
func TestLenientStrings(t *testing.T) {
	ok := []struct {
		extra string
		check func(schema.Event) bool
	}{
		{`"version_code":12`, func(e schema.Event) bool { return e.VersionCode == "12" }},
		{`"version_build":true`, func(e schema.Event) bool { return e.VersionBuild == "true" }},
		{`"custom_id":-7`, func(e schema.Event) bool { return e.CustomID == "-7" }},
		{`"custom_id":1.5e3`, func(e schema.Event) bool { return e.CustomID == "1.5e3" }},
		{`"version_os":false`, func(e schema.Event) bool { return e.VersionOS == "false" }},
		{`"defaultChannel":null`, func(e schema.Event) bool { return e.Channel == "" }},
		{`"old_version_name":123456789012345678901234`, func(e schema.Event) bool { return e.OldVersionName == "123456789012345678901234" }},
		{`"app_id":12345`, func(e schema.Event) bool { return e.AppID == "12345" }},
		{`"version_name":2`, func(e schema.Event) bool { return e.VersionName == "2" }},
	}
	for _, tt := range ok {
		body := base(tt.extra)
		for name, decode := range decoders() {
			it := decodeWith(t, decode, "["+body+"]")
			if len(it) != 1 || it[0].err != nil || !tt.check(it[0].ev) {
				t.Errorf("%s %s: %+v", name, tt.extra, it)
			}
		}
	}
	bad := map[string]string{
		`"app_id":{"a":1}`:     "app_id must be a string, number or boolean",
		`"version_code":[1]`:   "version_code must be a string, number or boolean",
		`"Key_ID":{}`:          "key_id must be a string, number or boolean",
		`"platform":["ios"]`:   "platform must be a string, number or boolean",
		`"metadata":{"a":1}`:   "",
		`"install_source":[]`:  "install_source must be a string, number or boolean",
		`"plugin_version":{} `: "plugin_version must be a string, number or boolean",
	}
	for extra, msg := range bad {
		body := "[" + base("") + "," + base(extra) + "," + base(`"version_code":3`) + "]"
		for name, decode := range decoders() {
			it := decodeWith(t, decode, body)
			if len(it) != 3 || it[0].err != nil || it[2].err != nil || it[2].ev.VersionCode != "3" {
				t.Fatalf("%s %s: neighbours lost: %+v", name, extra, it)
			}
			if it[1].err == nil || it[1].err.Code != CodeInvalidEvent || msg != "" && it[1].err.Message != msg {
				t.Errorf("%s %s: error %+v, want %q", name, extra, it[1].err, msg)
			}
		}
		// A lone object gives the same error.
		for name, decode := range decoders() {
			it := decodeWith(t, decode, base(extra))
			if len(it) != 1 || it[0].err == nil || msg != "" && it[0].err.Message != msg {
				t.Errorf("%s lone %s: %+v", name, extra, it)
			}
		}
	}
}

type decodeFunc func(d *decoder, body []byte) (bool, []item, *bodyError)

func decoders() map[string]decodeFunc {
	return map[string]decodeFunc{
		"fast":          func(d *decoder, b []byte) (bool, []item, *bodyError) { return d.decode(b, DefaultMaxEvents) },
		"encoding/json": func(d *decoder, b []byte) (bool, []item, *bodyError) { return d.decodeJSON(b, DefaultMaxEvents) },
	}
}

func decodeWith(t *testing.T, decode decodeFunc, body string) []item {
	t.Helper()
	var d decoder
	_, items, berr := decode(&d, []byte(body))
	if berr != nil {
		t.Fatalf("%s: %v", body, berr)
	}
	return items
}

func TestAttributedVersion(t *testing.T) {
	for _, tt := range []struct {
		action, version string
		meta            map[string]string
		want            string
	}{
		{"download_fail", "1.0.0", nil, "1.0.0"},
		{"download_fail", "1.0.0", map[string]string{"failed_version": "1.1.0"}, "1.1.0"},
		{"download_fail", "1.0.0", map[string]string{"version_name": "1.1.0:www/app.js"}, "1.1.0"},
		{"download_fail", "1.0.0", map[string]string{"version_name": "1.1.0", "failed_version": "1.2.0"}, "1.2.0"},
		{"download_fail", "1.0.0", map[string]string{"failed_version": ""}, "1.0.0"},
		{"checksum_required", "1.0.0", map[string]string{"failed_version": "1.1.0"}, "1.1.0"},
		{"app_crash", "1.0.0", map[string]string{"exit_reason": "crash"}, "1.0.0"},
		{"set", "1.0.0", map[string]string{"failed_version": "1.1.0"}, "1.0.0"}, // not a failure
		{"download_fail", "1.0.0", map[string]string{"failed_version": strings.Repeat("9", 300)}, "1.0.0"},
	} {
		if got := attributedVersion(tt.action, tt.version, tt.meta); got != tt.want {
			t.Errorf("attributedVersion(%s, %s, %v) = %s, want %s", tt.action, tt.version, tt.meta, got, tt.want)
		}
	}
	// The event keeps what the device sent.
	it := decodeOne(t, base(`"action":"download_fail","metadata":{"failed_version":"1.1.0"}`))
	if it.err != nil || it.ev.VersionName != "1.1.0" || it.ev.ReportedVersion != "1.0.0" {
		t.Fatalf("%+v", it)
	}
	if it := decodeOne(t, base(`"action":"download_fail"`)); it.ev.VersionName != "1.0.0" || it.ev.ReportedVersion != "" {
		t.Fatalf("%+v", it)
	}
}

func TestLegacyDownloadFail(t *testing.T) {
	for _, tt := range []struct {
		action, plugin string
		want           bool
	}{
		{"download_fail", "5.9.9", true},
		{"download_fail", "6.14.24", true},
		{"download_fail", "6.14.25", false},
		{"download_fail", "6.20.0", false},
		{"download_fail", "7.0.0", true},
		{"download_fail", "7.16.9", true},
		{"download_fail", "7.17.0", false},
		{"download_fail", "7.17.0-beta.1", false},
		{"download_fail", "v7.2", true},
		{"download_fail", "8.0.0", false},
		{"download_fail", "8.51.23", false},
		{"download_fail", "", false},
		{"download_fail", "unknown", false},
		{"download_fail", "7.x", false},
		{"set_fail", "6.0.0", false},
		{"download_manifest_file_fail", "7.0.0", false},
	} {
		if got := legacyDownloadFail(tt.action, tt.plugin); got != tt.want {
			t.Errorf("legacyDownloadFail(%s, %s) = %v, want %v", tt.action, tt.plugin, got, tt.want)
		}
	}
	if it := decodeOne(t, base(`"action":"download_fail","plugin_version":"7.1.0"`)); it.err != nil || !it.ev.Ignored {
		t.Fatalf("legacy download_fail not marked: %+v", it)
	}
}
