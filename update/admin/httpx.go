package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
)

// apiError is an answer other than success, with its HTTP status.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func newError(status int, code, msg string) *apiError {
	return &apiError{status: status, code: code, message: msg}
}

func badRequest(code, msg string) *apiError { return newError(http.StatusBadRequest, code, msg) }
func notFound(code, msg string) *apiError   { return newError(http.StatusNotFound, code, msg) }
func conflict(code, msg string) *apiError   { return newError(http.StatusConflict, code, msg) }

// The 404s of the API's objects, worded once.
func appNotFound(app string) *apiError {
	return notFound("app_not_found", fmt.Sprintf("no app %q", app))
}

func bundleNotFound(app, version string) *apiError {
	return notFound("bundle_not_found", fmt.Sprintf("app %q has no bundle %q", app, version))
}

func channelNotFound(app, name string) *apiError {
	return notFound("channel_not_found", fmt.Sprintf("app %q has no channel %q", app, name))
}

func overrideNotFound(app, device string) *apiError {
	return notFound("override_not_found", fmt.Sprintf("device %q of app %q is not pinned to a channel", device, app))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, ErrorBody{Error: e.code, Message: e.message})
}

// maxJSONBody bounds ordinary JSON request bodies.
const maxJSONBody = 1 << 20

// isJSON accepts application/json (any parameters) or no content type.
func isJSON(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// decodeJSON reads exactly one JSON value from r's body into v, rejecting
// unknown fields (they are almost always typos of a real field).
// allowEmpty lets an empty body stand for {}.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any, allowEmpty bool) error {
	if !isJSON(r) {
		return newError(http.StatusUnsupportedMediaType, "unsupported_media_type", "request body must be application/json")
	}
	return decodeJSONFrom(http.MaxBytesReader(w, r.Body, maxJSONBody), v, allowEmpty)
}

func decodeJSONFrom(body io.Reader, v any, allowEmpty bool) error {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return newError(http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body larger than %d bytes", mbe.Limit))
		case errors.Is(err, io.EOF):
			if allowEmpty {
				return nil
			}
			return badRequest("invalid_json_body", "request body is empty; a JSON object is required")
		}
		return badRequest("invalid_json_body", fmt.Sprintf("invalid JSON body: %v", err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return newError(http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body larger than %d bytes", mbe.Limit))
		}
		return badRequest("invalid_json_body", "request body must hold a single JSON value")
	}
	return nil
}
