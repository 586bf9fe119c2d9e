package jsonlibs

import (
	stdjson "encoding/json"
	"testing"

	"github.com/bytedance/sonic"
	goccy "github.com/goccy/go-json"

	"github.com/capstan-io/capstan/update"
)

// TestStrictness lists the bodies on which a library accepts or refuses
// differently from encoding/json (and from update.DecodeJSON, which
// answers 400 invalid_json_body to invalid JSON). It reports; it does not
// fail, since the point is what each library does.
func TestStrictness(t *testing.T) {
	bodies := []string{
		`{"n":01}`, `{"n":-}`, `{"n":1.}`, `{"x":tru}`, `{"x":[1,]}`, `{"x":{"y":}}`, `{"a":"b"} x`,
		`{"version_code":12}`, `{"is_prod":"yes"}`, `{"device_id":"\ud800"}`,
	}
	libs := []struct {
		name string
		fn   func([]byte, any) error
	}{{"goccy-go-json", goccy.Unmarshal}, {"sonic", sonic.Unmarshal}}
	for _, b := range bodies {
		var std checkFields
		stdErr := stdjson.Unmarshal([]byte(b), &std)
		_, capErr := update.DecodeJSON([]byte(b))
		for _, l := range libs {
			var f checkFields
			err := l.fn([]byte(b), &f)
			if (err == nil) != (stdErr == nil) {
				t.Logf("%-14s %-22s encoding/json: %v; %s: %v; capstan: %v", l.name, b, errText(stdErr), l.name, errText(err), capErr)
			}
		}
	}
}

func errText(err error) string {
	if err == nil {
		return "accepted"
	}
	return "refused"
}
