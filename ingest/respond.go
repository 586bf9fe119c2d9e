package ingest

import (
	"net/http"
	"strconv"

	"github.com/capstan-io/capstan/internal/jsonwire"
	"github.com/capstan-io/capstan/schema"
)

func writeBody(w http.ResponseWriter, status int, body []byte) int {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return status
}

// writeError writes {"error":code,"message":msg}.
func writeError(w http.ResponseWriter, status int, code, msg string) int {
	return writeBody(w, status, jsonwire.ErrorBody(code, msg))
}

// appendResults writes the answer to an array body: one result per event,
// in order.
func appendResults(b []byte, items []item) []byte {
	b = append(b, `{"status":"ok","results":[`...)
	for i := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"index":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		if e := items[i].err; e != nil {
			b = append(b, `,"status":"error","error":`...)
			b = jsonwire.AppendString(b, e.Code)
			b = append(b, `,"message":`...)
			b = jsonwire.AppendString(b, e.Message)
			b = append(b, '}')
		} else {
			b = append(b, `,"status":"ok"}`...)
		}
	}
	return append(b, "]}"...)
}

// appendEvent appends ev as JSON exactly as encoding/json would marshal
// schema.Event (same keys, omitempty rules and sorted metadata keys),
// without reflection; TestAppendEventMatchesSchema keeps the two in step.
func appendEvent(b []byte, ev *schema.Event, keys []string) ([]byte, []string) {
	b = append(b, `{"id":`...)
	b = jsonwire.AppendString(b, ev.ID)
	b = append(b, `,"received_ms":`...)
	b = strconv.AppendInt(b, ev.ReceivedMs, 10)
	if ev.ClientMs != 0 {
		b = append(b, `,"client_ms":`...)
		b = strconv.AppendInt(b, ev.ClientMs, 10)
	}
	b = appendField(b, `,"app_id":`, ev.AppID, false)
	b = appendField(b, `,"device_id":`, ev.DeviceID, false)
	b = appendField(b, `,"platform":`, ev.Platform, false)
	b = appendField(b, `,"action":`, ev.Action, false)
	b = appendField(b, `,"version_name":`, ev.VersionName, false)
	b = appendField(b, `,"file_name":`, ev.FileName, true)
	b = appendField(b, `,"old_version_name":`, ev.OldVersionName, true)
	b = appendField(b, `,"version_build":`, ev.VersionBuild, true)
	b = appendField(b, `,"version_code":`, ev.VersionCode, true)
	b = appendField(b, `,"version_os":`, ev.VersionOS, true)
	b = appendField(b, `,"plugin_version":`, ev.PluginVersion, true)
	b = appendField(b, `,"custom_id":`, ev.CustomID, true)
	b = appendField(b, `,"channel":`, ev.Channel, true)
	b = appendField(b, `,"install_source":`, ev.InstallSource, true)
	b = appendField(b, `,"key_id":`, ev.KeyID, true)
	b = append(b, `,"is_emulator":`...)
	b = strconv.AppendBool(b, ev.IsEmulator)
	b = append(b, `,"is_prod":`...)
	b = strconv.AppendBool(b, ev.IsProd)
	b = appendField(b, `,"reported_version":`, ev.ReportedVersion, true)
	if ev.Ignored {
		b = append(b, `,"ignored":true`...)
	}
	if len(ev.Metadata) > 0 {
		b = append(b, `,"metadata":`...)
		b, keys = jsonwire.AppendStringMap(b, ev.Metadata, keys)
	}
	return append(b, '}'), keys
}

func appendField(b []byte, key, v string, omitEmpty bool) []byte {
	if omitEmpty && v == "" {
		return b
	}
	b = append(b, key...)
	return jsonwire.AppendString(b, v)
}
