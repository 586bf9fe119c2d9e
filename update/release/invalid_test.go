package release

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func invalidKeysOf(s *Store) []string {
	var out []string
	for _, e := range s.InvalidEntries() {
		out = append(out, e.Key)
	}
	return out
}

func invalidGauge(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	must(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "capstan_release_invalid_entries" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("capstan_release_invalid_entries not registered")
	return 0
}

// snapState is what devices and the admin API can see of a snapshot,
// in a form two fronts can be compared by.
func snapState(s *Snapshot) string {
	var out []string
	for _, a := range s.Apps() {
		out = append(out, "app "+a.ID+" "+a.Name)
	}
	for _, app := range []string{"com.a", "com.b"} {
		for _, c := range s.Channels(app) {
			out = append(out, "channel "+app+"/"+c.Name+" "+c.Bundle)
		}
		if _, ok := s.Channel(app, "beta"); ok {
			out = append(out, "lookup "+app+"/beta")
		}
		for _, b := range s.Bundles(app) {
			out = append(out, "bundle "+app+"/"+b.Version)
		}
		if _, ok := s.Bundle(app, "1.0.0"); ok {
			out = append(out, "lookup "+app+"@1.0.0")
		}
		s.Overrides(app, func(o Override) bool {
			out = append(out, "override "+app+"/"+o.DeviceID+" "+o.Channel)
			return true
		})
		if ch, ok := s.Choice(app, "dev-1"); ok {
			out = append(out, "choice "+app+"/dev-1 "+ch)
		}
	}
	for _, tk := range s.Tokens() {
		out = append(out, "token "+tk.Hash)
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

// TestInvalidEntries writes undecodable, null, empty and non-object
// values straight into the bucket: a running front and one started
// afterwards drop the same objects, as deletes would, list the same keys
// as invalid and count them; good values and deletes bring things back.
func TestInvalidEntries(t *testing.T) {
	b := testBus(t, t.TempDir(), "")
	ctx := tctx(t)
	regA := prometheus.NewRegistry()
	a := testStore(t, b.JetStream, Options{Registerer: regA})
	kv, err := b.JetStream.KeyValue(ctx, DefaultBucket)
	must(t, err)
	put := func(key, value string) {
		t.Helper()
		_, err := kv.Put(ctx, key, []byte(value))
		must(t, err)
	}
	tok := strings.Repeat("ab", 32)
	dev := testUUID(7)
	for _, app := range []string{"com.a", "com.b"} {
		must(t, a.CreateApp(ctx, App{ID: app, Name: "name of " + app}))
		must(t, a.CreateBundle(ctx, Bundle{AppID: app, Version: "1.0.0", Manifest: []ManifestEntry{{FileName: "index.html", FileHash: "h", DownloadURL: "https://cdn.example.com/i"}}}, nil))
		beta := NewChannel(app, "beta")
		beta.Bundle = "1.0.0"
		must(t, a.PutChannel(ctx, beta))
		must(t, a.PutChannel(ctx, NewChannel(app, "qa")))
	}
	must(t, a.PutOverride(ctx, Override{AppID: "com.a", DeviceID: dev, Channel: "beta"}))
	must(t, a.PutChoice(ctx, Choice{AppID: "com.a", DeviceID: "dev-1", Channel: "qa"}))
	must(t, a.AddTokenHash(ctx, tok, "ci"))
	waitFor(t, func() bool { _, ok := a.Snapshot().Token(tok); return ok })

	bad := map[string]string{
		chanKey("com.a", "beta"):    "{not json",
		bundleKey("com.a", "1.0.0"): "null",
		ovrKey("com.a", dev):        "",
		choiceKey("com.a", "dev-1"): `"qa"`,
		tokenKey(tok):               "[]",
		appKey("com.b"):             "null",
	}
	var badKeys []string
	for k, v := range bad {
		put(k, v)
		badKeys = append(badKeys, k)
	}
	slices.Sort(badKeys)
	// An app whose own value is bad hides its channels and bundles
	// whether they come before it in the bucket (com.b's beta and qa,
	// written above) or after (late): a restarted front loads them in
	// that order, a running one saw them in it.
	late, err := json.Marshal(NewChannel("com.b", "late"))
	must(t, err)
	put(chanKey("com.b", "late"), string(late))

	check := func(name string, s *Store, reg *prometheus.Registry) string {
		t.Helper()
		waitFor(t, func() bool { return slices.Equal(invalidKeysOf(s), badKeys) })
		snap := s.Snapshot()
		if _, ok := snap.Channel("com.a", "beta"); ok {
			t.Errorf("%s: channel with an undecodable value still served", name)
		}
		if _, ok := snap.Channel("com.a", "qa"); !ok {
			t.Errorf("%s: good channel lost", name)
		}
		if _, ok := snap.Bundle("com.a", "1.0.0"); ok {
			t.Errorf("%s: bundle with a null value served", name)
		}
		if _, ok := snap.Override("com.a", dev); ok {
			t.Errorf("%s: override with an empty value kept", name)
		}
		if _, ok := snap.Choice("com.a", "dev-1"); ok {
			t.Errorf("%s: choice with a non-object value kept", name)
		}
		if snap.TokenHashKnown(tok) {
			t.Errorf("%s: token with a non-object value still valid", name)
		}
		if _, ok := snap.App("com.b"); ok {
			t.Errorf("%s: app with a null value known", name)
		}
		if _, ok := snap.Channel("com.b", "beta"); ok || len(snap.Channels("com.b")) != 0 || len(snap.Bundles("com.b")) != 0 {
			t.Errorf("%s: channels or bundles of a hidden app served", name)
		}
		if reg != nil {
			if g := invalidGauge(t, reg); g != float64(len(badKeys)) {
				t.Errorf("%s: gauge %v, want %d", name, g, len(badKeys))
			}
		}
		return snapState(snap)
	}
	running := check("running front", a, regA)
	regB := prometheus.NewRegistry()
	restarted := check("restarted front", testStore(t, b.JetStream, Options{Registerer: regB}), regB)
	if running != restarted {
		t.Fatalf("fronts differ:\nrunning:\n%s\nrestarted:\n%s", running, restarted)
	}
	for _, e := range a.InvalidEntries() {
		if e.Revision == 0 || e.Error == "" {
			t.Fatalf("entry without revision or error: %+v", e)
		}
	}

	// Good values replace the bad ones; a delete clears one too. (The
	// channel no longer names the bundle: writes see it as deleted too.)
	must(t, a.PutChannel(ctx, NewChannel("com.a", "beta")))
	put(appKey("com.b"), `{"name":"name of com.b"}`)
	must(t, kv.Delete(ctx, tokenKey(tok)))
	waitFor(t, func() bool { return len(a.InvalidEntries()) == 3 })
	snap := a.Snapshot()
	if _, ok := snap.Channel("com.a", "beta"); !ok {
		t.Fatal("channel not back after a good value")
	}
	if _, ok := snap.Channel("com.b", "late"); !ok {
		t.Fatal("hidden app's channels not back after a good app value")
	}
	if _, ok := snap.Bundle("com.b", "1.0.0"); !ok {
		t.Fatal("hidden app's bundles not back after a good app value")
	}
	if g := invalidGauge(t, regA); g != 3 {
		t.Fatalf("gauge %v after repairs, want 3", g)
	}
	c := testStore(t, b.JetStream, Options{})
	if got, want := snapState(c.Snapshot()), snapState(a.Snapshot()); got != want {
		t.Fatalf("fronts differ after repairs:\nrunning:\n%s\nrestarted:\n%s", want, got)
	}
	for _, k := range []string{bundleKey("com.a", "1.0.0"), ovrKey("com.a", dev), choiceKey("com.a", "dev-1")} {
		must(t, kv.Delete(ctx, k))
	}
	waitFor(t, func() bool { return len(a.InvalidEntries()) == 0 && len(c.InvalidEntries()) == 0 })
	if g := invalidGauge(t, regA); g != 0 {
		t.Fatalf("gauge %v with no invalid entry", g)
	}
}
