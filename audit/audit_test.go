package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/capstan-io/capstan/bus"
)

// newJS starts an embedded JetStream server and connects to it.
func newJS(t *testing.T) (context.Context, jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	srv, err := bus.StartEmbedded(t.TempDir(), "127.0.0.1:-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, js
}

func TestAuditSubject(t *testing.T) {
	for app, want := range map[string]string{
		"com.example.app": "capstan.audit.com~example~app",
		"a_b-c.D9":        "capstan.audit.a_b-c~D9",
		"x~y%z *>":        "capstan.audit.x%7Ey%25z%20%2A%3E",
		"":                "capstan.audit.%",
	} {
		if got := Subject(app); got != want {
			t.Errorf("Subject(%q) = %q, want %q", app, got, want)
		}
	}
}

func TestAuditOpenConcurrentAndConfig(t *testing.T) {
	ctx, js := newJS(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			_, err := Open(ctx, js, Options{Replicas: 1})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s, err := js.Stream(ctx, Stream)
	if err != nil {
		t.Fatal(err)
	}
	c := s.CachedInfo().Config
	if c.MaxAge != 400*24*time.Hour || c.Discard != jetstream.DiscardOld || c.Storage != jetstream.FileStorage ||
		len(c.Subjects) != 1 || c.Subjects[0] != "capstan.audit.>" || c.Replicas != 1 {
		t.Fatalf("stream config %+v", c)
	}
	// Opening again (a restart) is fine.
	if _, err := Open(ctx, js, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, js, Options{Replicas: 9}); err == nil {
		t.Fatal("replicas 9 accepted")
	}
}

func TestAuditAppendList(t *testing.T) {
	ctx, js := newJS(t)
	reg := prometheus.NewRegistry()
	l, err := Open(ctx, js, Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}

	// Empty: prompt, not an error.
	start := time.Now()
	for _, q := range []Query{{}, {App: "com.example.a"}, {Channel: "production"}, {Since: time.Now().Add(-time.Hour)}} {
		got, err := l.List(ctx, q)
		if err != nil || len(got) != 0 {
			t.Fatalf("empty %+v: %v %v", q, got, err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("listing an empty log took %s", d)
	}

	if err := l.Append(ctx, Entry{App: "com.example.a"}); err == nil {
		t.Fatal("entry without change accepted")
	}
	before := time.Now().UTC()
	for i := range 10 {
		app, ch := "com.example.a", "production"
		if i%2 == 1 {
			app = "com.example.b"
		}
		if i%3 == 0 {
			ch = "beta"
		}
		e := Entry{App: app, Channel: ch, Bundle: fmt.Sprintf("1.0.%d", i), Change: "channel_set", Actor: "token:ci", Detail: fmt.Sprint(i)}
		if i == 9 {
			e.Actor, e.Automatic, e.Change = ActorGuard, true, "rollout_pause"
			e.Gate = json.RawMessage(`{"failure_rate":0.2}`)
		}
		if err := l.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Append(ctx, Entry{Change: "token_create", Actor: "token:admin", Detail: "name=ci"}); err != nil {
		t.Fatal(err)
	}

	all, err := l.List(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 11 {
		t.Fatalf("all: %d entries", len(all))
	}
	for i, e := range all {
		if e.Seq != uint64(i+1) || e.Time.Before(before.Add(-time.Second)) || e.Time.Location() != time.UTC {
			t.Fatalf("entry %d: %+v", i, e)
		}
		if i < 10 && e.Detail != fmt.Sprint(i) {
			t.Fatalf("order: entry %d has detail %q", i, e.Detail)
		}
	}
	if g := all[9]; !g.Automatic || g.Actor != ActorGuard || string(g.Gate) != `{"failure_rate":0.2}` {
		t.Fatalf("guard entry %+v", g)
	}

	details := func(es []Entry) string {
		s := ""
		for _, e := range es {
			s += e.Detail + ","
		}
		return s
	}
	cases := []struct {
		q    Query
		want string
	}{
		{Query{App: "com.example.a"}, "0,2,4,6,8,"},
		{Query{App: "com.example.b", Channel: "beta"}, "3,9,"},
		{Query{Channel: "production"}, "1,2,4,5,7,8,"},
		{Query{Limit: 3}, "8,9,name=ci,"},
		{Query{App: "com.example.a", Limit: 2}, "6,8,"},
		{Query{Channel: "beta", Limit: 1}, "9,"},
		{Query{App: "com.example.none"}, ""},
		{Query{Since: time.Now().Add(time.Minute)}, ""},
		{Query{Since: before.Add(-time.Minute), App: "com.example.b", Limit: 2}, "7,9,"},
	}
	for _, tc := range cases {
		got, err := l.List(ctx, tc.q)
		if err != nil {
			t.Fatalf("%+v: %v", tc.q, err)
		}
		if d := details(got); d != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.q, d, tc.want)
		}
	}

	// Since cuts by time: entries after a pause only.
	time.Sleep(20 * time.Millisecond)
	cut := time.Now()
	if err := l.Append(ctx, Entry{App: "com.example.a", Change: "app_update", Actor: "token:ci", Detail: "late"}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []Query{{Since: cut}, {Since: cut, App: "com.example.a"}} {
		got, err := l.List(ctx, q)
		if err != nil || details(got) != "late," {
			t.Fatalf("since %+v: %q %v", q, details(got), err)
		}
	}

	if v := counter(t, reg, "capstan_release_changes_total", "app", "com.example.a", "change", "channel_set", "actor", "manual"); v != 5 {
		t.Errorf("manual channel_set of a: %v", v)
	}
	if v := counter(t, reg, "capstan_release_changes_total", "app", "com.example.b", "change", "rollout_pause", "actor", "guard"); v != 1 {
		t.Errorf("guard rollout_pause of b: %v", v)
	}
	if v := counter(t, reg, "capstan_audit_append_errors_total"); v != 1 {
		t.Errorf("append errors: %v", v)
	}
	// A second log on the same registry shares the metrics.
	if _, err := Open(ctx, js, Options{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
}

func TestAuditListManyAndLimit(t *testing.T) {
	ctx, js := newJS(t)
	l, err := Open(ctx, js, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1300
	for i := range n {
		app := "com.example.a"
		if i%2 == 1 {
			app = "com.example.b"
		}
		if err := l.Append(ctx, Entry{App: app, Change: "bundle_upload", Actor: "token:ci", Detail: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(q Query, want, last int) {
		t.Helper()
		got, err := l.List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != want || got[len(got)-1].Detail != fmt.Sprint(last) {
			t.Fatalf("%+v: %d entries, last %+v", q, len(got), got[len(got)-1])
		}
		for i := 1; i < len(got); i++ {
			if got[i].Seq <= got[i-1].Seq {
				t.Fatalf("%+v: not oldest first at %d", q, i)
			}
		}
	}
	check(Query{}, DefaultLimit, n-1)
	check(Query{Limit: 5000}, MaxLimit, n-1)
	check(Query{App: "com.example.a", Limit: 1000}, 650, n-2)
	check(Query{App: "com.example.b", Limit: 7}, 7, n-1)
	check(Query{Since: time.Now().Add(-time.Hour), Limit: 1000}, 1000, n-1)
	// Lists leave no consumers behind.
	s, err := js.Stream(ctx, Stream)
	if err != nil {
		t.Fatal(err)
	}
	if c := s.CachedInfo().State.Consumers; c != 0 {
		t.Fatalf("%d consumers left", c)
	}
}

func TestAuditListCanceled(t *testing.T) {
	ctx, js := newJS(t)
	l, err := Open(ctx, js, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, Entry{App: "com.example.a", Change: "app_create"}); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := l.List(cctx, Query{}); err == nil {
		t.Fatal("canceled list succeeded")
	}
}

// counter reads a counter with these label pairs from reg (0 if absent).
func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
