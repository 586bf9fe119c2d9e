package ingest

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The bodies plugins send take the fast path.
func TestFastDecodeTakesPluginBodies(t *testing.T) {
	bodies := []string{
		string(appendBenchBody(nil, 7)),
		base(`"timestamp":1749999999000,"metadata":{"a":"b","é":"ü"},"is_emulator":false,"is_prod":null`),
		"[" + base(`"version_build":5,"version_code":-12,"unknown":"x","n":null,"t":true,"i":3`) + "]",
		"[]",
		"[" + base(`"version_code":12,"custom_id":true,"version_os":false,"key_id":null,"app_id":7`) + "]",
		" [ " + base("") + " , " + base(`"device_id":""`) + " ] ",
	}
	for _, b := range bodies {
		var d decoder
		if _, ok := d.fastDecode([]byte(b), DefaultMaxEvents); !ok {
			t.Errorf("fast path refused %s", b)
		}
	}
}

// FuzzFastDecode checks that decode (fast path first) returns exactly what
// the encoding/json path returns, for any body. Seeds live in
// testdata/fuzz/FuzzFastDecode and run with go test.
func FuzzFastDecode(f *testing.F) {
	f.Add([]byte(appendBenchBody(nil, 1)))
	f.Add([]byte(base(`"timestamp":1,"metadata":{"a":"b"}`)))
	f.Add([]byte("[" + base("") + "," + base(`"device_id":""`) + ",1,null]"))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, max := range []int{3, DefaultMaxEvents} {
			var fast, slow decoder
			fa, fi, fe := fast.decode(body, max)
			sa, si, se := slow.decodeJSON(body, max)
			if !reflect.DeepEqual(fe, se) {
				t.Fatalf("max %d: error %+v, encoding/json %+v", max, fe, se)
			}
			if se != nil {
				continue
			}
			if fa != sa || len(fi) != len(si) {
				t.Fatalf("max %d: array %v/%v, %d/%d items", max, fa, sa, len(fi), len(si))
			}
			for i := range fi {
				if !reflect.DeepEqual(fi[i], si[i]) {
					t.Fatalf("max %d: item %d\nfast %+v\njson %+v", max, i, fi[i], si[i])
				}
			}
			// The pooled decoder reused gives the same again.
			_, again, _ := fast.decode(body, max)
			for i := range again {
				if !reflect.DeepEqual(again[i], si[i]) {
					t.Fatalf("max %d: reused decoder differs at item %d", max, i)
				}
			}
		}
	})
}

// TestFastDecodeSeedsExist keeps the seed corpus from silently vanishing.
func TestFastDecodeSeedsExist(t *testing.T) {
	m, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzFastDecode", "*"))
	if len(m) < 10 {
		t.Fatalf("%d seeds in testdata/fuzz/FuzzFastDecode", len(m))
	}
	for _, p := range m {
		b, err := os.ReadFile(p)
		if err != nil || !strings.HasPrefix(string(b), "go test fuzz v1\n") {
			t.Fatalf("%s: not a fuzz seed (%v)", p, err)
		}
	}
}
