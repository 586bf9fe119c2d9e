package consumer

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/capstan-io/capstan/schema"
)

// ingestBody is an event as ingest publishes it.
const ingestBody = `{"id":"5f0c1e9a4b7d2c3e8f6a1b0d9c8e7f6a","received_ms":1750000000123,"client_ms":1750000000000,` +
	`"app_id":"com.example.app","device_id":"6f1b1c2e-8a4d-4f3b-9c1e-000000000042","platform":"ios",` +
	`"action":"download_complete","version_name":"1.4.2","old_version_name":"1.4.1","version_build":"1.4.0",` +
	`"version_code":"14","version_os":"17.5.1","plugin_version":"7.2.14","channel":"production",` +
	`"is_emulator":false,"is_prod":true,"metadata":{"attempt":"2","ratio":"0.5 & <1> é"}}`

// FuzzFastDecode: whenever the fast path accepts a body, encoding/json
// accepts it too and decodes exactly the same event.
func FuzzFastDecode(f *testing.F) {
	for _, s := range []string{
		ingestBody, `{}`, ` { "id" : "x" , "is_prod" : null } `, `{"is_prod":"false","is_emulator":1}`,
		`{"ID":"x"}`, `{"app_id":"a","app_id":null}`, `{"x":-0,"y":12}`, `{"version_code":5}`, `{"a":"\u00e9"}`,
		`{"received_ms":-0}`, `{"received_ms":01}`, `{"received_ms":1.5}`, `{"received_ms":1e3}`,
		`{"received_ms":123456789012345678}`, `{"received_ms":"5"}`, `{"metadata":null}`, `{"metadata":{}}`,
		`{"metadata":{"a":"1"},"metadata":{"b":"2"}}`, `{"metadata":{"a":"1"},"metadata":null}`,
		`{"metadata":{"a":null}}`, `{"metadata":{"a":1}}`, `{"metadata":{"é":"ü","a":"1","a":"2"}}`,
		`{"ſd":"x"}`, `{"app_id":"a"} x`, `{"n":01}`, `{"n":-}`, `{"k":1.5}`, `{"k":[1]}`, `{"k":{"a":1}}`,
		`{"app_id":"\xff"}`, "{\"app_id\":\"a\tb\"}", `{"is_prod":truex}`, `{"is_prod":true,"is_prod":null}`,
		`null`, `[]`, `{"a":"b"`, `{"a":"b"}}`, `{"a" "b"}`, `{"a":"b",}`, `{,}`,
		`{"reported_version":"1.0.0","ignored":true}`, `{"ignored":null,"reported_version":null}`, `{"Ignored":true}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast, slow schema.Event
		if !fastDecode(data, &fast) {
			return
		}
		if err := json.Unmarshal(data, &slow); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json: %v", data, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q:\nfast %+v\njson %+v", data, fast, slow)
		}
	})
}

func TestFastDecodeTakesIngestBodies(t *testing.T) {
	bodies := []string{ingestBody,
		"{\n \"id\" : \"x\", \"received_ms\" : 5, \"metadata\" : { } ,\t\"future_field\":\"ignored\",\"n\":-3,\"b\":false,\"z\":null\r\n}",
		`{"id":"x","version_name":"1.1.0","reported_version":"1.0.0","ignored":true}`}
	for i := 0; i < 50; i++ {
		data, err := json.Marshal(benchEvent(i))
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, string(data))
	}
	for _, s := range bodies {
		var fast, slow schema.Event
		if !fastDecode([]byte(s), &fast) {
			t.Errorf("slow path for %s", s)
			continue
		}
		if err := json.Unmarshal([]byte(s), &slow); err != nil || !reflect.DeepEqual(fast, slow) {
			t.Errorf("%s:\nfast %+v\njson %+v (%v)", s, fast, slow, err)
		}
	}
	for _, s := range []string{`{"ID":"x"}`, `{"app_id":"a\"b"}`, `{"received_ms":1.5}`, `{"x":{"y":1}}`, `[]`, `{"a":"b"`, `{"a":"b"}}`, `{"app_id":"\xff"}`} {
		var e schema.Event
		if fastDecode([]byte(s), &e) {
			t.Errorf("fast path took %s", s)
		}
	}
}

func BenchmarkDecodeEvent(b *testing.B) {
	data := []byte(ingestBody)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeEvent(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEventEncodingJSON(b *testing.B) {
	data := []byte(ingestBody)
	b.ReportAllocs()
	for b.Loop() {
		var e schema.Event
		if err := json.Unmarshal(data, &e); err != nil {
			b.Fatal(err)
		}
	}
}
