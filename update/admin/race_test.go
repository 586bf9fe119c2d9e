package admin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/capstan-io/capstan/bus"
	"github.com/capstan-io/capstan/update/release"
)

// raceRuns is how often each race is fired.
const raceRuns = 20

// twoFronts runs the admin API twice, each on its own store and NATS
// connection to one embedded server, as two front processes would.
func twoFronts(t *testing.T) (ctx context.Context, a, b *Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	t.Cleanup(cancel)
	bs, err := bus.Open(ctx, bus.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bs.Close)
	front := func(js jetstream.JetStream) *Client {
		st, err := release.Open(ctx, js, release.Options{CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Close)
		if err := st.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
		r := chi.NewRouter()
		r.Mount("/api/v1", New(Config{Store: st, AdminToken: testToken, TempDir: t.TempDir()}).Handler())
		srv := httptest.NewServer(r)
		t.Cleanup(srv.Close)
		return checkedAPIClient(t, srv.URL, testToken)
	}
	nc, err := nats.Connect(bs.Server.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js2, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, front(bs.JetStream), front(js2)
}

// newApp creates an app through a and waits until b knows it too.
func newApp(t *testing.T, ctx context.Context, a, b *Client, app string) {
	t.Helper()
	if _, err := a.CreateApp(ctx, app, ""); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := b.GetApp(ctx, app); err == nil {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("app %s not visible on the other front: %v", app, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// fire runs f and g at the same moment; on odd runs f starts a little
// later, so each gets to win.
func fire(run int, f, g func() error) (errF, errG error) {
	done := make(chan struct{})
	go func() {
		errG = g()
		close(done)
	}()
	if run%2 == 1 {
		time.Sleep(time.Duration(run%7) * 250 * time.Microsecond)
	}
	errF = f()
	<-done
	return errF, errG
}

// apiCode is the status and code of an API error; 0 and "" for success.
func apiCode(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return "ok"
	}
	var ae *APIError
	if !errors.As(err, &ae) {
		t.Fatalf("not an API error: %v", err)
	}
	if ae.Message == "" {
		t.Fatalf("error %s has no message", ae.Code)
	}
	return fmt.Sprintf("%d %s", ae.Status, ae.Code)
}

// outcomes fires a race raceRuns times and checks each pair of answers
// is one of want; it returns how often each pair came.
func outcomes(t *testing.T, setup func(i int) (f, g func() error), want ...[2]string) map[[2]string]int {
	t.Helper()
	seen := map[[2]string]int{}
	for i := range raceRuns {
		f, g := setup(i)
		e1, e2 := fire(i, f, g)
		got := [2]string{apiCode(t, e1), apiCode(t, e2)}
		ok := false
		for _, w := range want {
			ok = ok || got == w
		}
		if !ok {
			t.Fatalf("run %d: answers %q, want one of %q", i, got, want)
		}
		seen[got]++
	}
	t.Logf("%v", seen)
	return seen
}

func TestRaceAdminPublicChannels(t *testing.T) {
	ctx, a, b := twoFronts(t)
	public := true
	outcomes(t, func(i int) (func() error, func() error) {
		app := fmt.Sprintf("com.race.public%d", i)
		newApp(t, ctx, a, b, app)
		set := func(c *Client, name string) func() error {
			return func() error { _, err := c.SetChannel(ctx, app, name, ChannelPatch{Public: &public}); return err }
		}
		return set(a, "production"), set(b, "default")
	}, [2]string{"ok", "409 public_channel_conflict"}, [2]string{"409 public_channel_conflict", "ok"})
}

func TestRaceAdminDeleteBundleInUse(t *testing.T) {
	ctx, a, b := twoFronts(t)
	for _, rollout := range []bool{false, true} {
		t.Run(fmt.Sprintf("rollout=%v", rollout), func(t *testing.T) {
			outcomes(t, func(i int) (func() error, func() error) {
				app := fmt.Sprintf("com.race.bundle%v%d", rollout, i)
				newApp(t, ctx, a, b, app)
				for _, v := range []string{"1.0.0", "2.0.0"} {
					if _, err := a.UploadBundle(ctx, app, BundleMetadata{Version: v}, bytes.NewReader(goodZip(t))); err != nil {
						t.Fatal(err)
					}
				}
				v1, v2, pct := "1.0.0", "2.0.0", 50.0
				if _, err := a.SetChannel(ctx, app, "production", ChannelPatch{Bundle: &v1}); err != nil {
					t.Fatal(err)
				}
				p := ChannelPatch{Bundle: &v2}
				if rollout {
					p = ChannelPatch{RolloutBundle: &v2, RolloutPercent: &pct}
				}
				return func() error { return a.DeleteBundle(ctx, app, "2.0.0") },
					func() error { _, err := b.SetChannel(ctx, app, "production", p); return err }
			}, [2]string{"ok", "404 bundle_not_found"}, [2]string{"409 bundle_in_use", "ok"})
		})
	}
}

func TestRaceAdminDeleteChannelPinned(t *testing.T) {
	ctx, a, b := twoFronts(t)
	outcomes(t, func(i int) (func() error, func() error) {
		app := fmt.Sprintf("com.race.pin%d", i)
		newApp(t, ctx, a, b, app)
		if _, err := a.SetChannel(ctx, app, "beta", ChannelPatch{}); err != nil {
			t.Fatal(err)
		}
		return func() error { return a.DeleteChannel(ctx, app, "beta") },
			func() error { _, err := b.SetDeviceChannel(ctx, app, "dev-1", "beta"); return err }
	}, [2]string{"ok", "404 channel_not_found"}, [2]string{"409 channel_in_use", "ok"})
}

func TestRaceAdminDuplicateUpload(t *testing.T) {
	ctx, a, b := twoFronts(t)
	outcomes(t, func(i int) (func() error, func() error) {
		app := fmt.Sprintf("com.race.dup%d", i)
		newApp(t, ctx, a, b, app)
		up := func(c *Client) func() error {
			return func() error {
				_, err := c.UploadBundle(ctx, app, BundleMetadata{Version: "1.0.0"}, bytes.NewReader(goodZip(t)))
				return err
			}
		}
		return up(a), up(b)
	}, [2]string{"ok", "409 bundle_exists"}, [2]string{"409 bundle_exists", "ok"})
}

// TestRaceAdminDeleteAppDuringUpload deletes an app while another front
// uploads a bundle to it: the upload either lands first (and is deleted
// with the app) or fails with 409 app_deleted (404 app_not_found once the
// front has seen the delete); the app never comes back.
func TestRaceAdminDeleteAppDuringUpload(t *testing.T) {
	ctx, a, b := twoFronts(t)
	seen := map[string]int{}
	defer func() { t.Logf("upload answers: %v", seen) }()
	for i := range raceRuns {
		app := fmt.Sprintf("com.race.delapp%d", i)
		newApp(t, ctx, a, b, app)
		e1, e2 := fire(i, func() error { return a.DeleteApp(ctx, app) }, func() error {
			_, err := b.UploadBundle(ctx, app, BundleMetadata{Version: "1.0.0"}, bytes.NewReader(goodZip(t)))
			return err
		})
		if e1 != nil {
			t.Fatalf("run %d: delete app: %v", i, e1)
		}
		got := apiCode(t, e2)
		seen[got]++
		switch got {
		case "ok", "409 app_deleted", "404 app_not_found":
		default:
			t.Fatalf("run %d: upload answered %s", i, got)
		}
		for _, c := range []*Client{a, b} {
			deadline := time.Now().Add(5 * time.Second)
			for {
				_, err := c.GetApp(ctx, app)
				if apiCode(t, err) == "404 app_not_found" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("run %d: deleted app still answers: %v", i, err)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
}

func TestStoreConflictCodes(t *testing.T) {
	for err, code := range map[error]string{
		release.ErrPublicConflict: "public_channel_conflict",
		release.ErrChannelInUse:   "channel_in_use",
		release.ErrInUse:          "bundle_in_use",
		release.ErrAppDeleted:     "app_deleted",
		release.ErrConcurrent:     "concurrent_change",
	} {
		ae := storeConflict(fmt.Errorf("some write: %w", err))
		if ae == nil || ae.status != 409 || ae.code != code {
			t.Fatalf("%v: got %+v, want 409 %s", err, ae, code)
		}
	}
	if storeConflict(release.ErrNotFound) != nil || storeConflict(errors.New("x")) != nil {
		t.Fatal("a non-conflict mapped to 409")
	}
}
