package jsonlibs

import (
	stdjson "encoding/json"
	"testing"

	"github.com/bytedance/sonic"
	goccy "github.com/goccy/go-json"

	"github.com/capstan-io/capstan/update"
)

// updateBody is what @capgo/capacitor-updater 8 sends on an update check.
var updateBody = []byte(`{"platform":"android","device_id":"0b9f3c4e-8d1a-4e2b-9c3d-5f6a7b8c9d0e","app_id":"com.example.app","custom_id":"","version_build":"1.0.0","version_code":"10","version_os":"14","version_name":"1.5.0","plugin_version":"8.51.23","is_emulator":false,"is_prod":true,"install_source":"com.android.vending"}`)

// checkFields are the fields Capstan reads from an update check.
type checkFields struct {
	Platform       string `json:"platform"`
	DeviceID       string `json:"device_id"`
	AppID          string `json:"app_id"`
	CustomID       string `json:"custom_id"`
	VersionBuild   string `json:"version_build"`
	VersionCode    string `json:"version_code"`
	VersionOS      string `json:"version_os"`
	VersionName    string `json:"version_name"`
	PluginVersion  string `json:"plugin_version"`
	InstallSource  string `json:"install_source"`
	DefaultChannel string `json:"defaultChannel"`
	KeyID          string `json:"key_id"`
	Channel        string `json:"channel"`
	IsEmulator     *bool  `json:"is_emulator"`
	IsProd         *bool  `json:"is_prod"`
}

// BenchmarkUpdateCheck decodes one update check. capstan is the whole of
// update.DecodeJSON (its decoder plus validation and normalising); the
// libraries only fill the struct, so they are measured at their best.
func BenchmarkUpdateCheck(b *testing.B) {
	b.Run("capstan", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(updateBody)))
		for b.Loop() {
			if _, err := update.DecodeJSON(updateBody); err != nil {
				b.Fatal(err)
			}
		}
	})
	libs := map[string]func([]byte, any) error{
		"encoding-json": stdjson.Unmarshal,
		"goccy-go-json": goccy.Unmarshal,
		"sonic":         sonic.Unmarshal,
	}
	for _, name := range []string{"encoding-json", "goccy-go-json", "sonic"} {
		unmarshal := libs[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(updateBody)))
			for b.Loop() {
				var f checkFields
				if err := unmarshal(updateBody, &f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
