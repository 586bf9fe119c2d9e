// Package bench measures Capstan over HTTP on loopback: it seeds a running
// server, drives it with realistic device traffic and compares it with a
// bare handler measured in the same run.
package bench

import (
	"math"
	"math/bits"
	"time"
)

// Histogram records durations with a bounded relative error (HDR style:
// exact below 128 ns, then 64 linear sub-buckets per power of two, so a
// reported value is within 1/64 ≈ 1.6% of the true one). Not safe for
// concurrent use: give each worker its own and Merge them.
type Histogram struct {
	counts [histBuckets]uint64
	total  uint64
	min    int64
	max    int64
	sum    float64
}

const (
	histSubBits = 6
	histSub     = 1 << histSubBits // 64
	// 63-bit values: shifts 0..56 above the exact range.
	histBuckets = (64 - histSubBits) * histSub
)

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram { return &Histogram{min: math.MaxInt64} }

func bucketOf(v int64) int {
	if v < 0 {
		v = 0
	}
	if v < 2*histSub {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - (histSubBits + 1)
	return (shift+1)<<histSubBits + int(v>>shift) - histSub
}

// bucketHigh is the largest value that falls into bucket i.
func bucketHigh(i int) int64 {
	if i < 2*histSub {
		return int64(i)
	}
	shift := i>>histSubBits - 1
	sub := int64(i&(histSub-1) + histSub)
	return (sub+1)<<shift - 1
}

// Record adds one observation.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	h.total++
	h.sum += float64(v)
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

// Merge adds o's observations to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Count is the number of observations.
func (h *Histogram) Count() uint64 { return h.total }

// Max is the largest observation (exact).
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Min is the smallest observation (exact); 0 when empty.
func (h *Histogram) Min() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.min)
}

// Mean is the average observation.
func (h *Histogram) Mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.total))
}

// Quantile returns the value below or at which a fraction q (0..1) of the
// observations fall, as the upper edge of its bucket (capped at Max).
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	if q <= 0 {
		return time.Duration(h.min)
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	if rank < 1 {
		rank = 1
	}
	if rank > h.total {
		rank = h.total
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(max(bucketHigh(i), h.min), h.max))
		}
	}
	return time.Duration(h.max)
}
