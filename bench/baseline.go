package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
)

// The baseline is the least a Go server can do for the same requests: a
// chi router whose handlers decode the same bodies into plain structs and
// write a canned answer. Capstan's numbers are reported as a ratio to it.

type baselineInfo struct {
	Platform       string            `json:"platform"`
	DeviceID       string            `json:"device_id"`
	AppID          string            `json:"app_id"`
	CustomID       string            `json:"custom_id"`
	VersionBuild   string            `json:"version_build"`
	VersionCode    string            `json:"version_code"`
	VersionOS      string            `json:"version_os"`
	VersionName    string            `json:"version_name"`
	PluginVersion  string            `json:"plugin_version"`
	IsEmulator     *bool             `json:"is_emulator"`
	IsProd         *bool             `json:"is_prod"`
	DefaultChannel string            `json:"defaultChannel"`
	InstallSource  string            `json:"install_source"`
	KeyID          string            `json:"key_id"`
	Action         string            `json:"action"`
	OldVersionName string            `json:"old_version_name"`
	Metadata       map[string]string `json:"metadata"`
	Timestamp      int64             `json:"timestamp"`
}

var (
	cannedUpdate = []byte(`{"error":"no_new_version_available","message":"No new version available","kind":"up_to_date"}`)
	cannedBadReq = []byte(`{"error":"invalid_json_body","message":"body is not valid JSON"}`)
	cannedObject = []byte(`{"status":"ok"}`)
)

const maxBaselineBody = 1 << 20

// BaselineHandler returns the bare chi router.
func BaselineHandler() http.Handler {
	// Per-count stats answers, built once.
	arrays := make([][]byte, 201)
	for n := range arrays {
		var b bytes.Buffer
		b.WriteString(`{"status":"ok","results":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"index":%d,"status":"ok"}`, i)
		}
		b.WriteString(`]}`)
		arrays[n] = b.Bytes()
	}
	r := chi.NewRouter()
	r.Post("/updates", func(w http.ResponseWriter, r *http.Request) {
		var in baselineInfo
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBaselineBody)).Decode(&in); err != nil {
			writeCanned(w, http.StatusBadRequest, cannedBadReq)
			return
		}
		writeCanned(w, http.StatusOK, cannedUpdate)
	})
	r.Post("/stats", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBaselineBody))
		if err != nil {
			writeCanned(w, http.StatusRequestEntityTooLarge, cannedBadReq)
			return
		}
		body = bytes.TrimLeft(body, " \t\r\n")
		if len(body) > 0 && body[0] == '{' {
			var in baselineInfo
			if err := json.Unmarshal(body, &in); err != nil {
				writeCanned(w, http.StatusBadRequest, cannedBadReq)
				return
			}
			writeCanned(w, http.StatusOK, cannedObject)
			return
		}
		var in []baselineInfo
		if err := json.Unmarshal(body, &in); err != nil {
			writeCanned(w, http.StatusBadRequest, cannedBadReq)
			return
		}
		ans := arrays[min(len(in), len(arrays)-1)]
		writeCanned(w, http.StatusOK, ans)
	})
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) { writeCanned(w, http.StatusOK, cannedObject) })
	return r
}

func writeCanned(w http.ResponseWriter, code int, b []byte) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(code)
	w.Write(b)
}

// ServeBaseline serves the baseline on ln until it fails; it prints the
// address on out first so a parent process can find it.
func ServeBaseline(ln net.Listener, out io.Writer) error {
	fmt.Fprintf(out, "listening on %s\n", ln.Addr())
	srv := &http.Server{Handler: BaselineHandler(), ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(ln)
}
