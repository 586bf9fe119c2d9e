package release

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// InvalidEntry is a key of the release bucket whose current value cannot
// be used: not JSON, not a JSON object (null, a string, an empty value),
// or missing what its kind requires. The object it names is left out of
// the snapshot exactly as if the key were deleted, on a running front and
// on a restarted one alike, until a good value or a delete replaces it.
type InvalidEntry struct {
	Key      string `json:"key"`
	Revision uint64 `json:"revision"`
	Error    string `json:"error"`
}

// InvalidEntries returns the keys whose current value is invalid, sorted
// by key, as of the published snapshot; empty when every value decodes.
// A health endpoint can report them; the gauge
// capstan_release_invalid_entries counts them.
func (s *Store) InvalidEntries() []InvalidEntry {
	p := s.inv.pub.Load()
	if p == nil {
		return nil
	}
	return slices.Clone(*p)
}

// invalidKeys tracks the invalid entries seen by the watch. cur belongs
// to the watch goroutine; pub is what readers see, replaced together with
// each snapshot.
type invalidKeys struct {
	cur     map[string]InvalidEntry
	changed bool
	pub     atomic.Pointer[[]InvalidEntry]
	gauge   prometheus.Gauge
	log     *slog.Logger
}

func (v *invalidKeys) init(reg prometheus.Registerer, log *slog.Logger) {
	v.log = log
	v.cur = map[string]InvalidEntry{}
	v.gauge = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "capstan_release_invalid_entries",
		Help: "Release bucket keys whose current value cannot be decoded; each is treated as deleted until a good value replaces it.",
	})
	if reg != nil {
		v.gauge = registerOrReuse(reg, v.gauge)
	}
}

// reset starts over for a full reload of the bucket.
func (v *invalidKeys) reset() {
	v.cur = map[string]InvalidEntry{}
	v.changed = true
}

func (v *invalidKeys) mark(key string, rev uint64, err error) {
	v.log.Warn("release bucket: invalid value; treated as deleted until a good value replaces it", "key", key, "revision", rev, "err", err)
	v.cur[key] = InvalidEntry{Key: key, Revision: rev, Error: err.Error()}
	v.changed = true
}

// clear forgets key after a good value or a delete.
func (v *invalidKeys) clear(key string) {
	if _, ok := v.cur[key]; !ok {
		return
	}
	delete(v.cur, key)
	v.changed = true
	v.log.Info("release bucket: invalid value replaced", "key", key)
}

// publish makes the current set visible; called with each snapshot swap.
func (v *invalidKeys) publish() {
	if !v.changed {
		return
	}
	v.changed = false
	list := make([]InvalidEntry, 0, len(v.cur))
	for _, e := range v.cur {
		list = append(list, e)
	}
	slices.SortFunc(list, func(a, b InvalidEntry) int { return strings.Compare(a.Key, b.Key) })
	v.pub.Store(&list)
	v.gauge.Set(float64(len(list)))
}

var errNotObject = errors.New("value is not a JSON object")

// decodeValue decodes a bucket value that must be a JSON object: null,
// an empty value or any other JSON type is an error, never a zero value.
func decodeValue(data []byte, dst any) error {
	t := bytes.TrimLeft(data, " \t\r\n")
	if len(t) == 0 {
		return errors.New("empty value")
	}
	if t[0] != '{' {
		return errNotObject
	}
	return json.Unmarshal(data, dst)
}
