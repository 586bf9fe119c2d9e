package ingest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/capstan-io/capstan/internal/jsonwire"
	"github.com/capstan-io/capstan/schema"
	"github.com/capstan-io/capstan/update"
)

// Limits on one event (PROTOCOL.md §3 for metadata; the rest are generous
// caps on what a real device sends).
const (
	MaxMetadataKeys     = 30
	MaxMetadataKeyLen   = 64   // characters
	MaxMetadataValueLen = 2048 // characters
	MaxActionLen        = 64
	MaxAppIDLen         = 128
	MaxDeviceIDLen      = 128
	maxFieldLen         = 256  // bytes, every other short field
	maxFileNameLen      = 1024 // bytes, file part of "<version>:<file>"
)

// Per-event error codes (the "error" of a result, and the reason label of
// capstan_stats_events_rejected_total).
const (
	CodeInvalidEvent        = "invalid_event"
	CodeMissingAppID        = "missing_app_id"
	CodeInvalidAppID        = "invalid_app_id"
	CodeMissingDeviceID     = "missing_device_id"
	CodeInvalidDeviceID     = "invalid_device_id"
	CodeMissingAction       = "missing_action"
	CodeInvalidAction       = "invalid_action"
	CodeMissingPlatform     = "missing_platform"
	CodeInvalidPlatform     = "invalid_platform"
	CodeFieldTooLong        = "field_too_long"
	CodeTooManyMetadataKeys = "too_many_metadata_keys"
	CodeMetadataKeyTooLong  = "metadata_key_too_long"
	CodeMetadataValTooLong  = "metadata_value_too_long"
)

var rejectReasons = []string{
	CodeInvalidEvent, CodeMissingAppID, CodeInvalidAppID, CodeMissingDeviceID,
	CodeInvalidDeviceID, CodeMissingAction, CodeInvalidAction, CodeMissingPlatform,
	CodeInvalidPlatform, CodeFieldTooLong, CodeTooManyMetadataKeys,
	CodeMetadataKeyTooLong, CodeMetadataValTooLong,
}

// eventError is why one event was refused.
type eventError struct {
	Code    string
	Message string
}

func (e *eventError) Error() string { return e.Code + ": " + e.Message }

func evErr(code, msg string) *eventError { return &eventError{Code: code, Message: msg} }

var (
	errNotObject       = evErr(CodeInvalidEvent, "event must be a JSON object")
	errMissingAppID    = evErr(CodeMissingAppID, "app_id is required")
	errMissingDeviceID = evErr(CodeMissingDeviceID, "device_id is required")
	errMissingAction   = evErr(CodeMissingAction, "action is required")
	errMissingPlatform = evErr(CodeMissingPlatform, "platform is required")
	errPlatform        = evErr(CodeInvalidPlatform, "platform must be ios, android or electron")
	errAppID           = evErr(CodeInvalidAppID, "app_id may hold only letters, digits, '.', '_' and '-' (at most 128)")
	errDeviceID        = evErr(CodeInvalidDeviceID, "device_id must be at most 128 printable characters without spaces")
	errAction          = evErr(CodeInvalidAction, "action may hold only letters, digits, '_', '-' and '.' (at most 64)")
	errTooManyKeys     = evErr(CodeTooManyMetadataKeys, "metadata has more than 30 keys")
	errMetaKey         = evErr(CodeMetadataKeyTooLong, "a metadata key is longer than 64 characters")
	errMetaValue       = evErr(CodeMetadataValTooLong, "a metadata value is longer than 2048 characters")
)

// wireEvent mirrors one stats event as the plugin sends it.
type wireEvent struct {
	AppID          flexString        `json:"app_id"`
	DeviceID       flexString        `json:"device_id"`
	Platform       flexString        `json:"platform"`
	Action         flexString        `json:"action"`
	VersionName    flexString        `json:"version_name"`
	OldVersionName flexString        `json:"old_version_name"`
	VersionBuild   flexString        `json:"version_build"`
	VersionCode    flexString        `json:"version_code"`
	VersionOS      flexString        `json:"version_os"`
	PluginVersion  flexString        `json:"plugin_version"`
	CustomID       flexString        `json:"custom_id"`
	DefaultChannel flexString        `json:"defaultChannel"`
	InstallSource  flexString        `json:"install_source"`
	KeyID          flexString        `json:"key_id"`
	IsEmulator     jsonwire.OptBool  `json:"is_emulator"`
	IsProd         jsonwire.OptBool  `json:"is_prod"`
	Metadata       map[string]string `json:"metadata"`
	Timestamp      optInt            `json:"timestamp"`
}

// errBadBool is what an is_emulator or is_prod that is no boolean fails with.
var errBadBool = evErr(CodeInvalidEvent, "is_emulator and is_prod must be booleans")

// flexString is a string field. Like /updates and /channel_self, numbers
// and booleans are accepted and kept as their JSON text (12 is "12", true
// is "true"); null clears it. Objects and arrays fail with errNotString,
// which stringFieldError turns into a message naming the field.
type flexString string

// errNotString is an object or array where a string belongs.
var errNotString = evErr(CodeInvalidEvent, "a string field holds an object or array")

func (s *flexString) UnmarshalJSON(data []byte) error {
	if len(data) == 0 {
		return errNotString
	}
	switch c := data[0]; {
	case c == '"':
		if raw, ok := plainJSONString(data); ok {
			*s = flexString(raw)
			return nil
		}
		var v string
		if err := json.Unmarshal(data, &v); err != nil {
			return errNotString
		}
		*s = flexString(v)
	case c == '-' || (c >= '0' && c <= '9'), string(data) == "true", string(data) == "false":
		*s = flexString(data)
	case string(data) == "null":
		*s = ""
	default:
		return errNotString
	}
	return nil
}

// stringFields are wireEvent's flexString keys, in the order
// stringFieldError checks them.
var stringFields = [...]string{"app_id", "device_id", "platform", "action", "version_name",
	"old_version_name", "version_build", "version_code", "version_os", "plugin_version", "custom_id",
	"defaultChannel", "install_source", "key_id"}

// stringFieldError names the string field of the event object raw that
// holds an object or array (encoding/json matches keys case-insensitively,
// so does this). Only called on the error path.
func stringFieldError(raw []byte) *eventError {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) == nil {
		for _, f := range stringFields {
			for k, v := range m {
				if strings.EqualFold(k, f) && len(v) > 0 && (v[0] == '{' || v[0] == '[') {
					return evErr(CodeInvalidEvent, f+" must be a string, number or boolean")
				}
			}
		}
	}
	return errNotString
}

// plainJSONString returns the content of a quoted JSON string that needs
// no unescaping (no backslash, control or non-ASCII byte).
func plainJSONString(data []byte) (string, bool) {
	if len(data) < 2 || data[len(data)-1] != '"' {
		return "", false
	}
	in := data[1 : len(data)-1]
	for _, c := range in {
		if c == '\\' || c == '"' || c < 0x20 || c >= 0x80 {
			return "", false
		}
	}
	return string(in), true
}

// optInt is the client timestamp: epoch milliseconds as a JSON number (or
// a numeric string); fractions are truncated.
type optInt struct {
	V   int64
	Set bool
}

var errBadTimestamp = evErr(CodeInvalidEvent, "timestamp must be epoch milliseconds")

func (t *optInt) UnmarshalJSON(data []byte) error {
	s := string(data)
	if s == "null" || s == `""` {
		*t = optInt{}
		return nil
	}
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		*t = optInt{V: v, Set: true}
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != f || f > 9e18 || f < -9e18 {
		return errBadTimestamp
	}
	*t = optInt{V: int64(f), Set: true}
	return nil
}

// maxClientMs is 2100-01-01; later (or negative) device clocks are kept
// in the event id but not stored as client time.
const maxClientMs = 4102444800000

// normalize validates w and turns it into the event to publish, without
// ID, ReceivedMs and Channel (the caller adds them).
func normalize(w *wireEvent) (schema.Event, *eventError) {
	var ev schema.Event
	switch {
	case string(w.AppID) == "":
		return ev, errMissingAppID
	case !validToken(string(w.AppID), MaxAppIDLen):
		return ev, errAppID
	}
	switch {
	case string(w.DeviceID) == "":
		return ev, errMissingDeviceID
	case !validDeviceID(string(w.DeviceID)):
		return ev, errDeviceID
	}
	switch {
	case string(w.Action) == "":
		return ev, errMissingAction
	case !validToken(string(w.Action), MaxActionLen):
		return ev, errAction
	}
	platform, perr := normPlatform(string(w.Platform))
	if perr != nil {
		return ev, perr
	}
	version, file, _ := strings.Cut(string(w.VersionName), ":")
	if version == "" {
		// Current plugins always send it; "unknown" is what they send when
		// they do not know, so missing means the same.
		version = "unknown"
	}
	if err := checkLen("version_name", version, maxFieldLen); err != nil {
		return ev, err
	}
	if err := checkLen("file_name", file, maxFileNameLen); err != nil {
		return ev, err
	}
	for _, f := range [...]struct{ name, v string }{
		{"old_version_name", string(w.OldVersionName)},
		{"version_build", string(w.VersionBuild)},
		{"version_code", string(w.VersionCode)},
		{"version_os", string(w.VersionOS)},
		{"plugin_version", string(w.PluginVersion)},
		{"custom_id", string(w.CustomID)},
		{"defaultChannel", string(w.DefaultChannel)},
		{"install_source", string(w.InstallSource)},
		{"key_id", string(w.KeyID)},
	} {
		if err := checkLen(f.name, f.v, maxFieldLen); err != nil {
			return ev, err
		}
	}
	if err := checkMetadata(w.Metadata); err != nil {
		return ev, err
	}
	reported := ""
	if a := attributedVersion(string(w.Action), version, w.Metadata); a != version {
		reported, version = version, a
	}
	ev = schema.Event{
		ReportedVersion: reported,
		Ignored:         legacyDownloadFail(string(w.Action), string(w.PluginVersion)),
		AppID:           string(w.AppID),
		DeviceID:        strings.ToLower(string(w.DeviceID)),
		Platform:        platform,
		Action:          string(w.Action),
		VersionName:     version,
		FileName:        file,
		OldVersionName:  string(w.OldVersionName),
		VersionBuild:    string(w.VersionBuild),
		VersionCode:     string(w.VersionCode),
		VersionOS:       string(w.VersionOS),
		PluginVersion:   string(w.PluginVersion),
		CustomID:        string(w.CustomID),
		Channel:         string(w.DefaultChannel),
		InstallSource:   string(w.InstallSource),
		KeyID:           string(w.KeyID),
		IsEmulator:      w.IsEmulator.Or(false),
		IsProd:          w.IsProd.Or(true),
		Metadata:        w.Metadata,
	}
	if w.Timestamp.Set && w.Timestamp.V > 0 && w.Timestamp.V < maxClientMs {
		ev.ClientMs = w.Timestamp.V
	}
	if len(ev.Metadata) == 0 {
		ev.Metadata = nil
	}
	return ev, nil
}

// attributionKeys are metadata keys that name the bundle a failure is
// about, in order of preference. Plugin 8.51.23 sends none of them with a
// failure (its failure stats carry no metadata about the bundle); the
// event's own "<version>:<file>" is the only attribution it gives.
var attributionKeys = [...]string{"failed_version", "version_name"}

// attributedVersion is the bundle a failure event is about: the version a
// metadata attribution key names (its "<version>" part), else version.
// Other actions keep version.
func attributedVersion(action, version string, meta map[string]string) string {
	if len(meta) == 0 || !schema.IsFailureAction(action) {
		return version
	}
	for _, k := range attributionKeys {
		v, _, _ := strings.Cut(meta[k], ":")
		if v != "" && len(v) <= maxFieldLen {
			return v
		}
	}
	return version
}

// legacyDownloadFail reports a download_fail from a plugin that sent one
// for every "no update" answer.
func legacyDownloadFail(action, pluginVersion string) bool {
	return action == "download_fail" && update.ReportsNoUpdateAsFailure(pluginVersion)
}

func normPlatform(p string) (string, *eventError) {
	switch p {
	case "ios", "android", "electron":
		return p, nil
	case "":
		return "", errMissingPlatform
	}
	switch strings.ToLower(p) {
	case "ios":
		return "ios", nil
	case "android":
		return "android", nil
	case "electron":
		return "electron", nil
	}
	return "", errPlatform
}

// validToken accepts [A-Za-z0-9._-]{1,max}.
func validToken(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validDeviceID accepts printable ASCII without spaces: UUIDs today, but
// other id schemes (Android ids, custom) must not be lost.
func validDeviceID(s string) bool {
	if len(s) > MaxDeviceIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

func checkLen(name, v string, max int) *eventError {
	if len(v) > max {
		return evErr(CodeFieldTooLong, name+" is longer than "+strconv.Itoa(max)+" bytes")
	}
	return nil
}

func checkMetadata(m map[string]string) *eventError {
	if len(m) > MaxMetadataKeys {
		return errTooManyKeys
	}
	for k, v := range m {
		if len(k) > MaxMetadataKeyLen && utf8.RuneCountInString(k) > MaxMetadataKeyLen {
			return errMetaKey
		}
		if len(v) > MaxMetadataValueLen && utf8.RuneCountInString(v) > MaxMetadataValueLen {
			return errMetaValue
		}
	}
	return nil
}

// Event ids.
//
// The id is the first 16 bytes of SHA-256 over a canonical, length-prefixed
// encoding of what the device sent (never the receive time), in hex. The
// request's message id derives from its events' ids (schema.BatchMsgID),
// so JetStream drops an exact resend, and ClickHouse (event_id) any copy.
//
// Timestamped events get a content id: the plugin queues them (with
// "timestamp", CapgoUpdater.java:2952, CapgoUpdater.swift:3336) and resends
// the same batch verbatim on 429, 408 and 5xx (CapgoUpdater.java:3224-3241,
// isTransientStatsFailure :3275; CapgoUpdater.swift:3481, :3520), so a
// resend must map to the same ids.
//
// Timestamp-less events (the Android download worker,
// sendStatsAsync, DownloadService.java:482-535, and rate_limit_reached,
// CapgoUpdater.java:2288-2340, CapgoUpdater.swift:707-745) are single
// objects sent once and never resent: their callbacks only log or release
// the rate-limit claim. Identical ones are distinct events, so their id
// also hashes a per-request nonce.
//
// Inside one request, the k-th repetition of identical content hashes k
// in as well ("occurrence"), which is stable across resends, unlike the
// batch index.

const idVersion = "capstan.event.v1"

// eventIDLen is the length of an event id in hex characters.
const eventIDLen = 32

type idDigest [16]byte

// hasher computes event ids, reusing its scratch buffers.
type hasher struct {
	// nonce is hashed into the ids of timestamp-less events; the handler
	// sets a fresh one per request. Zero (tests only) leaves it out.
	nonce [16]byte
	buf   []byte
	keys  []string
	list  []idDigest          // base digests of this request's events
	seen  map[idDigest]uint32 // their counts, once the request is large
}

// appendCanonical writes the device-sent content of w (normalised where
// the device is case-insensitive) to b.
func (h *hasher) appendCanonical(b []byte, w *wireEvent, ev *schema.Event) []byte {
	b = append(b, idVersion...)
	for _, s := range [...]string{
		ev.AppID, ev.DeviceID, ev.Platform, ev.Action, string(w.VersionName), string(w.OldVersionName),
		string(w.VersionBuild), string(w.VersionCode), string(w.VersionOS), string(w.PluginVersion),
		string(w.CustomID), string(w.DefaultChannel), string(w.InstallSource), string(w.KeyID),
	} {
		b = appendStr(b, s)
	}
	b = append(b, byte(w.IsEmulator), byte(w.IsProd))
	if w.Timestamp.Set {
		b = append(b, 1)
		b = binary.BigEndian.AppendUint64(b, uint64(w.Timestamp.V))
	} else {
		b = append(b, 0)
		if h.nonce != ([16]byte{}) {
			b = append(b, h.nonce[:]...)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(w.Metadata)))
	if len(w.Metadata) > 0 {
		h.keys = jsonwire.SortedKeys(h.keys[:0], w.Metadata)
		for _, k := range h.keys {
			b = appendStr(b, k)
			b = appendStr(b, w.Metadata[k])
		}
	}
	return b
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// reset prepares the hasher for a new request.
func (h *hasher) reset() {
	h.list = h.list[:0]
	if len(h.seen) > 0 {
		clear(h.seen)
	}
}

// smallRequest is how many events are checked for repeated content by a
// linear scan before switching to a map.
const smallRequest = 32

// occurrence counts the earlier events of this request with digest d.
func (h *hasher) occurrence(d idDigest) uint32 {
	if h.seen == nil && len(h.list) < smallRequest {
		var n uint32
		for _, x := range h.list {
			if x == d {
				n++
			}
		}
		h.list = append(h.list, d)
		return n
	}
	if h.seen == nil {
		h.seen = make(map[idDigest]uint32, 4*smallRequest)
	}
	if len(h.seen) == 0 {
		for _, x := range h.list {
			h.seen[x]++
		}
	}
	n := h.seen[d]
	h.seen[d] = n + 1
	h.list = append(h.list, d)
	return n
}

// id returns the event id of w within the current request.
func (h *hasher) id(w *wireEvent, ev *schema.Event) string {
	b := h.appendCanonical(h.buf[:0], w, ev)
	sum := sha256.Sum256(b)
	var d idDigest
	copy(d[:], sum[:16])
	if occ := h.occurrence(d); occ > 0 {
		b = binary.AppendUvarint(b, uint64(occ))
		sum = sha256.Sum256(b)
		copy(d[:], sum[:16])
	}
	h.buf = b
	var out [eventIDLen]byte
	hex.Encode(out[:], d[:])
	return string(out[:])
}
