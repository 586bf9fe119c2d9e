package bench

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestFleetIsDeterministicAndDistinct(t *testing.T) {
	a := NewFleet(DefaultApps(), 10000, 7)
	b := NewFleet(DefaultApps(), 10000, 7)
	seen := map[string]bool{}
	for i, d := range a.Devices {
		if d != b.Devices[i] {
			t.Fatalf("device %d differs between two fleets with one seed", i)
		}
		if len(d.ID) != 36 || strings.ToLower(d.ID) != d.ID || d.ID[14] != '4' {
			t.Fatalf("device id %q is not a lowercase v4 UUID", d.ID)
		}
		if seen[d.ID] {
			t.Fatalf("duplicate device id %s", d.ID)
		}
		seen[d.ID] = true
	}
}

func TestFleetMix(t *testing.T) {
	f := NewFleet(DefaultApps(), 10000, 1)
	count := map[string]int{}
	for _, d := range f.Devices {
		count["app:"+d.AppID]++
		count["v:"+d.VersionName]++
		count["p:"+d.Platform]++
		if d.Override != "" {
			count["override"]++
		}
		if d.DefaultChannel != "" {
			count["default"]++
		}
	}
	near := func(key string, want float64) {
		t.Helper()
		got := float64(count[key]) / 10000
		if got < want-0.02 || got > want+0.02 {
			t.Errorf("%s: share %.3f, want about %.2f", key, got, want)
		}
	}
	near("app:io.capstan.bench.shop", 0.60)
	near("app:io.capstan.bench.chat", 0.10)
	near("v:1.4.0", 0.45)
	near("v:builtin", 0.10)
	near("p:android", 0.55)
	near("override", 0.03)
	near("default", 0.10)
	if len(f.Overrides()) != count["override"] {
		t.Errorf("Overrides() returned %d, want %d", len(f.Overrides()), count["override"])
	}
}

func TestActionMixShares(t *testing.T) {
	total := 0
	for _, w := range actionMix {
		total += w.w
	}
	if total != 1000 {
		t.Fatalf("action mix sums to %d, want 1000", total)
	}
	f := NewFleet(DefaultApps(), 1000, 1)
	reqs := StatsRequests(f, 2000, 20, 3)
	count := map[string]int{}
	n := 0
	for _, r := range reqs {
		var evs []map[string]any
		if err := json.Unmarshal(r.Body, &evs); err != nil {
			t.Fatal(err)
		}
		if len(evs) != 20 || r.Events != 20 || len(r.Stamps) != 20 {
			t.Fatalf("body has %d events, Events %d, %d stamps", len(evs), r.Events, len(r.Stamps))
		}
		dev := evs[0]["device_id"]
		for _, e := range evs {
			if e["device_id"] != dev {
				t.Fatal("a stats body mixes devices")
			}
			count[e["action"].(string)]++
			n++
		}
	}
	lifecycle := count["app_moved_to_foreground"] + count["app_moved_to_background"] + count["app_launch_start"] + count["app_launch_ready"]
	if share := float64(lifecycle) / float64(n); share < 0.68 || share > 0.74 {
		t.Errorf("lifecycle share %.3f, want about 0.71", share)
	}
	fails := 0
	for a, c := range count {
		if strings.HasSuffix(a, "_fail") || a == "app_crash" || a == "app_anr" {
			fails += c
		}
	}
	if share := float64(fails) / float64(n); share < 0.015 || share > 0.03 {
		t.Errorf("failure share %.3f, want about 0.022", share)
	}
	if count["set"] == 0 || count["download_50"] == 0 {
		t.Errorf("missing set or download steps: %v", count)
	}
}

func TestStampsMakeBodiesUnique(t *testing.T) {
	f := NewFleet(DefaultApps(), 10, 1)
	r := StatsRequests(f, 1, 3, 1)[0]
	b := append([]byte(nil), r.Body...)
	for i, off := range r.Stamps {
		putStamp(b, off, 1_700_000_000_000+int64(i))
	}
	var evs []struct {
		Timestamp int64 `json:"timestamp"`
	}
	if err := json.Unmarshal(b, &evs); err != nil {
		t.Fatal(err)
	}
	for i, e := range evs {
		if e.Timestamp != 1_700_000_000_000+int64(i) {
			t.Fatalf("event %d timestamp %d", i, e.Timestamp)
		}
	}
}

func TestUpdateRequests(t *testing.T) {
	f := NewFleet(DefaultApps(), 100, 1)
	reqs := UpdateRequests(f)
	if len(reqs) != 100 {
		t.Fatal(len(reqs))
	}
	var in map[string]any
	if err := json.Unmarshal(reqs[0].Body, &in); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"platform", "device_id", "app_id", "version_build", "version_name", "plugin_version", "is_prod", "is_emulator"} {
		if _, ok := in[k]; !ok {
			t.Errorf("update body lacks %q: %s", k, reqs[0].Body)
		}
	}
	if !strings.HasPrefix(reqs[0].UserAgent, "CapacitorUpdater/") {
		t.Errorf("user agent %q", reqs[0].UserAgent)
	}
}

func TestClassify(t *testing.T) {
	for body, want := range map[string]string{
		`{"error":"no_new_version_available","message":"x","kind":"up_to_date"}`: "no_new_version_available",
		`{"version":"builtin"}`: "builtin",
		`{"version":"1.5.0","url":"http://x/bundles/a/1.5.0.zip","checksum":"ab"}`: "update",
	} {
		if got := classify([]byte(body)); got != want {
			t.Errorf("classify(%s) = %q, want %q", body, got, want)
		}
	}
}

func TestParseStatus(t *testing.T) {
	m, err := parseStatus(strings.NewReader("Name:\tcapstan\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads: 9\n"))
	if err != nil || m.RSS != 100<<20 || m.HWM != 200<<20 {
		t.Fatalf("got %+v, %v", m, err)
	}
}

func TestParseStatCPU(t *testing.T) {
	d, err := parseStatCPU("1234 (capstan serve) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 12 0 100 0 0")
	if err != nil || d.Milliseconds() != 3000 {
		t.Fatalf("got %v, %v", d, err)
	}
}
