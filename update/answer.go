package update

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/capstan-io/capstan/internal/jsonwire"
	"github.com/capstan-io/capstan/update/release"
)

// Answer is what an update check returns to the device.
type Answer struct {
	// Status is the HTTP status code.
	Status int
	// Body is the JSON body. Constant answers share one slice: never modify it.
	Body []byte
	// Result is "update", "builtin" or the error code; the metrics label.
	Result string
	// Channel is the channel that decided, "" when none was found.
	Channel string
	// Version is the bundle offered or blocked ("builtin" for a revert).
	Version string

	res result
}

// Kinds of non-update answers (PROTOCOL.md §2).
const (
	KindUpToDate = "up_to_date"
	KindBlocked  = "blocked"
	KindFailed   = "failed"
)

// Machine codes Capstan answers with. Results "update" and "builtin" are
// success-shaped answers; the rest are error codes.
const (
	ResultUpdate  = "update"
	ResultBuiltin = "builtin"

	CodeNoNewVersion         = "no_new_version_available"
	CodeAlreadyOnBuiltin     = "already_on_builtin"
	CodeDisabledIOS          = "disabled_platform_ios"
	CodeDisabledAndroid      = "disabled_platform_android"
	CodeDisabledElectron     = "disabled_platform_electron"
	CodeToMajor              = "disable_auto_update_to_major"
	CodeToMinor              = "disable_auto_update_to_minor"
	CodeToPatch              = "disable_auto_update_to_patch"
	CodeToMetadata           = "disable_auto_update_to_metadata"
	CodeUnderNative          = "disable_auto_update_under_native"
	CodeProdBuild            = "disable_prod_build"
	CodeDevBuild             = "disable_dev_build"
	CodeEmulator             = "disable_emulator"
	CodeDevice               = "disable_device"
	CodeKeyIDMismatch        = "key_id_mismatch"
	CodePrivateChannel       = "cannot_update_via_private_channel"
	CodeEncryptionRequired   = "encryption_required"
	CodeNoChannel            = "no_channel"
	CodeNoBundle             = "no_bundle"
	CodeMissingInfo          = "missing_info"
	CodeSemverError          = "semver_error"
	CodeUnknownVersionBuild  = "unknown_version_build"
	CodeAppNotFound          = "app_not_found"
	CodeInvalidJSONBody      = "invalid_json_body"
	CodeMissingDeviceID      = "missing_device_id"
	CodeMissingAppID         = "missing_app_id"
	CodePayloadTooLarge      = "payload_too_large"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeMissingChannel       = "missing_channel"
	CodeChannelNotFound      = "channel_not_found"
	CodeSelfSetNotAllowed    = "channel_self_set_not_allowed"
	CodePublicSelfSetBlocked = "public_channel_self_set_not_allowed"
	CodeChoiceUnavailable    = "channel_choice_unavailable"
)

// result is a closed enumeration of answer outcomes, so metrics can index
// counters without hashing label strings.
type result uint8

const (
	resUpdate result = iota
	resBuiltin
	resNoNewVersion
	resAlreadyOnBuiltin
	resDisabledIOS
	resDisabledAndroid
	resDisabledElectron
	resToMajor
	resToMinor
	resToPatch
	resToMetadata
	resUnderNative
	resProdBuild
	resDevBuild
	resEmulator
	resDevice
	resKeyIDMismatch
	resPrivateChannel
	resEncryptionRequired
	resNoChannel
	resNoBundle
	resMissingInfo
	resSemverError
	resUnknownVersionBuild
	resAppNotFound
	resInvalidJSON
	resMissingDeviceID
	resMissingAppID
	resTooLarge
	numResults
)

var resultCodes = [numResults]string{
	resUpdate:              ResultUpdate,
	resBuiltin:             ResultBuiltin,
	resNoNewVersion:        CodeNoNewVersion,
	resAlreadyOnBuiltin:    CodeAlreadyOnBuiltin,
	resDisabledIOS:         CodeDisabledIOS,
	resDisabledAndroid:     CodeDisabledAndroid,
	resDisabledElectron:    CodeDisabledElectron,
	resToMajor:             CodeToMajor,
	resToMinor:             CodeToMinor,
	resToPatch:             CodeToPatch,
	resToMetadata:          CodeToMetadata,
	resUnderNative:         CodeUnderNative,
	resProdBuild:           CodeProdBuild,
	resDevBuild:            CodeDevBuild,
	resEmulator:            CodeEmulator,
	resDevice:              CodeDevice,
	resKeyIDMismatch:       CodeKeyIDMismatch,
	resPrivateChannel:      CodePrivateChannel,
	resEncryptionRequired:  CodeEncryptionRequired,
	resNoChannel:           CodeNoChannel,
	resNoBundle:            CodeNoBundle,
	resMissingInfo:         CodeMissingInfo,
	resSemverError:         CodeSemverError,
	resUnknownVersionBuild: CodeUnknownVersionBuild,
	resAppNotFound:         CodeAppNotFound,
	resInvalidJSON:         CodeInvalidJSONBody,
	resMissingDeviceID:     CodeMissingDeviceID,
	resMissingAppID:        CodeMissingAppID,
	resTooLarge:            CodePayloadTooLarge,
}

// KindOf returns the `kind` the plugin expects with an update-check error
// code; unknown codes are failures, as in Capgo.
func KindOf(code string) string {
	switch code {
	case CodeNoNewVersion, CodeAlreadyOnBuiltin:
		return KindUpToDate
	case CodeDisabledIOS, CodeDisabledAndroid, CodeDisabledElectron,
		CodeToMajor, CodeToMinor, CodeToPatch, CodeToMetadata, CodeUnderNative,
		CodeProdBuild, CodeDevBuild, CodeEmulator, CodeDevice, CodeKeyIDMismatch,
		// Capgo made this blocked in May 2026: as a failure it makes every
		// check send download_fail and reject getLatest().
		CodePrivateChannel,
		CodeEncryptionRequired:
		return KindBlocked
	}
	return KindFailed
}

// failure is one constant update-check error answer, marshalled once.
type failure struct {
	res  result
	msg  string
	body []byte
}

func newFailure(res result, msg string) *failure {
	code := resultCodes[res]
	b, err := json.Marshal(struct {
		Error   string `json:"error"`
		Message string `json:"message"`
		Kind    string `json:"kind"`
	}{code, msg, KindOf(code)})
	if err != nil {
		panic(err)
	}
	return &failure{res: res, msg: msg, body: b}
}

func (f *failure) answer(channel, version string) Answer {
	return Answer{Status: http.StatusOK, Body: f.body, Result: resultCodes[f.res], Channel: channel, Version: version, res: f.res}
}

var (
	failNoNewVersion       = newFailure(resNoNewVersion, "No new version available")
	failAlreadyOnBuiltin   = newFailure(resAlreadyOnBuiltin, "Already on builtin")
	failDisabledIOS        = newFailure(resDisabledIOS, "Cannot update, ios is disabled for this channel")
	failDisabledAndroid    = newFailure(resDisabledAndroid, "Cannot update, android is disabled for this channel")
	failDisabledElectron   = newFailure(resDisabledElectron, "Cannot update, electron is disabled for this channel")
	failToMinor            = newFailure(resToMinor, "Cannot upgrade minor version")
	failToPatch            = newFailure(resToPatch, "Cannot upgrade patch version")
	failToMetadata         = newFailure(resToMetadata, "Cannot upgrade version, min update version > native version")
	failUnderNative        = newFailure(resUnderNative, "Cannot revert under native version")
	failProdBuild          = newFailure(resProdBuild, "Cannot update, prod build is disabled")
	failDevBuild           = newFailure(resDevBuild, "Cannot update, dev build is disabled")
	failEmulator           = newFailure(resEmulator, "Cannot update, emulator is disabled")
	failDevice             = newFailure(resDevice, "Cannot update, device is disabled")
	failKeyIDMismatch      = newFailure(resKeyIDMismatch, "Device encryption key does not match the bundle encryption key")
	failEncryptionRequired = newFailure(resEncryptionRequired, "This app has an encryption key (the device sent key_id) and refuses unencrypted bundles; upload this version encrypted with `npx @capgo/cli bundle encrypt`")
	failPrivateChannel     = newFailure(resPrivateChannel, "Cannot update via a private channel: the channel is neither public nor allows device self-assignment")
	failNoChannel          = newFailure(resNoChannel, "No default channel or override for this device")
	failNoBundle           = newFailure(resNoBundle, "Cannot get bundle: the channel points at a bundle that does not exist")
	failMissingInfo        = newFailure(resMissingInfo, "Cannot find device_id or app_id")
	failMissingPlatform    = newFailure(resMissingInfo, "platform must be ios, android or electron")
	failMissingBuild       = newFailure(resMissingInfo, "version_build is missing")
	failUnknownBuild       = newFailure(resUnknownVersionBuild, "Version build is unknown, cannot proceed with update")
	failBuildSemver        = newFailure(resSemverError, "Native version (version_build) is not semver and cannot be coerced")
	failBundleSemver       = newFailure(resSemverError, "Bundle version is not semver; the channel policy cannot compare it")
	failMinUpdateSemver    = newFailure(resSemverError, "Bundle min_update_version is not semver; the channel policy cannot compare it")
	failAppNotFound        = newFailure(resAppNotFound, "App not found")

	builtinBody = []byte(`{"version":"builtin"}`)
)

func platformFailure(platform string) *failure {
	switch platform {
	case "ios":
		return failDisabledIOS
	case "android":
		return failDisabledAndroid
	case "electron":
		return failDisabledElectron
	}
	return failMissingPlatform
}

// majorBody is the only blocked answer carrying extra keys: the plugin
// fires its majorAvailable event from "major" and "version".
func majorAnswer(channel, target, old string) Answer {
	b := make([]byte, 0, 160+len(target)+len(old))
	b = append(b, `{"error":"disable_auto_update_to_major","message":"Cannot upgrade major version","kind":"blocked","major":true,"version":`...)
	b = jsonwire.AppendString(b, target)
	b = append(b, `,"old":`...)
	b = jsonwire.AppendString(b, old)
	b = append(b, '}')
	return Answer{Status: http.StatusOK, Body: b, Result: CodeToMajor, Channel: channel, Version: target, res: resToMajor}
}

// successBody renders an update offer. It never contains "error" or "kind".
// The url is written in place (see BundleURL) to save an allocation. The
// manifest is left out when withManifest is false (see sendsManifest).
func successBody(b *release.Bundle, publicURL string, withManifest bool) []byte {
	publicURL = strings.TrimRight(publicURL, "/")
	n := 128 + len(b.Version) + len(b.AppID) + len(publicURL) + len(b.ExternalURL) + len(b.SessionKey) + len(b.Checksum) + len(b.Link) + len(b.Comment)
	for i := range b.Manifest {
		m := &b.Manifest[i]
		n += 72 + len(m.FileName) + len(m.FileHash) + len(m.DownloadURL) + len(publicURL) + len(m.Object)
	}
	for k, v := range b.Data {
		n += 8 + len(k) + len(v)
	}
	out := make([]byte, 0, n)
	out = append(out, `{"version":`...)
	out = jsonwire.AppendString(out, b.Version)
	out = append(out, `,"url":"`...)
	if b.ExternalURL != "" {
		out = jsonwire.AppendChars(out, b.ExternalURL)
	} else {
		out = jsonwire.AppendChars(out, publicURL)
		out = append(out, "/bundles/"...)
		out = jsonwire.AppendChars(out, url.PathEscape(b.AppID))
		out = append(out, '/')
		out = jsonwire.AppendChars(out, url.PathEscape(b.Version))
		out = append(out, ".zip"...)
	}
	out = append(out, '"')
	out = append(out, `,"session_key":`...)
	out = jsonwire.AppendString(out, b.SessionKey)
	out = append(out, `,"checksum":`...)
	out = jsonwire.AppendString(out, b.Checksum)
	if withManifest && len(b.Manifest) > 0 {
		out = append(out, `,"manifest":[`...)
		for i := range b.Manifest {
			m := &b.Manifest[i]
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, `{"file_name":`...)
			out = jsonwire.AppendString(out, m.FileName)
			out = append(out, `,"file_hash":`...)
			out = jsonwire.AppendString(out, m.FileHash)
			out = append(out, `,"download_url":`...)
			if m.DownloadURL == "" && m.Object != "" {
				out = append(out, '"')
				out = jsonwire.AppendChars(out, publicURL)
				out = append(out, "/files/"...)
				out = jsonwire.AppendChars(out, m.Object)
				out = append(out, '"')
			} else {
				out = jsonwire.AppendString(out, m.DownloadURL)
			}
			out = append(out, '}')
		}
		out = append(out, ']')
	}
	if b.Link != "" {
		out = append(out, `,"link":`...)
		out = jsonwire.AppendString(out, b.Link)
	}
	if b.Comment != "" {
		out = append(out, `,"comment":`...)
		out = jsonwire.AppendString(out, b.Comment)
	}
	if b.Breaking {
		out = append(out, `,"breaking":true`...)
	}
	if len(b.Data) > 0 {
		out = append(out, `,"data":`...)
		out, _ = jsonwire.AppendStringMap(out, b.Data, make([]string, 0, len(b.Data)))
	}
	return append(out, '}')
}

// sendsManifest reports whether an offer carries the bundle's manifest: a
// bundle whose zip Capstan stores keeps the manifest for plugins that take
// one (TakesManifest) and sends older ones the zip; a bundle without a
// stored zip always sends it, as it has nothing else.
func sendsManifest(b *release.Bundle, pluginVersion string) bool {
	if len(b.Manifest) == 0 {
		return false
	}
	return b.Object == "" || TakesManifest(pluginVersion)
}

// itoa avoids fmt on small paths.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }
