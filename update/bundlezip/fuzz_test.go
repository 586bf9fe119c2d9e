package bundlezip

import (
	"bytes"
	"testing"
)

// FuzzValidate checks that no input makes Validate panic or accept a zip
// whose entries are unsafe; the seeds run in every `go test`.
func FuzzValidate(f *testing.F) {
	f.Add(buildZip(f, files("index.html", "assets/a.js")...))
	f.Add(buildZip(f, files("dist/index.html")...))
	f.Add(buildZip(f, files("index.html", "../x")...))
	f.Add([]byte("PK\x05\x06" + string(make([]byte, 18))))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := Validate(bytes.NewReader(data), int64(len(data)), Limits{MaxFiles: 100, MaxUncompressedBytes: 1 << 20})
		if err != nil {
			if Code(err) == "" {
				t.Fatalf("error without a code: %v", err)
			}
			return
		}
		if info.Files == 0 {
			t.Fatal("accepted a zip without files")
		}
	})
}
