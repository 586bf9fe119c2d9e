package bench

import (
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

func TestBucketRoundTrip(t *testing.T) {
	prev := -1
	for _, v := range []int64{0, 1, 63, 64, 127, 128, 129, 255, 256, 1000, 1 << 20, 1<<40 + 12345, 1<<62 + 1} {
		i := bucketOf(v)
		if i < prev {
			t.Fatalf("bucketOf not monotonic at %d", v)
		}
		prev = i
		hi := bucketHigh(i)
		if hi < v {
			t.Fatalf("value %d above its bucket's high edge %d", v, hi)
		}
		if i > 0 && bucketHigh(i-1) >= v {
			t.Fatalf("value %d also fits the previous bucket (high %d)", v, bucketHigh(i-1))
		}
		if v >= 128 && float64(hi-v)/float64(v) > 1.0/64 {
			t.Fatalf("value %d: bucket edge %d too far", v, hi)
		}
	}
	if bucketOf(1<<63-1) >= histBuckets {
		t.Fatalf("max int64 lands outside the histogram")
	}
}

func TestQuantilesMatchSortedSample(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	h := NewHistogram()
	var vals []int64
	for range 100000 {
		// long-tailed latencies between ~50µs and ~1s
		v := int64(50_000 * (1 + r.ExpFloat64()*r.ExpFloat64()*20))
		vals = append(vals, v)
		h.Record(time.Duration(v))
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := vals[int(q*float64(len(vals)))-1]
		got := int64(h.Quantile(q))
		if got < want || float64(got-want)/float64(want) > 1.0/64 {
			t.Errorf("q%.3f: got %d, want %d within 1.6%%", q, got, want)
		}
	}
	if h.Max() != time.Duration(vals[len(vals)-1]) || h.Min() != time.Duration(vals[0]) {
		t.Errorf("min/max: got %v/%v", h.Min(), h.Max())
	}
	if h.Quantile(1) != h.Max() {
		t.Errorf("q1 %v != max %v", h.Quantile(1), h.Max())
	}
}

func TestMerge(t *testing.T) {
	a, b := NewHistogram(), NewHistogram()
	for i := 1; i <= 100; i++ {
		a.Record(time.Duration(i) * time.Millisecond)
		b.Record(time.Duration(100+i) * time.Millisecond)
	}
	a.Merge(b)
	a.Merge(NewHistogram())
	if a.Count() != 200 || a.Min() != time.Millisecond || a.Max() != 200*time.Millisecond {
		t.Fatalf("merged: count %d min %v max %v", a.Count(), a.Min(), a.Max())
	}
	if p50 := a.Quantile(0.5); p50 < 100*time.Millisecond || p50 > 102*time.Millisecond {
		t.Fatalf("p50 %v", p50)
	}
	if NewHistogram().Quantile(0.5) != 0 {
		t.Fatal("empty histogram quantile")
	}
}

func TestReportHelpers(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -45000: "-45,000"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
	if got := ratio(37483, 36718); got != "1.02×" {
		t.Errorf("ratio: %q", got)
	}
	if got := ratio(1, 0); got != "–" {
		t.Errorf("ratio by zero: %q", got)
	}
	slow, fast := &Result{Events: 10, Elapsed: time.Second, Latency: NewHistogram()}, &Result{Events: 30, Elapsed: time.Second, Latency: NewHistogram()}
	mid := &Result{Events: 20, Elapsed: time.Second, Latency: NewHistogram()}
	if m, _ := median([]*Result{fast, slow, mid}); m != mid {
		t.Errorf("median picked %d events/s", m.Events)
	}
}
