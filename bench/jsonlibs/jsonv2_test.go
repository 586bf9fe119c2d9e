//go:build goexperiment.jsonv2

package jsonlibs

import (
	jsonv2 "encoding/json/v2"
	"testing"
)

// Run with GOEXPERIMENT=jsonv2.
func BenchmarkUpdateCheckJSONv2(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(updateBody)))
	for b.Loop() {
		var f checkFields
		if err := jsonv2.Unmarshal(updateBody, &f); err != nil {
			b.Fatal(err)
		}
	}
}
