package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
)

// AppPlan is one app of the benchmark fleet and what is released for it.
type AppPlan struct {
	ID       string
	Weight   int // share of devices
	Bundles  []string
	Channels []ChannelPlan
}

// ChannelPlan is a channel seeded for an app.
type ChannelPlan struct {
	Name           string
	Bundle         string
	RolloutBundle  string
	RolloutPercent float64
	Public         bool
	AllowSelfSet   bool
}

// Device is one simulated install of an app.
type Device struct {
	ID             string // lowercase UUID
	AppID          string
	Platform       string
	VersionBuild   string // native version
	VersionCode    string
	VersionOS      string
	VersionName    string // bundle it runs now
	PluginVersion  string
	DefaultChannel string // set by the device (setChannel)
	Override       string // channel an operator pinned it to
	IsProd         bool
	IsEmulator     bool
}

// Fleet is the simulated world: apps, their releases and the devices.
type Fleet struct {
	Apps    []AppPlan
	Devices []Device
}

// Overrides returns the devices an operator pinned to a channel.
func (f *Fleet) Overrides() []Device {
	var out []Device
	for _, d := range f.Devices {
		if d.Override != "" {
			out = append(out, d)
		}
	}
	return out
}

// DefaultApps is the release layout the benchmark seeds: three apps of
// different sizes, each with a public production channel part-way through
// a 25% rollout, a self-assignable beta and a private qa channel.
func DefaultApps() []AppPlan {
	bundles := []string{"1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.5.0"}
	chans := []ChannelPlan{
		{Name: "production", Bundle: "1.4.0", RolloutBundle: "1.5.0", RolloutPercent: 25, Public: true},
		{Name: "beta", Bundle: "1.5.0", AllowSelfSet: true},
		{Name: "qa", Bundle: "1.5.0"},
	}
	return []AppPlan{
		{ID: "io.capstan.bench.shop", Weight: 60, Bundles: bundles, Channels: chans},
		{ID: "io.capstan.bench.news", Weight: 30, Bundles: bundles, Channels: chans},
		{ID: "io.capstan.bench.chat", Weight: 10, Bundles: bundles, Channels: chans},
	}
}

type weighted[T any] struct {
	w int
	v T
}

func pick[T any](r *rand.Rand, items []weighted[T]) T {
	total := 0
	for _, it := range items {
		total += it.w
	}
	n := r.IntN(total)
	for _, it := range items {
		if n < it.w {
			return it.v
		}
		n -= it.w
	}
	return items[len(items)-1].v
}

// NewFleet builds n devices deterministically from seed.
func NewFleet(apps []AppPlan, n int, seed uint64) *Fleet {
	r := rand.New(rand.NewPCG(seed, 0x6361707374616e))
	var appW []weighted[string]
	for _, a := range apps {
		appW = append(appW, weighted[string]{a.Weight, a.ID})
	}
	// Most devices run the production bundle (up to date unless the
	// rollout picks them), others lag behind or still run builtin.
	versionW := []weighted[string]{{45, "1.4.0"}, {15, "1.5.0"}, {15, "1.3.0"}, {15, "1.2.0"}, {10, "builtin"}}
	f := &Fleet{Apps: apps, Devices: make([]Device, n)}
	for i := range f.Devices {
		d := Device{
			ID:            uuid(r),
			AppID:         pick(r, appW),
			PluginVersion: pick(r, []weighted[string]{{70, "8.51.23"}, {20, "8.45.11"}, {10, "7.9.2"}}),
			VersionBuild:  pick(r, []weighted[string]{{60, "1.0.0"}, {30, "1.2.0"}, {10, "1.3"}}),
			VersionName:   pick(r, versionW),
			IsProd:        r.IntN(100) < 95,
			IsEmulator:    r.IntN(100) < 1,
		}
		if r.IntN(100) < 55 {
			d.Platform, d.VersionOS = "android", pick(r, []weighted[string]{{40, "14"}, {35, "13"}, {25, "12"}})
		} else {
			d.Platform, d.VersionOS = "ios", pick(r, []weighted[string]{{50, "17.4"}, {35, "16.7.2"}, {15, "18.0"}})
		}
		d.VersionCode = fmt.Sprint(100 + r.IntN(40))
		switch x := r.IntN(100); {
		case x < 10:
			d.DefaultChannel = "beta"
		case x < 12:
			d.Override = "qa"
		case x < 13:
			d.Override = "beta"
		}
		f.Devices[i] = d
	}
	return f
}

func uuid(r *rand.Rand) string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// UserAgent is what the plugin sends with every request.
func (d *Device) UserAgent() string {
	return fmt.Sprintf("CapacitorUpdater/%s (%s) %s/%s", d.PluginVersion, d.AppID, d.Platform, d.VersionOS)
}

// info is the device info object (PROTOCOL.md §1).
type info struct {
	Platform       string `json:"platform"`
	DeviceID       string `json:"device_id"`
	AppID          string `json:"app_id"`
	CustomID       string `json:"custom_id"`
	VersionBuild   string `json:"version_build"`
	VersionCode    string `json:"version_code"`
	VersionOS      string `json:"version_os"`
	VersionName    string `json:"version_name"`
	PluginVersion  string `json:"plugin_version"`
	IsEmulator     bool   `json:"is_emulator"`
	IsProd         bool   `json:"is_prod"`
	DefaultChannel string `json:"defaultChannel,omitempty"`
}

func (d *Device) info() info {
	return info{
		Platform: d.Platform, DeviceID: d.ID, AppID: d.AppID,
		VersionBuild: d.VersionBuild, VersionCode: d.VersionCode, VersionOS: d.VersionOS,
		VersionName: d.VersionName, PluginVersion: d.PluginVersion,
		IsEmulator: d.IsEmulator, IsProd: d.IsProd, DefaultChannel: d.DefaultChannel,
	}
}

// statEvent is one stats event as the plugin sends it (PROTOCOL.md §3).
type statEvent struct {
	info
	Action         string            `json:"action"`
	OldVersionName string            `json:"old_version_name"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	Timestamp      int64             `json:"timestamp"`
}

// Request is a pre-encoded HTTP request body plus what the generator needs
// to send it.
type Request struct {
	Path      string
	Body      []byte
	UserAgent string
	// Events in the body (stats) or 1 (update checks).
	Events int
	// Stamps are offsets of 13-digit placeholders in Body that the
	// generator overwrites with a unique number per send, so every event
	// is distinct (event ids derive from content).
	Stamps []int
}

// UpdateRequests returns one update-check request per device.
func UpdateRequests(f *Fleet) []Request {
	out := make([]Request, len(f.Devices))
	for i := range f.Devices {
		d := &f.Devices[i]
		b, _ := json.Marshal(d.info())
		out[i] = Request{Path: "/updates", Body: b, UserAgent: d.UserAgent(), Events: 1}
	}
	return out
}

// Action mix per 1000 events, shaped like a fleet in steady state: app
// lifecycle dominates, a release is downloading on some devices, ~2% are
// failure signals.
var actionMix = []weighted[string]{
	{275, "app_moved_to_foreground"}, {260, "app_moved_to_background"},
	{90, "app_launch_start"}, {85, "app_launch_ready"},
	{20, "download_zip_start"},
	{10, "download_0"}, {10, "download_10"}, {10, "download_20"}, {10, "download_30"}, {10, "download_40"},
	{10, "download_50"}, {10, "download_60"}, {10, "download_70"}, {10, "download_80"}, {10, "download_90"},
	{20, "download_complete"}, {20, "download_zip_complete"},
	{40, "set"}, {10, "set_next"}, {40, "webview_page_loaded"},
	{10, "webview_javascript_error"}, {5, "app_memory_warning"}, {3, "reset"},
	{8, "download_fail"}, {5, "update_fail"}, {2, "checksum_fail"}, {2, "unzip_fail"},
	{3, "app_crash"}, {2, "app_anr"},
}

// placeholder marks a timestamp the generator rewrites on each send.
const placeholder int64 = 1_000_000_000_000

var placeholderJSON = []byte(`"timestamp":1000000000000`)

// StatsRequests returns n stats requests of perBody events each, every
// body from one device, actions drawn from the realistic mix.
func StatsRequests(f *Fleet, n, perBody int, seed uint64) []Request {
	r := rand.New(rand.NewPCG(seed, 0x7374617473))
	out := make([]Request, n)
	for i := range out {
		d := &f.Devices[r.IntN(len(f.Devices))]
		evs := make([]statEvent, perBody)
		for j := range evs {
			evs[j] = newStatEvent(r, d)
		}
		b, _ := json.Marshal(evs)
		out[i] = Request{Path: "/stats", Body: b, UserAgent: d.UserAgent(), Events: perBody, Stamps: stampOffsets(b)}
	}
	return out
}

func newStatEvent(r *rand.Rand, d *Device) statEvent {
	e := statEvent{info: d.info(), Action: pick(r, actionMix), Timestamp: placeholder}
	e.DefaultChannel = ""
	switch e.Action {
	case "set":
		e.OldVersionName = e.VersionName
		e.VersionName = "1.5.0"
	case "reset":
		e.OldVersionName = e.VersionName
		e.VersionName = "builtin"
	case "app_launch_ready":
		if r.IntN(4) == 0 {
			e.Metadata = map[string]string{"launch_ms": fmt.Sprint(200 + r.IntN(1500))}
		}
	case "webview_javascript_error":
		e.Metadata = map[string]string{"message": "TypeError: undefined is not an object", "source": "main.js"}
	}
	return e
}

func stampOffsets(b []byte) []int {
	var offs []int
	for i := 0; ; {
		j := bytes.Index(b[i:], placeholderJSON)
		if j < 0 {
			return offs
		}
		pos := i + j + len(`"timestamp":`)
		offs = append(offs, pos)
		i = pos
	}
}

// putStamp writes v as 13 ASCII digits at off.
func putStamp(b []byte, off int, v int64) {
	for i := off + 12; i >= off; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
}
