package admin

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/capstan-io/capstan/bus"
	"github.com/capstan-io/capstan/update/bundlezip"
	"github.com/capstan-io/capstan/update/release"
)

const testToken = "start-up-secret"

type env struct {
	srv    *httptest.Server
	store  *release.Store
	client *Client
	ctx    context.Context
	// hc checks every exchange against openapi.json.
	hc *http.Client
}

// newEnvOn is the env of the API served by srv over st.
func newEnvOn(t testing.TB, srv *httptest.Server, st *release.Store, ctx context.Context) *env {
	t.Helper()
	c := checkedAPIClient(t, srv.URL, testToken)
	return &env{srv: srv, store: st, client: c, ctx: ctx, hc: c.HTTP}
}

// checkedAPIClient is a Client whose exchanges are checked against
// openapi.json.
func checkedAPIClient(t testing.TB, baseURL, token string) *Client {
	c := NewClient(baseURL, token)
	c.HTTP = checkedClient(t)
	return c
}

// newEnv runs the admin API on a real store over an embedded JetStream.
func newEnv(t testing.TB, tweak func(*Config)) *env {
	t.Helper()
	return newEnvJS(t, func(c *Config, _ jetstream.JetStream) {
		if tweak != nil {
			tweak(c)
		}
	})
}

// newEnvJS is newEnv whose tweak also gets the JetStream the store uses.
func newEnvJS(t testing.TB, tweak func(*Config, jetstream.JetStream)) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	b, err := bus.Open(ctx, bus.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	st, err := release.Open(ctx, b.JetStream, release.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Store: st, AdminToken: testToken, TempDir: t.TempDir()}
	tweak(&cfg, b.JetStream)
	r := chi.NewRouter()
	r.Mount("/api/v1", New(cfg).Handler())
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return newEnvOn(t, srv, st, ctx)
}

// raw sends a request and returns status, headers and the decoded error body.
func (e *env) raw(t *testing.T, method, path, token, contentType string, body io.Reader) (int, http.Header, ErrorBody, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(e.ctx, method, e.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var eb ErrorBody
	_ = json.Unmarshal(data, &eb)
	return resp.StatusCode, resp.Header, eb, data
}

func wantAPIError(t *testing.T, err error, status int, code string) {
	t.Helper()
	var ae *APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want API error %d %s", err, status, code)
	}
	if ae.Status != status || ae.Code != code {
		t.Fatalf("got %d %s (%s), want %d %s", ae.Status, ae.Code, ae.Message, status, code)
	}
	if ae.Message == "" {
		t.Fatalf("error %s has no message", code)
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

type zf struct{ name, body string }

func makeZip(t *testing.T, files ...zf) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		w, err := zw.Create(f.name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, f.body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func goodZip(t *testing.T) []byte {
	return makeZip(t, zf{"index.html", "<html>hello</html>"}, zf{"assets/app.js", "console.log(1)"})
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func (e *env) app(t *testing.T, id string) {
	t.Helper()
	if _, err := e.client.CreateApp(e.ctx, id, ""); err != nil {
		t.Fatal(err)
	}
}

func (e *env) bundle(t *testing.T, app, version string) release.Bundle {
	t.Helper()
	b, err := e.client.UploadBundle(e.ctx, app, BundleMetadata{Version: version}, bytes.NewReader(goodZip(t)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAuth(t *testing.T) {
	e := newEnv(t, nil)
	status, h, eb, _ := e.raw(t, "GET", "/api/v1/apps", "", "", nil)
	if status != 401 || eb.Error != "missing_token" || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("no token: %d %+v %q", status, eb, h.Get("WWW-Authenticate"))
	}
	status, h, eb, _ = e.raw(t, "GET", "/api/v1/apps", "wrong", "", nil)
	if status != 401 || eb.Error != "invalid_token" || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("wrong token: %d %+v", status, eb)
	}
	// Another scheme is not a bearer token.
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/apps", nil)
	req.Header.Set("Authorization", "Basic "+testToken)
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("basic auth: %d", resp.StatusCode)
	}
	// Unknown paths and methods are hidden behind auth, then JSON errors.
	if status, _, eb, _ := e.raw(t, "GET", "/api/v1/nope", "", "", nil); status != 401 || eb.Error != "missing_token" {
		t.Fatalf("unknown path without token: %d %+v", status, eb)
	}
	if status, _, eb, _ := e.raw(t, "GET", "/api/v1/nope", testToken, "", nil); status != 404 || eb.Error != "not_found" {
		t.Fatalf("unknown path: %d %+v", status, eb)
	}
	if status, _, eb, _ := e.raw(t, "PATCH", "/api/v1/apps", testToken, "", nil); status != 405 || eb.Error != "method_not_allowed" {
		t.Fatalf("wrong method: %d %+v", status, eb)
	}

	if _, err := e.client.ListApps(e.ctx); err != nil {
		t.Fatalf("good token: %v", err)
	}
	created, err := e.client.CreateToken(e.ctx, "ci", RoleAdmin, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(created.Token, TokenPrefix) || len(created.Token) < 40 || created.Name != "ci" {
		t.Fatalf("created token %+v", created)
	}
	// Only the hash is stored.
	if !e.store.Snapshot().TokenHashKnown(hashToken(created.Token)) {
		t.Fatal("token hash not in store")
	}
	other := checkedAPIClient(t, e.srv.URL, created.Token)
	if _, err := other.CreateApp(e.ctx, "com.example.viatoken", ""); err != nil {
		t.Fatalf("created token rejected: %v", err)
	}
	second, err := other.CreateToken(e.ctx, "ci2", RoleAdmin, nil)
	if err != nil || second.Token == created.Token {
		t.Fatalf("second token %+v %v", second, err)
	}
	_, err = checkedAPIClient(t, e.srv.URL, created.Token+"x").ListApps(e.ctx)
	wantAPIError(t, err, 401, "invalid_token")
}

func TestNoStartupToken(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AdminToken = "" })
	_, err := e.client.ListApps(e.ctx)
	wantAPIError(t, err, 401, "invalid_token")
	_, err = checkedAPIClient(t, e.srv.URL, "").ListApps(e.ctx)
	wantAPIError(t, err, 401, "missing_token")
}

func TestApps(t *testing.T) {
	e := newEnv(t, nil)
	app, err := e.client.CreateApp(e.ctx, "com.example.app", "Example")
	if err != nil {
		t.Fatal(err)
	}
	if app.ID != "com.example.app" || app.Name != "Example" || app.CreatedAt.IsZero() {
		t.Fatalf("created %+v", app)
	}
	_, err = e.client.CreateApp(e.ctx, "com.example.app", "")
	wantAPIError(t, err, 409, "app_exists")
	for _, bad := range []string{"", "single", "com..app", ".com.app", "com.app.", "com/app.x", "com.app x", strings.Repeat("a.", 65) + "b"} {
		_, err := e.client.CreateApp(e.ctx, bad, "")
		wantAPIError(t, err, 400, "invalid_app_id")
	}
	e.app(t, "io.capstan.demo")
	apps := must[[]release.App](t)(e.client.ListApps(e.ctx))
	if len(apps) != 2 || apps[0].ID != "com.example.app" || apps[1].ID != "io.capstan.demo" {
		t.Fatalf("apps = %+v", apps)
	}
	got := must[release.App](t)(e.client.GetApp(e.ctx, "com.example.app"))
	if got.Name != "Example" {
		t.Fatalf("get = %+v", got)
	}
	_, err = e.client.GetApp(e.ctx, "com.missing.app")
	wantAPIError(t, err, 404, "app_not_found")
	if err := e.client.DeleteApp(e.ctx, "io.capstan.demo"); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.store.Snapshot().App("io.capstan.demo"); ok {
		t.Fatal("app still in snapshot after delete")
	}
	wantAPIError(t, e.client.DeleteApp(e.ctx, "io.capstan.demo"), 404, "app_not_found")

	// Body shape errors.
	cases := []struct {
		ct, body string
		status   int
		code     string
	}{
		{"text/plain", `{"id":"com.a.b"}`, 415, "unsupported_media_type"},
		{"application/json", `{"id":"com.a.b","nme":"typo"}`, 400, "invalid_json_body"},
		{"application/json", `{"id":"com.a.b"} {}`, 400, "invalid_json_body"},
		{"application/json", `[1,2]`, 400, "invalid_json_body"},
		{"application/json", ``, 400, "invalid_json_body"},
		{"application/json", `{"id":"com.a.b","name":"` + strings.Repeat("x", 2<<20) + `"}`, 413, "body_too_large"},
	}
	for _, tc := range cases {
		status, _, eb, _ := e.raw(t, "POST", "/api/v1/apps", testToken, tc.ct, strings.NewReader(tc.body))
		if status != tc.status || eb.Error != tc.code || eb.Message == "" {
			t.Errorf("POST /apps %.40q: %d %+v, want %d %s", tc.body, status, eb, tc.status, tc.code)
		}
	}
}

// multipartBody builds an upload by hand, for shapes Client never sends.
func multipartBody(t *testing.T, parts map[string][]byte, order ...string) (string, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, name := range order {
		w, err := mw.CreateFormField(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(parts[name])
	}
	mw.Close()
	return mw.FormDataContentType(), &buf
}

func TestUploadValidation(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.MaxUploadBytes = 64 << 10
		c.Limits = bundlezip.Limits{MaxFiles: 10, MaxUncompressedBytes: 256 << 10}
	})
	e.app(t, "com.example.app")
	noise := make([]byte, 200<<10)
	rand.Read(noise)
	many := []zf{{"index.html", "x"}}
	for i := range 11 {
		many = append(many, zf{fmt.Sprintf("f%d.js", i), "x"})
	}
	cases := []struct {
		name   string
		meta   BundleMetadata
		zip    []byte
		status int
		code   string
	}{
		{"no index.html", BundleMetadata{Version: "1.0.0"}, makeZip(t, zf{"main.js", "x"}), 400, "missing_index_html"},
		{"two top folders", BundleMetadata{Version: "1.0.0"}, makeZip(t, zf{"dist/index.html", "x"}, zf{"other/a.js", "x"}), 400, "missing_index_html"},
		{"zip slip", BundleMetadata{Version: "1.0.0"}, makeZip(t, zf{"index.html", "x"}, zf{"../../etc/cron.d/x", "x"}), 400, "unsafe_path"},
		{"absolute path", BundleMetadata{Version: "1.0.0"}, makeZip(t, zf{"index.html", "x"}, zf{"/etc/x", "x"}), 400, "unsafe_path"},
		{"too many files", BundleMetadata{Version: "1.0.0"}, makeZip(t, many...), 413, "too_many_files"},
		{"unzips too large", BundleMetadata{Version: "1.0.0"}, makeZip(t, zf{"index.html", strings.Repeat("a", 300<<10)}), 413, "too_large"},
		{"upload too large", BundleMetadata{Version: "1.0.0"}, noise, 413, "upload_too_large"},
		{"not a zip", BundleMetadata{Version: "1.0.0"}, []byte("hello, I am not a zip"), 400, "invalid_zip"},
		{"empty file", BundleMetadata{Version: "1.0.0"}, []byte{}, 400, "empty_file"},
		{"bad version", BundleMetadata{Version: "1.0"}, goodZip(t), 400, "invalid_version"},
		{"v prefix", BundleMetadata{Version: "v1.0.0"}, goodZip(t), 400, "invalid_version"},
		{"missing version", BundleMetadata{}, goodZip(t), 400, "invalid_version"},
		{"checksum mismatch", BundleMetadata{Version: "1.0.0", Checksum: strings.Repeat("ab", 32)}, goodZip(t), 400, "checksum_mismatch"},
		{"checksum not sha256", BundleMetadata{Version: "1.0.0", Checksum: "deadbeef"}, goodZip(t), 400, "invalid_checksum"},
		{"encrypted without checksum", BundleMetadata{Version: "1.0.0", SessionKey: "aXY=:a2V5"}, noise[:1000], 400, "missing_checksum"},
		{"encrypted but plain zip", BundleMetadata{Version: "1.0.0", SessionKey: "aXY=:a2V5", Checksum: strings.Repeat("ab", 256)}, goodZip(t), 400, "not_encrypted"},
		{"encrypted with base64 checksum", BundleMetadata{Version: "1.0.0", SessionKey: "aXY=:a2V5", Checksum: "U2lnbmVkQ2hlY2tzdW0="}, noise[:1000], 400, "invalid_checksum"},
		{"malformed session key", BundleMetadata{Version: "1.0.0", SessionKey: "nocolon", Checksum: "sig"}, noise[:1000], 400, "invalid_session_key"},
		{"file and external url", BundleMetadata{Version: "1.0.0", ExternalURL: "https://cdn.example.com/b.zip", Checksum: sha([]byte("x"))}, goodZip(t), 400, "unexpected_file"},
		{"bad min_update_version", BundleMetadata{Version: "1.0.0", MinUpdateVersion: "soon"}, goodZip(t), 400, "invalid_min_update_version"},
		{"manifest traversal", BundleMetadata{Version: "1.0.0", Manifest: []release.ManifestEntry{{FileName: "../x", FileHash: "h", DownloadURL: "https://cdn/x"}}}, goodZip(t), 400, "invalid_manifest"},
		{"manifest bad url", BundleMetadata{Version: "1.0.0", Manifest: []release.ManifestEntry{{FileName: "a.js", FileHash: "h", DownloadURL: "ftp://x"}}}, goodZip(t), 400, "invalid_manifest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.UploadBundle(e.ctx, "com.example.app", tc.meta, bytes.NewReader(tc.zip))
			wantAPIError(t, err, tc.status, tc.code)
		})
	}
	if n := len(e.store.Snapshot().Bundles("com.example.app")); n != 0 {
		t.Fatalf("%d bundles stored by rejected uploads", n)
	}

	// Metadata-only shapes.
	metaCases := []struct {
		name   string
		meta   BundleMetadata
		status int
		code   string
	}{
		{"external without checksum", BundleMetadata{Version: "1.0.0", ExternalURL: "https://cdn.example.com/b.zip"}, 400, "missing_checksum"},
		{"external not http", BundleMetadata{Version: "1.0.0", ExternalURL: "file:///etc/passwd", Checksum: sha([]byte("x"))}, 400, "invalid_external_url"},
		{"nothing to serve", BundleMetadata{Version: "1.0.0"}, 400, "missing_file"},
	}
	for _, tc := range metaCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.UploadBundle(e.ctx, "com.example.app", tc.meta, nil)
			wantAPIError(t, err, tc.status, tc.code)
		})
	}

	// Hand-made multipart bodies.
	metaJSON := []byte(`{"version":"1.0.0"}`)
	rawCases := []struct {
		name   string
		parts  map[string][]byte
		order  []string
		status int
		code   string
	}{
		{"no metadata part", map[string][]byte{"file": goodZip(t)}, []string{"file"}, 400, "missing_metadata"},
		{"unknown part", map[string][]byte{"metadata": metaJSON, "extra": {1}}, []string{"metadata", "extra"}, 400, "invalid_multipart"},
		{"two metadata parts", map[string][]byte{"metadata": metaJSON}, []string{"metadata", "metadata"}, 400, "invalid_multipart"},
		{"metadata not JSON", map[string][]byte{"metadata": []byte("version=1"), "file": goodZip(t)}, []string{"metadata", "file"}, 400, "invalid_metadata"},
		{"metadata unknown field", map[string][]byte{"metadata": []byte(`{"version":"1.0.0","sesion_key":"x"}`), "file": goodZip(t)}, []string{"metadata", "file"}, 400, "invalid_metadata"},
	}
	for _, tc := range rawCases {
		t.Run(tc.name, func(t *testing.T) {
			ct, body := multipartBody(t, tc.parts, tc.order...)
			status, _, eb, _ := e.raw(t, "POST", "/api/v1/apps/com.example.app/bundles", testToken, ct, body)
			if status != tc.status || eb.Error != tc.code {
				t.Fatalf("%d %+v, want %d %s", status, eb, tc.status, tc.code)
			}
		})
	}
	if status, _, eb, _ := e.raw(t, "POST", "/api/v1/apps/com.example.app/bundles", testToken, "application/zip", bytes.NewReader(goodZip(t))); status != 415 || eb.Error != "unsupported_media_type" {
		t.Fatalf("zip body: %d %+v", status, eb)
	}
	if status, _, eb, _ := e.raw(t, "POST", "/api/v1/apps/com.example.app/bundles", testToken, "multipart/form-data", strings.NewReader("x")); status != 400 || eb.Error != "invalid_multipart" {
		t.Fatalf("no boundary: %d %+v", status, eb)
	}
	_, err := e.client.UploadBundle(e.ctx, "com.missing.app", BundleMetadata{Version: "1.0.0"}, bytes.NewReader(goodZip(t)))
	wantAPIError(t, err, 404, "app_not_found")

	// A taken version is refused as soon as the metadata part is read,
	// before the (here oversized) file.
	e.bundle(t, "com.example.app", "1.0.0")
	_, err = e.client.UploadBundle(e.ctx, "com.example.app", BundleMetadata{Version: "1.0.0"}, bytes.NewReader(noise))
	wantAPIError(t, err, 409, "bundle_exists")
}

func TestUploadAccepted(t *testing.T) {
	e := newEnv(t, nil)
	e.app(t, "com.example.app")
	const app = "com.example.app"

	// Plaintext: checksum computed, the stored bytes are the upload.
	z := goodZip(t)
	b, err := e.client.UploadBundle(e.ctx, app, BundleMetadata{
		Version: "1.0.0", Comment: "first", Link: "https://example.com/notes", Breaking: true,
		MinUpdateVersion: "1.0", Data: map[string]string{"k": "v"},
	}, bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	if b.Checksum != sha(z) || b.ObjectSHA256 != sha(z) || b.Size != int64(len(z)) || b.SessionKey != "" {
		t.Fatalf("bundle %+v, want checksum %s size %d", b, sha(z), len(z))
	}
	if b.Comment != "first" || !b.Breaking || b.Data["k"] != "v" || b.MinUpdateVersion != "1.0" || b.CreatedAt.IsZero() {
		t.Fatalf("metadata not kept: %+v", b)
	}
	f, _, err := e.store.OpenBundle(e.ctx, app, "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(stored, z) {
		t.Fatal("stored zip differs from the upload")
	}

	// Duplicate version.
	_, err = e.client.UploadBundle(e.ctx, app, BundleMetadata{Version: "1.0.0"}, bytes.NewReader(z))
	wantAPIError(t, err, 409, "bundle_exists")

	// A matching checksum (any case) is accepted; index.html in one top folder.
	z2 := makeZip(t, zf{"www/index.html", "v2"}, zf{"www/a.js", "a"})
	b, err = e.client.UploadBundle(e.ctx, app, BundleMetadata{Version: "1.1.0", Checksum: strings.ToUpper(sha(z2))}, bytes.NewReader(z2))
	if err != nil || b.Checksum != sha(z2) {
		t.Fatalf("checksum given: %+v %v", b, err)
	}

	// Encrypted: opaque bytes, session_key/checksum/key_id kept verbatim.
	enc := make([]byte, 4096)
	rand.Read(enc)
	meta := BundleMetadata{Version: "2.0.0-beta.1+build.7", SessionKey: "QUJDREVGR0hJSktMTU5PUA==:c2VjcmV0a2V5ZW5jcnlwdGVk", Checksum: strings.Repeat("5a", 256), KeyID: "MIIBCgKCAQEAv3Y0a1Mx"}
	b, err = e.client.UploadBundle(e.ctx, app, meta, bytes.NewReader(enc))
	if err != nil {
		t.Fatal(err)
	}
	if b.SessionKey != meta.SessionKey || b.Checksum != meta.Checksum || b.KeyID != meta.KeyID || b.ObjectSHA256 != sha(enc) {
		t.Fatalf("encrypted bundle %+v", b)
	}

	// External URL: metadata only, checksum required and kept.
	ext := BundleMetadata{Version: "1.2.0", ExternalURL: "https://cdn.example.com/app/1.2.0.zip", Checksum: sha([]byte("remote"))}
	b, err = e.client.UploadBundle(e.ctx, app, ext, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b.ExternalURL != ext.ExternalURL || b.Checksum != ext.Checksum || b.Object != "" {
		t.Fatalf("external bundle %+v", b)
	}
	// The same as a multipart body with only the metadata part.
	ct, body := multipartBody(t, map[string][]byte{"metadata": []byte(`{"version":"1.2.1","external_url":"https://cdn.example.com/x.zip","checksum":"` + sha([]byte("y")) + `"}`)}, "metadata")
	if status, _, eb, data := e.raw(t, "POST", "/api/v1/apps/"+app+"/bundles", testToken, ct, body); status != 201 {
		t.Fatalf("multipart metadata only: %d %+v %s", status, eb, data)
	}

	// Manifest-only delta bundle.
	man := []release.ManifestEntry{{FileName: "index.html", FileHash: sha([]byte("i")), DownloadURL: "https://cdn.example.com/i"}}
	b, err = e.client.UploadBundle(e.ctx, app, BundleMetadata{Version: "1.3.0", Manifest: man}, nil)
	if err != nil || len(b.Manifest) != 1 || b.Manifest[0] != man[0] {
		t.Fatalf("manifest bundle %+v %v", b, err)
	}

	// Listed newest first by semver.
	e.bundle(t, app, "1.10.0")
	list := must[[]release.Bundle](t)(e.client.ListBundles(e.ctx, app))
	var vs []string
	for _, b := range list {
		vs = append(vs, b.Version)
	}
	if got := strings.Join(vs, " "); got != "2.0.0-beta.1+build.7 1.10.0 1.3.0 1.2.1 1.2.0 1.1.0 1.0.0" {
		t.Fatalf("order: %s", got)
	}
	one := must[release.Bundle](t)(e.client.GetBundle(e.ctx, app, "2.0.0-beta.1+build.7"))
	if one.KeyID != meta.KeyID {
		t.Fatalf("get bundle %+v", one)
	}
	_, err = e.client.GetBundle(e.ctx, app, "9.9.9")
	wantAPIError(t, err, 404, "bundle_not_found")

	// Delete.
	if err := e.client.DeleteBundle(e.ctx, app, "1.10.0"); err != nil {
		t.Fatal(err)
	}
	wantAPIError(t, e.client.DeleteBundle(e.ctx, app, "1.10.0"), 404, "bundle_not_found")
}

func ptr[T any](v T) *T { return &v }

func TestChannels(t *testing.T) {
	e := newEnv(t, nil)
	const app = "com.example.app"
	e.app(t, app)
	e.bundle(t, app, "1.0.0")
	e.bundle(t, app, "1.1.0")

	// Created from defaults; only given fields differ.
	c, err := e.client.SetChannel(e.ctx, app, "production", ChannelPatch{Bundle: ptr("1.0.0"), Public: ptr(true)})
	if err != nil {
		t.Fatal(err)
	}
	want := release.NewChannel(app, "production")
	want.Bundle, want.Public, want.ID, want.UpdatedAt = "1.0.0", true, c.ID, c.UpdatedAt
	if !reflect.DeepEqual(c, want) || c.ID == 0 || c.UpdatedAt.IsZero() {
		t.Fatalf("created %+v\nwant %+v", c, want)
	}
	// Partial update keeps the rest.
	c, err = e.client.SetChannel(e.ctx, app, "production", ChannelPatch{DisableAutoUpdate: ptr("minor"), Android: ptr(false), RolloutBundle: ptr("1.1.0"), RolloutPercent: ptr(25.0)})
	if err != nil {
		t.Fatal(err)
	}
	if c.Bundle != "1.0.0" || !c.Public || c.DisableAutoUpdate != "minor" || c.Android || !c.IOS || c.RolloutBundle != "1.1.0" || c.RolloutPercent != 25 || c.ID != want.ID {
		t.Fatalf("updated %+v", c)
	}
	// Clearing the rollout bundle ends the rollout.
	c = must[release.Channel](t)(e.client.SetChannel(e.ctx, app, "production", ChannelPatch{RolloutBundle: ptr("")}))
	if c.RolloutBundle != "" || c.RolloutPercent != 0 {
		t.Fatalf("rollout not cleared: %+v", c)
	}
	// Every flag round-trips.
	c = must[release.Channel](t)(e.client.SetChannel(e.ctx, app, "beta", ChannelPatch{
		Bundle: ptr(""), AllowSelfSet: ptr(true), IOS: ptr(false), Electron: ptr(false),
		DisableAutoUpdate: ptr("version_number"), DisableUnderNative: ptr(false),
		AllowProd: ptr(false), AllowDev: ptr(true), AllowEmulator: ptr(false), AllowDevice: ptr(true),
	}))
	if !c.AllowSelfSet || c.IOS || !c.Android || c.Electron || c.DisableAutoUpdate != "version_number" || c.DisableUnderNative || c.AllowProd || !c.AllowDev || c.AllowEmulator || !c.AllowDevice || c.Public {
		t.Fatalf("beta %+v", c)
	}

	bad := []struct {
		name   string
		ch     string
		p      ChannelPatch
		status int
		code   string
	}{
		{"unknown bundle", "production", ChannelPatch{Bundle: ptr("3.0.0")}, 404, "bundle_not_found"},
		{"unknown rollout bundle", "production", ChannelPatch{RolloutBundle: ptr("3.0.0")}, 404, "bundle_not_found"},
		{"non-semver bundle", "production", ChannelPatch{Bundle: ptr("latest")}, 400, "invalid_bundle"},
		{"percent too big", "production", ChannelPatch{RolloutBundle: ptr("1.1.0"), RolloutPercent: ptr(150.0)}, 400, "invalid_rollout_percent"},
		{"negative percent", "production", ChannelPatch{RolloutPercent: ptr(-1.0)}, 400, "invalid_rollout_percent"},
		{"percent without bundle", "production", ChannelPatch{RolloutPercent: ptr(10.0)}, 400, "invalid_rollout"},
		{"bad policy", "production", ChannelPatch{DisableAutoUpdate: ptr("always")}, 400, "invalid_policy"},
		{"bad name", "bad name", ChannelPatch{}, 400, "invalid_channel_name"},
		// A new channel serves every platform, so public it clashes with production on ios.
		{"second public channel", "staging", ChannelPatch{Public: ptr(true)}, 409, "public_channel_conflict"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.SetChannel(e.ctx, app, tc.ch, tc.p)
			wantAPIError(t, err, tc.status, tc.code)
		})
	}
	if _, ok := e.store.Snapshot().Channel(app, "staging"); ok {
		t.Fatal("rejected channel was created")
	}
	// Public on disjoint platforms is fine: production serves ios+electron
	// (android off), so an android-only public channel does not clash.
	if _, err := e.client.SetChannel(e.ctx, app, "android-prod", ChannelPatch{Public: ptr(true), IOS: ptr(false), Electron: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	// ...but turning android back on for production now does.
	_, err = e.client.SetChannel(e.ctx, app, "production", ChannelPatch{Android: ptr(true)})
	wantAPIError(t, err, 409, "public_channel_conflict")

	list := must[[]release.Channel](t)(e.client.ListChannels(e.ctx, app))
	if len(list) != 3 || list[0].Name != "android-prod" || list[1].Name != "beta" || list[2].Name != "production" {
		t.Fatalf("list %+v", list)
	}
	got := must[release.Channel](t)(e.client.GetChannel(e.ctx, app, "beta"))
	if got.Name != "beta" || !got.AllowSelfSet {
		t.Fatalf("get %+v", got)
	}
	_, err = e.client.GetChannel(e.ctx, app, "nope")
	wantAPIError(t, err, 404, "channel_not_found")
	_, err = e.client.SetChannel(e.ctx, "com.missing.app", "production", ChannelPatch{})
	wantAPIError(t, err, 404, "app_not_found")

	// A bundle a channel points at cannot be deleted.
	wantAPIError(t, e.client.DeleteBundle(e.ctx, app, "1.0.0"), 409, "bundle_in_use")

	// Channel delete is refused while devices are pinned to it.
	if _, err := e.client.SetDeviceChannel(e.ctx, app, "DEV-1", "beta"); err != nil {
		t.Fatal(err)
	}
	wantAPIError(t, e.client.DeleteChannel(e.ctx, app, "beta"), 409, "channel_in_use")
	if err := e.client.UnsetDeviceChannel(e.ctx, app, "dev-1"); err != nil {
		t.Fatal(err)
	}
	if err := e.client.DeleteChannel(e.ctx, app, "beta"); err != nil {
		t.Fatal(err)
	}
	wantAPIError(t, e.client.DeleteChannel(e.ctx, app, "beta"), 404, "channel_not_found")
}

// Promote and roll back are channel writes; the snapshot devices are
// answered from must show them as soon as the call returns.
func TestPromoteRollbackVisibleImmediately(t *testing.T) {
	e := newEnv(t, nil)
	const app = "com.example.app"
	e.app(t, app)
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		e.bundle(t, app, v)
	}
	steps := []string{"1.0.0", "1.1.0", "1.2.0", "1.1.0", "", "1.0.0"}
	for _, v := range steps {
		if _, err := e.client.SetChannel(e.ctx, app, "production", ChannelPatch{Bundle: ptr(v), Public: ptr(true)}); err != nil {
			t.Fatal(err)
		}
		c, ok := e.store.Snapshot().Channel(app, "production")
		if !ok || c.Bundle != v {
			t.Fatalf("after pointing production at %q the snapshot has %+v", v, c)
		}
	}
	if _, err := e.client.SetChannel(e.ctx, app, "production", ChannelPatch{RolloutBundle: ptr("1.2.0"), RolloutPercent: ptr(10.0)}); err != nil {
		t.Fatal(err)
	}
	if c, _ := e.store.Snapshot().Channel(app, "production"); c.RolloutBundle != "1.2.0" || c.RolloutPercent != 10 {
		t.Fatalf("rollout not visible: %+v", c)
	}
}

func TestDevices(t *testing.T) {
	e := newEnv(t, nil)
	const app = "com.example.app"
	e.app(t, app)
	for _, ch := range []string{"beta", "qa"} {
		if _, err := e.client.SetChannel(e.ctx, app, ch, ChannelPatch{}); err != nil {
			t.Fatal(err)
		}
	}
	const dev = "0F8FAD5B-D9CB-469F-A165-70867728950E"
	o, err := e.client.SetDeviceChannel(e.ctx, app, dev, "beta")
	if err != nil {
		t.Fatal(err)
	}
	if o.DeviceID != strings.ToLower(dev) || o.Channel != "beta" {
		t.Fatalf("override %+v", o)
	}
	if ch, ok := e.store.Snapshot().Override(app, strings.ToLower(dev)); !ok || ch != "beta" {
		t.Fatalf("snapshot override %q %v", ch, ok)
	}
	// Re-pinning moves the device.
	if _, err := e.client.SetDeviceChannel(e.ctx, app, dev, "qa"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.SetDeviceChannel(e.ctx, app, "aaaa-1", "beta"); err != nil {
		t.Fatal(err)
	}
	list := must[[]release.Override](t)(e.client.ListDevices(e.ctx, app))
	if len(list) != 2 || list[0].DeviceID != "0f8fad5b-d9cb-469f-a165-70867728950e" || list[0].Channel != "qa" || list[1].DeviceID != "aaaa-1" {
		t.Fatalf("list %+v", list)
	}
	status, _, _, data := e.raw(t, "GET", "/api/v1/apps/"+app+"/devices?channel=beta", testToken, "", nil)
	var filtered []release.Override
	json.Unmarshal(data, &filtered)
	if status != 200 || len(filtered) != 1 || filtered[0].DeviceID != "aaaa-1" {
		t.Fatalf("filtered %d %s", status, data)
	}
	status, _, _, data = e.raw(t, "GET", "/api/v1/apps/"+app+"/devices/"+dev+"/channel", testToken, "", nil)
	if status != 200 || !strings.Contains(string(data), `"qa"`) {
		t.Fatalf("get override %d %s", status, data)
	}

	_, err = e.client.SetDeviceChannel(e.ctx, app, dev, "nope")
	wantAPIError(t, err, 404, "channel_not_found")
	_, err = e.client.SetDeviceChannel(e.ctx, app, dev, "")
	wantAPIError(t, err, 400, "invalid_channel_name")
	_, err = e.client.SetDeviceChannel(e.ctx, app, "bad device", "beta")
	wantAPIError(t, err, 400, "invalid_device_id")
	_, err = e.client.SetDeviceChannel(e.ctx, "com.missing.app", dev, "beta")
	wantAPIError(t, err, 404, "app_not_found")

	if err := e.client.UnsetDeviceChannel(e.ctx, app, dev); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.store.Snapshot().Override(app, strings.ToLower(dev)); ok {
		t.Fatal("override still in snapshot")
	}
	wantAPIError(t, e.client.UnsetDeviceChannel(e.ctx, app, dev), 404, "override_not_found")
}

// Routes can be added to a router that already has routes of its own.
func TestRoutesOnExistingRouter(t *testing.T) {
	e := newEnv(t, nil)
	r := chi.NewRouter()
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) })
	r.Route("/api/v1", New(Config{Store: e.store, AdminToken: testToken}).Routes)
	srv := httptest.NewServer(r)
	defer srv.Close()
	if _, err := checkedAPIClient(t, srv.URL, testToken).ListApps(e.ctx); err != nil {
		t.Fatal(err)
	}
	_, err := checkedAPIClient(t, srv.URL, "bad").ListApps(e.ctx)
	wantAPIError(t, err, 401, "invalid_token")
}
