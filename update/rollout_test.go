package update

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/capstan-io/capstan/update/release"
)

// deviceIDs returns n distinct UUID-shaped ids from a fixed seed.
func deviceIDs(n int) []string {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]string, n)
	for i := range out {
		a, b := r.Uint64(), r.Uint64()
		out[i] = fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", a>>32, a>>16&0xffff, a&0xfff, b>>48&0xffff|0x8000, b&0xffffffffffff)
	}
	return out
}

func TestRolloutSticky(t *testing.T) {
	for _, id := range deviceIDs(2000) {
		b1 := RolloutBucket(testApp, "production", "1.3.0", id)
		b2 := RolloutBucket(testApp, "production", "1.3.0", id)
		if b1 != b2 || b1 >= RolloutBuckets {
			t.Fatalf("bucket %d/%d for %s", b1, b2, id)
		}
		if InRollout(testApp, "production", "1.3.0", id, 37.5) != InRollout(testApp, "production", "1.3.0", id, 37.5) {
			t.Fatal("membership not deterministic")
		}
	}
}

// A device in at p% must be in at every larger percentage.
func TestRolloutMonotonic(t *testing.T) {
	ids := deviceIDs(3000)
	in := make([]bool, len(ids))
	for p := 0.0; p <= 100; p += 0.25 {
		for i, id := range ids {
			now := InRollout(testApp, "production", "1.3.0", id, p)
			if in[i] && !now {
				t.Fatalf("device %s left the rollout when it grew to %.2f%%", id, p)
			}
			in[i] = now
		}
	}
	for i := range in {
		if !in[i] {
			t.Fatalf("device %s not in at 100%%", ids[i])
		}
	}
}

func TestRolloutAccuracy(t *testing.T) {
	ids := deviceIDs(40000)
	for _, p := range []float64{0.5, 1, 5, 10, 25, 50, 90, 99} {
		n := 0
		for _, id := range ids {
			if InRollout(testApp, "production", "1.3.0", id, p) {
				n++
			}
		}
		got := 100 * float64(n) / float64(len(ids))
		// 4 standard deviations of a binomial proportion, at least 0.2 points.
		tol := math.Max(0.2, 400*math.Sqrt(p/100*(1-p/100)/float64(len(ids))))
		if math.Abs(got-p) > tol {
			t.Errorf("%.2f%% rollout reached %.3f%% of devices (tolerance %.3f)", p, got, tol)
		}
	}
}

func TestRolloutEdges(t *testing.T) {
	id := testDevice
	if InRollout(testApp, "c", "", id, 100) {
		t.Error("empty rollout bundle")
	}
	if InRollout(testApp, "c", "b", id, 0) || InRollout(testApp, "c", "b", id, -5) || InRollout(testApp, "c", "b", id, math.NaN()) {
		t.Error("non-positive percentage")
	}
	if !InRollout(testApp, "c", "b", id, 100) || !InRollout(testApp, "c", "b", id, 150) {
		t.Error(">= 100%")
	}
	if InRollout(testApp, "c", "b", "ABC", 50) != InRollout(testApp, "c", "b", "abc", 50) {
		t.Error("device id case matters")
	}
}

// A new rollout bundle draws an independent cohort.
func TestRolloutNewCohort(t *testing.T) {
	ids := deviceIDs(20000)
	both, a := 0, 0
	for _, id := range ids {
		x := InRollout(testApp, "production", "1.3.0", id, 50)
		y := InRollout(testApp, "production", "1.4.0", id, 50)
		if x {
			a++
			if y {
				both++
			}
		}
	}
	frac := float64(both) / float64(a)
	if frac < 0.45 || frac > 0.55 {
		t.Errorf("cohorts of two rollouts overlap by %.3f, want about 0.5", frac)
	}
}

func TestDecideRollout(t *testing.T) {
	c := baseChannel()
	c.RolloutBundle = "1.2.1"
	ids := deviceIDs(4000)
	for _, p := range []float64{0, 20, 100} {
		c.RolloutPercent = p
		snap := fixture([]release.Channel{c}, nil)
		got := 0
		for _, id := range ids {
			req := baseRequest()
			req.DeviceID = id
			a := Decide(&req, snap, Options{PublicURL: testPublic})
			checkAnswerShape(t, a)
			switch a.Version {
			case "1.2.1":
				got++
				if !InRollout(testApp, "production", "1.2.1", id, p) {
					t.Fatalf("device outside the rollout got it")
				}
			case "1.2.0":
			default:
				t.Fatalf("unexpected version %q", a.Version)
			}
			// A device already on the bundle it is due is up to date.
			req.VersionName = a.Version
			if a2 := Decide(&req, snap, Options{PublicURL: testPublic}); a2.Result != CodeNoNewVersion {
				t.Fatalf("device on its rollout bundle: %s", a2.Result)
			}
		}
		want := p / 100 * float64(len(ids))
		if math.Abs(float64(got)-want) > 0.03*float64(len(ids)) {
			t.Errorf("%v%%: %d of %d devices got the rollout", p, got, len(ids))
		}
	}

	// Shrinking a rollout never downgrades a device already on its bundle;
	// ending it does.
	for _, p := range []float64{20, 1, 0} {
		c.RolloutPercent = p
		snap := fixture([]release.Channel{c}, nil)
		for _, id := range ids[:500] {
			req := baseRequest()
			req.DeviceID, req.VersionName = id, "1.2.1"
			if a := Decide(&req, snap, Options{PublicURL: testPublic}); a.Result != CodeNoNewVersion {
				t.Fatalf("%v%%: device on the rollout bundle got %s %s", p, a.Result, a.Version)
			}
		}
	}
	ended := c
	ended.RolloutBundle, ended.RolloutPercent = "", 0
	req := baseRequest()
	req.VersionName = "1.2.1"
	if a := Decide(&req, fixture([]release.Channel{ended}, nil), Options{PublicURL: testPublic}); a.Version != "1.2.0" {
		t.Fatalf("ended rollout: %s %s, want the base bundle", a.Result, a.Version)
	}

	// A rollout bundle that does not exist is no_bundle for its cohort only.
	c.RolloutBundle, c.RolloutPercent = "7.7.7", 100
	snap := fixture([]release.Channel{c}, nil)
	req = baseRequest()
	if a := Decide(&req, snap, Options{PublicURL: testPublic}); a.Result != CodeNoBundle {
		t.Fatalf("missing rollout bundle: %s", a.Result)
	}
}

// A paused rollout adds no device, whatever its percentage, and keeps
// every device already on its bundle there.
func TestDecidePausedRollout(t *testing.T) {
	c := baseChannel()
	c.RolloutBundle, c.RolloutPercent, c.RolloutState = "1.2.1", 100, release.RolloutPaused
	snap := fixture([]release.Channel{c}, nil)
	for _, id := range deviceIDs(300) {
		req := baseRequest()
		req.DeviceID = id
		if a := Decide(&req, snap, Options{PublicURL: testPublic}); a.Version != "1.2.0" {
			t.Fatalf("paused rollout gave a new device %s %s", a.Result, a.Version)
		}
		req.VersionName = "1.2.1"
		if a := Decide(&req, snap, Options{PublicURL: testPublic}); a.Result != CodeNoNewVersion {
			t.Fatalf("device on the paused rollout's bundle: %s %s", a.Result, a.Version)
		}
	}
}
