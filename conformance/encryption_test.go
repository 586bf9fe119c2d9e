package conformance

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capstan-io/capstan/update/admin"
)

// capgo runs the pinned @capgo/cli in project. No API key is configured,
// so it makes no network call: `key create` and `bundle encrypt` are local.
func capgo(t *testing.T, project string, args ...string) []byte {
	t.Helper()
	version := readPin(t, "cli.version")
	cli := filepath.Join(repoRoot(t), ".cache", "capgo-cli", "node_modules", "@capgo", "cli", "dist", "index.js")
	pkg, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(cli)), "package.json"))
	if err != nil || !strings.Contains(string(pkg), `"version": "`+version+`"`) {
		t.Fatalf("@capgo/cli %s missing in .cache/capgo-cli: run `bash .ci/install-deps`", version)
	}
	cmd := exec.Command("node", append([]string{cli}, args...)...)
	cmd.Dir = project
	cmd.Env = append(os.Environ(), "HOME="+project, "CI=true", "CAPGO_DISABLE_TELEMETRY=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := make(chan struct{})
	var out []byte
	go func() { out, err = cmd.Output(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("capgo %v: timed out", args)
	}
	if err != nil {
		t.Fatalf("capgo %v: %v\n%s\n%s", args, err, out, stderr.String())
	}
	return out
}

// appProject is the smallest app folder the CLI works in: a Capacitor
// config and the plugin in node_modules, from which `bundle encrypt`
// learns the plugin version and signs the checksum in hex (V3).
func appProject(t *testing.T, appID string) string {
	dir := t.TempDir()
	pluginPkg := filepath.Join(repoRoot(t), ".cache", "plugin", readPin(t, "plugin.version"), "package")
	mod := filepath.Join(dir, "node_modules", "@capgo")
	if err := os.MkdirAll(mod, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(pluginPkg, filepath.Join(mod, "capacitor-updater")); err != nil {
		t.Fatal(err)
	}
	cfg := `{"appId":"` + appID + `","appName":"conformance","webDir":"www"}`
	pj := `{"name":"conformance-app","version":"1.0.0","dependencies":{"@capgo/capacitor-updater":"` + readPin(t, "plugin.version") + `"}}`
	for name, c := range map[string]string{"capacitor.config.json": cfg, "package.json": pj} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// An encrypted bundle made exactly as the Capgo CLI makes it, uploaded with
// its session_key, checksum and key_id, is downloaded, decrypted and
// verified by the plugin's CryptoCipher with the public key.
func (e *env) encryptedBundle(t *testing.T) {
	t.Parallel()
	app := e.newApp(t)
	project := appProject(t, app)
	capgo(t, project, "key", "create")
	pub, err := os.ReadFile(filepath.Join(project, ".capgo_key_v2.pub"))
	if err != nil {
		t.Fatal(err)
	}

	files := webFiles("1.3.0")
	z := bundleZip(t, files)
	zipPath := filepath.Join(project, "bundle.zip")
	if err := os.WriteFile(zipPath, z, 0o644); err != nil {
		t.Fatal(err)
	}
	out := capgo(t, project, "bundle", "encrypt", zipPath, sha(z), "--key", ".capgo_key_v2", "--json")
	var enc struct {
		Checksum     string `json:"checksum"`
		Filename     string `json:"filename"`
		IVSessionKey string `json:"ivSessionKey"`
	}
	if i := bytes.IndexByte(out, '{'); i < 0 || json.Unmarshal(out[i:], &enc) != nil {
		t.Fatalf("bundle encrypt printed %q", out)
	}
	encrypted, err := os.ReadFile(enc.Filename)
	if err != nil {
		t.Fatal(err)
	}

	d := e.device(t, deviceConfig{AppID: app, PublicKey: string(pub)})
	if d.keyID == "" || d.keyID != keyIDOf(string(pub)) {
		t.Fatalf("plugin key id %q, want %q", d.keyID, keyIDOf(string(pub)))
	}
	meta := admin.BundleMetadata{Version: "1.3.0", SessionKey: enc.IVSessionKey, Checksum: enc.Checksum, KeyID: d.keyID}
	if _, err := e.srv.Admin.UploadBundle(ctxT(t), app, meta, bytes.NewReader(encrypted)); err != nil {
		t.Fatalf("upload encrypted bundle: %v", err)
	}
	e.channel(t, app, "production", admin.ChannelPatch{Bundle: ptr("1.3.0"), Public: ptr(true)})

	r := autoUpdateDone(t, d)
	resp := response(r)
	if r["branch"] != "download" || resp["session_key"] != enc.IVSessionKey || resp["checksum"] != enc.Checksum {
		t.Fatalf("branch %v answer %v, want the encrypted bundle with its session key and checksum", r["branch"], resp)
	}
	if f := d.notified("downloadFailed"); len(f) > 0 {
		t.Fatalf("encrypted download failed: %v; plugin sent %v", f[0], d.sentActions())
	}
	next, _ := d.obj("state", nil)["next"].(map[string]any)
	if next == nil || next["version"] != "1.3.0" {
		t.Fatalf("next bundle %v, want 1.3.0", next)
	}
	// The stored checksum is the decrypted (plaintext) SHA-256.
	if next["checksum"] != sha(z) {
		t.Errorf("plugin verified checksum %v, want %s", next["checksum"], sha(z))
	}
	got := d.obj("files", m("id", next["id"]))
	for name, c := range files {
		if got[name] != sha([]byte(c)) {
			t.Errorf("decrypted %s: %v, want %s", name, got[name], sha([]byte(c)))
		}
	}
}

// keyIDOf is the key id the Capgo CLI derives: the first 20 base64
// characters of the PEM body (the plugin's CryptoCipher.calcKeyId agrees).
func keyIDOf(pub string) string {
	s := strings.NewReplacer("-----BEGIN RSA PUBLIC KEY-----", "", "-----END RSA PUBLIC KEY-----", "", "\n", "", "\r", "", " ", "").Replace(pub)
	if len(s) > 20 {
		s = s[:20]
	}
	return s
}
