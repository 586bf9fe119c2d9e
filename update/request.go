package update

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/capstan-io/capstan/internal/jsonwire"
)

// Request is the device info object (PROTOCOL.md §1) of an update or
// channel call, after decoding: DeviceID is lowercase, Platform lowercase,
// IsProd defaults to true and IsEmulator to false.
type Request struct {
	Platform       string
	DeviceID       string
	AppID          string
	CustomID       string
	VersionBuild   string
	VersionCode    string
	VersionOS      string
	VersionName    string
	PluginVersion  string
	InstallSource  string
	DefaultChannel string
	KeyID          string
	// Channel is the channel a setChannel call asks for.
	Channel    string
	IsEmulator bool
	IsProd     bool
}

// RequestError is a request that cannot be answered: a 400, 413 or 405
// with a machine code.
type RequestError struct {
	Status  int
	Code    string
	Message string
	res     result
}

func (e *RequestError) Error() string { return e.Code + ": " + e.Message }

// Body is the JSON error body {"error":...,"message":...}.
func (e *RequestError) Body() []byte { return jsonwire.ErrorBody(e.Code, e.Message) }

func badRequest(res result, msg string) *RequestError {
	return &RequestError{Status: http.StatusBadRequest, Code: resultCodes[res], Message: msg, res: res}
}

var (
	errMissingDeviceID = badRequest(resMissingDeviceID, "device_id is required")
	errMissingAppID    = badRequest(resMissingAppID, "app_id is required")
	errNotObject       = badRequest(resInvalidJSON, "body must be a JSON object")
	errEmptyBody       = badRequest(resInvalidJSON, "body is empty; send the device info object as JSON")
)

// wireRequest mirrors the JSON body; OptBool keeps "missing" apart from false.
type wireRequest struct {
	Platform       string           `json:"platform"`
	DeviceID       string           `json:"device_id"`
	AppID          string           `json:"app_id"`
	CustomID       string           `json:"custom_id"`
	VersionBuild   string           `json:"version_build"`
	VersionCode    string           `json:"version_code"`
	VersionOS      string           `json:"version_os"`
	VersionName    string           `json:"version_name"`
	PluginVersion  string           `json:"plugin_version"`
	InstallSource  string           `json:"install_source"`
	DefaultChannel string           `json:"defaultChannel"`
	KeyID          string           `json:"key_id"`
	Channel        string           `json:"channel"`
	IsEmulator     jsonwire.OptBool `json:"is_emulator"`
	IsProd         jsonwire.OptBool `json:"is_prod"`
}

func (w *wireRequest) request() Request {
	return Request{
		Platform:       w.Platform,
		DeviceID:       w.DeviceID,
		AppID:          w.AppID,
		CustomID:       w.CustomID,
		VersionBuild:   w.VersionBuild,
		VersionCode:    w.VersionCode,
		VersionOS:      w.VersionOS,
		VersionName:    w.VersionName,
		PluginVersion:  w.PluginVersion,
		InstallSource:  w.InstallSource,
		DefaultChannel: w.DefaultChannel,
		KeyID:          w.KeyID,
		Channel:        w.Channel,
		IsEmulator:     w.IsEmulator.Or(false),
		IsProd:         w.IsProd.Or(true),
	}
}

// DecodeJSON decodes a device info object from a JSON body and checks the
// fields every call needs (device_id, app_id). It does not validate
// version_build: see ValidateVersionBuild.
func DecodeJSON(body []byte) (Request, *RequestError) {
	var w wireRequest
	if len(bytes.TrimSpace(body)) == 0 {
		return Request{}, errEmptyBody
	}
	if fastDecode(body, &w) {
		r := w.request()
		return r, r.normalize()
	}
	w = wireRequest{}
	if err := json.Unmarshal(body, &w); err != nil {
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) && !errors.Is(err, jsonwire.ErrBadBool) {
			return Request{}, badRequest(resInvalidJSON, "body is not valid JSON: "+err.Error())
		}
		// Valid JSON of unexpected types: the lenient slow path.
		w = wireRequest{}
		if rerr := decodeLenient(body, &w); rerr != nil {
			return Request{}, rerr
		}
	}
	r := w.request()
	return r, r.normalize()
}

// decodeLenient accepts numbers and booleans where strings are expected
// (a version_code of 12 is 12) and reports which field is unusable.
func decodeLenient(body []byte, w *wireRequest) *RequestError {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return errNotObject
	}
	strs := []struct {
		name string
		dst  *string
	}{
		{"platform", &w.Platform}, {"device_id", &w.DeviceID}, {"app_id", &w.AppID},
		{"custom_id", &w.CustomID}, {"version_build", &w.VersionBuild}, {"version_code", &w.VersionCode},
		{"version_os", &w.VersionOS}, {"version_name", &w.VersionName}, {"plugin_version", &w.PluginVersion},
		{"install_source", &w.InstallSource}, {"defaultChannel", &w.DefaultChannel}, {"key_id", &w.KeyID},
		{"channel", &w.Channel},
	}
	for k, v := range m {
		for _, f := range strs {
			if !strings.EqualFold(k, f.name) {
				continue
			}
			switch x := v.(type) {
			case nil:
				*f.dst = ""
			case string:
				*f.dst = x
			case json.Number:
				*f.dst = x.String()
			case bool:
				if x {
					*f.dst = "true"
				} else {
					*f.dst = "false"
				}
			default:
				return badRequest(resInvalidJSON, "field "+f.name+" must be a string")
			}
		}
		for _, f := range []struct {
			name string
			dst  *jsonwire.OptBool
		}{{"is_emulator", &w.IsEmulator}, {"is_prod", &w.IsProd}} {
			if !strings.EqualFold(k, f.name) {
				continue
			}
			raw, err := json.Marshal(v)
			if err != nil || f.dst.UnmarshalJSON(raw) != nil {
				return badRequest(resInvalidJSON, "field "+f.name+" must be a boolean")
			}
		}
	}
	return nil
}

// Legacy GET headers (old plugins send the device info as headers).
var legacyHeaders = [...]string{"cap_platform", "cap_device_id", "cap_app_id", "cap_version_build", "cap_plugin_version", "cap_version_name"}

// DecodeLegacyHeaders decodes the legacy GET form. ok is false when none
// of the cap_* headers is present: such a GET is a health check.
func DecodeLegacyHeaders(h http.Header) (r Request, ok bool, rerr *RequestError) {
	for _, k := range legacyHeaders {
		if _, present := h[http.CanonicalHeaderKey(k)]; present {
			ok = true
			break
		}
	}
	if !ok {
		return Request{}, false, nil
	}
	w := wireRequest{
		Platform:      h.Get("cap_platform"),
		DeviceID:      h.Get("cap_device_id"),
		AppID:         h.Get("cap_app_id"),
		VersionBuild:  h.Get("cap_version_build"),
		PluginVersion: h.Get("cap_plugin_version"),
		VersionName:   h.Get("cap_version_name"),
		CustomID:      h.Get("cap_custom_id"),
		VersionCode:   h.Get("cap_version_code"),
		VersionOS:     h.Get("cap_version_os"),
	}
	_ = w.IsEmulator.UnmarshalJSON([]byte(strings.ToLower(h.Get("cap_is_emulator"))))
	_ = w.IsProd.UnmarshalJSON([]byte(strings.ToLower(h.Get("cap_is_prod"))))
	r = w.request()
	return r, true, r.normalize()
}

// DecodeQuery decodes the info object sent as query parameters
// (listChannels, unsetChannel). Only app_id is required here; callers that
// need device_id check it themselves.
func DecodeQuery(q url.Values) (Request, *RequestError) {
	w := wireRequest{
		Platform:       q.Get("platform"),
		DeviceID:       q.Get("device_id"),
		AppID:          q.Get("app_id"),
		CustomID:       q.Get("custom_id"),
		VersionBuild:   q.Get("version_build"),
		VersionCode:    q.Get("version_code"),
		VersionOS:      q.Get("version_os"),
		VersionName:    q.Get("version_name"),
		PluginVersion:  q.Get("plugin_version"),
		InstallSource:  q.Get("install_source"),
		DefaultChannel: q.Get("defaultChannel"),
		KeyID:          q.Get("key_id"),
		Channel:        q.Get("channel"),
	}
	if err := w.IsEmulator.UnmarshalJSON([]byte(strings.ToLower(q.Get("is_emulator")))); err != nil {
		return Request{}, badRequest(resInvalidJSON, "is_emulator must be true or false")
	}
	if err := w.IsProd.UnmarshalJSON([]byte(strings.ToLower(q.Get("is_prod")))); err != nil {
		return Request{}, badRequest(resInvalidJSON, "is_prod must be true or false")
	}
	r := w.request()
	r.DeviceID = strings.ToLower(r.DeviceID)
	r.Platform = strings.ToLower(r.Platform)
	if r.AppID == "" {
		return r, errMissingAppID
	}
	return r, nil
}

func (r *Request) normalize() *RequestError {
	// ToLower returns its argument unchanged (no allocation) when already lowercase.
	r.DeviceID = strings.ToLower(r.DeviceID)
	r.Platform = strings.ToLower(r.Platform)
	if r.DeviceID == "" {
		return errMissingDeviceID
	}
	if r.AppID == "" {
		return errMissingAppID
	}
	return nil
}

// ValidateVersionBuild rejects a native version that cannot be read as
// semver, even after coercion ("5" → 5.0.0). Empty and "unknown" pass:
// the decision answers them as missing_info / unknown_version_build.
func (r *Request) ValidateVersionBuild() *RequestError {
	vb := r.VersionBuild
	if vb == "" || vb == "unknown" {
		return nil
	}
	if parseVersion(vb).v == nil {
		return badRequest(resSemverError, "version_build "+quoteShort(vb)+" is not semver and cannot be coerced (e.g. 1.4.0)")
	}
	return nil
}

func quoteShort(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return string(jsonwire.AppendString(nil, s))
}
