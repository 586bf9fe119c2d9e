package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"

	"github.com/capstan-io/capstan/schema"
	"github.com/capstan-io/capstan/update/release"
)

// APIError is an error answer of the admin API.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%s (HTTP %d)", e.Code, e.Status)
	}
	return fmt.Sprintf("%s (%s, HTTP %d)", e.Message, e.Code, e.Status)
}

// Client talks to the admin API of a Capstan server.
type Client struct {
	// BaseURL is the server root (http://127.0.0.1:8080); /api/v1 is added.
	BaseURL string
	Token   string
	HTTP    *http.Client
}

// NewClient returns a client for the server at baseURL using token.
func NewClient(baseURL, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token, HTTP: http.DefaultClient}
}

func (c *Client) url(parts ...string) string {
	var b strings.Builder
	b.WriteString(strings.TrimRight(c.BaseURL, "/"))
	b.WriteString("/api/v1")
	for _, p := range parts {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(p))
	}
	return b.String()
}

// do sends a request and decodes a JSON answer into out (when non-nil).
func (c *Client) do(ctx context.Context, method, u, contentType string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		// err already names the method and URL.
		return fmt.Errorf("admin api: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, u, err)
	}
	if resp.StatusCode >= 300 {
		var eb ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error != "" {
			return &APIError{Status: resp.StatusCode, Code: eb.Error, Message: eb.Message}
		}
		msg := strings.TrimSpace(string(data))
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		return &APIError{Status: resp.StatusCode, Code: strings.ToLower(strings.ReplaceAll(http.StatusText(resp.StatusCode), " ", "_")), Message: msg}
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, u, err)
	}
	return nil
}

func (c *Client) doJSON(ctx context.Context, method, u string, in, out any) error {
	var body io.Reader
	ct := ""
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ct = bytes.NewReader(data), "application/json"
	}
	return c.do(ctx, method, u, ct, body, out)
}

// CreateApp registers an app.
func (c *Client) CreateApp(ctx context.Context, id, name string) (release.App, error) {
	var out release.App
	err := c.doJSON(ctx, http.MethodPost, c.url("apps"), CreateAppRequest{ID: id, Name: name}, &out)
	return out, err
}

// ListApps lists every app.
func (c *Client) ListApps(ctx context.Context) ([]release.App, error) {
	var out []release.App
	err := c.doJSON(ctx, http.MethodGet, c.url("apps"), nil, &out)
	return out, err
}

// GetApp returns one app.
func (c *Client) GetApp(ctx context.Context, id string) (release.App, error) {
	var out release.App
	err := c.doJSON(ctx, http.MethodGet, c.url("apps", id), nil, &out)
	return out, err
}

// DeleteApp removes an app with its channels, bundles and overrides.
func (c *Client) DeleteApp(ctx context.Context, id string) error {
	return c.doJSON(ctx, http.MethodDelete, c.url("apps", id), nil, nil)
}

// UploadBundle uploads a bundle: meta plus the zip read from zip, or
// metadata only when zip is nil (external_url or manifest-only bundles).
// The zip is streamed, never held in memory.
func (c *Client) UploadBundle(ctx context.Context, app string, meta BundleMetadata, zip io.Reader) (release.Bundle, error) {
	var out release.Bundle
	u := c.url("apps", app, "bundles")
	if zip == nil {
		err := c.doJSON(ctx, http.MethodPost, u, meta, &out)
		return out, err
	}
	metaJSON, err := json.Marshal(meta)
	if err != nil {
		return out, err
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		pw.CloseWithError(writeUpload(mw, metaJSON, zip))
	}()
	err = c.do(ctx, http.MethodPost, u, mw.FormDataContentType(), pr, &out)
	pr.Close() // unblocks the writer when the server answered early
	return out, err
}

// UploadBundleObjects uploads a bundle whose manifest entries name, by
// `object` (the SHA-256 hex of the bytes), files Capstan is to store and
// serve: each of objects is sent as an `object` part. zip may be nil.
func (c *Client) UploadBundleObjects(ctx context.Context, app string, meta BundleMetadata, zip io.Reader, objects []io.Reader) (release.Bundle, error) {
	var out release.Bundle
	metaJSON, err := json.Marshal(meta)
	if err != nil {
		return out, err
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		pw.CloseWithError(writeUploadParts(mw, metaJSON, zip, objects))
	}()
	err = c.do(ctx, http.MethodPost, c.url("apps", app, "bundles"), mw.FormDataContentType(), pr, &out)
	pr.Close()
	return out, err
}

func writeUpload(mw *multipart.Writer, metaJSON []byte, zip io.Reader) error {
	return writeUploadParts(mw, metaJSON, zip, nil)
}

func writeUploadParts(mw *multipart.Writer, metaJSON []byte, zip io.Reader, objects []io.Reader) error {
	if err := writePart(mw, `form-data; name="metadata"`, "application/json", bytes.NewReader(metaJSON)); err != nil {
		return err
	}
	if zip != nil {
		if err := writePart(mw, `form-data; name="file"; filename="bundle.zip"`, "application/zip", zip); err != nil {
			return err
		}
	}
	for _, o := range objects {
		if err := writePart(mw, `form-data; name="object"; filename="object"`, "application/octet-stream", o); err != nil {
			return err
		}
	}
	return mw.Close()
}

// writePart adds one part with this Content-Disposition and type.
func writePart(mw *multipart.Writer, disposition, ctype string, body io.Reader) error {
	w, err := mw.CreatePart(map[string][]string{"Content-Disposition": {disposition}, "Content-Type": {ctype}})
	if err != nil {
		return err
	}
	_, err = io.Copy(w, body)
	return err
}

// ListBundles lists an app's bundles, newest version first.
func (c *Client) ListBundles(ctx context.Context, app string) ([]release.Bundle, error) {
	var out []release.Bundle
	err := c.doJSON(ctx, http.MethodGet, c.url("apps", app, "bundles"), nil, &out)
	return out, err
}

// GetBundle returns one bundle's metadata.
func (c *Client) GetBundle(ctx context.Context, app, version string) (release.Bundle, error) {
	var out release.Bundle
	err := c.doJSON(ctx, http.MethodGet, c.url("apps", app, "bundles", version), nil, &out)
	return out, err
}

// DeleteBundle removes a bundle no channel points at.
func (c *Client) DeleteBundle(ctx context.Context, app, version string) error {
	return c.doJSON(ctx, http.MethodDelete, c.url("apps", app, "bundles", version), nil, nil)
}

// CleanupBundles deletes an app's unused bundles past the keep newest.
func (c *Client) CleanupBundles(ctx context.Context, app string, req CleanupRequest) (CleanupResult, error) {
	var out CleanupResult
	err := c.doJSON(ctx, http.MethodPost, c.url("apps", app, "bundles", "cleanup"), req, &out)
	return out, err
}

// SetChannel creates or updates a channel with the fields set in p.
func (c *Client) SetChannel(ctx context.Context, app, name string, p ChannelPatch) (release.Channel, error) {
	var out release.Channel
	err := c.doJSON(ctx, http.MethodPut, c.url("apps", app, "channels", name), p, &out)
	return out, err
}

// Rollout returns the state of a channel's rollout.
func (c *Client) Rollout(ctx context.Context, app, channel string) (RolloutStatus, error) {
	var out RolloutStatus
	err := c.doJSON(ctx, http.MethodGet, c.url("apps", app, "channels", channel, "rollout"), nil, &out)
	return out, err
}

// ControlRollout pauses, resumes, promotes or aborts a channel's rollout.
func (c *Client) ControlRollout(ctx context.Context, app, channel, action, reason string) (RolloutStatus, error) {
	var out RolloutStatus
	err := c.doJSON(ctx, http.MethodPost, c.url("apps", app, "channels", channel, "rollout", action), RolloutAction{Reason: reason}, &out)
	return out, err
}

// GetChannel returns one channel.
func (c *Client) GetChannel(ctx context.Context, app, name string) (release.Channel, error) {
	var out release.Channel
	err := c.doJSON(ctx, http.MethodGet, c.url("apps", app, "channels", name), nil, &out)
	return out, err
}

// ListChannels lists an app's channels by name.
func (c *Client) ListChannels(ctx context.Context, app string) ([]release.Channel, error) {
	var out []release.Channel
	err := c.doJSON(ctx, http.MethodGet, c.url("apps", app, "channels"), nil, &out)
	return out, err
}

// DeleteChannel removes a channel no device is pinned to.
func (c *Client) DeleteChannel(ctx context.Context, app, name string) error {
	return c.doJSON(ctx, http.MethodDelete, c.url("apps", app, "channels", name), nil, nil)
}

// SetDeviceChannel pins a device to a channel.
func (c *Client) SetDeviceChannel(ctx context.Context, app, device, channel string) (release.Override, error) {
	var out release.Override
	err := c.doJSON(ctx, http.MethodPut, c.url("apps", app, "devices", device, "channel"), DeviceChannelRequest{Channel: channel}, &out)
	return out, err
}

// UnsetDeviceChannel unpins a device.
func (c *Client) UnsetDeviceChannel(ctx context.Context, app, device string) error {
	return c.doJSON(ctx, http.MethodDelete, c.url("apps", app, "devices", device, "channel"), nil, nil)
}

// ListDevices lists an app's pinned devices.
func (c *Client) ListDevices(ctx context.Context, app string) ([]release.Override, error) {
	var out []release.Override
	err := c.doJSON(ctx, http.MethodGet, c.url("apps", app, "devices"), nil, &out)
	return out, err
}

// WhoAmI returns the calling token's name, role and apps.
func (c *Client) WhoAmI(ctx context.Context) (WhoAmI, error) {
	var out WhoAmI
	err := c.doJSON(ctx, http.MethodGet, c.url("whoami"), nil, &out)
	return out, err
}

// CreateToken makes a new admin token with a role (RoleViewer,
// RolePublisher or RoleAdmin), limited to apps when given; its plaintext
// is returned only now.
func (c *Client) CreateToken(ctx context.Context, name, role string, apps []string) (CreatedToken, error) {
	var out CreatedToken
	err := c.doJSON(ctx, http.MethodPost, c.url("tokens"), CreateTokenRequest{Name: name, Role: role, Apps: apps}, &out)
	return out, err
}

// ListTokens lists the tokens by name, without their secrets.
func (c *Client) ListTokens(ctx context.Context) ([]TokenInfo, error) {
	var out []TokenInfo
	err := c.doJSON(ctx, http.MethodGet, c.url("tokens"), nil, &out)
	return out, err
}

// RevokeToken deletes the token named name.
func (c *Client) RevokeToken(ctx context.Context, name string) error {
	return c.doJSON(ctx, http.MethodDelete, c.url("tokens", name), nil, nil)
}

// IsCode reports whether err is an APIError with this machine code.
func IsCode(err error, code string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}

// Device returns what the server knows of one device: pin, last reported
// state and newest events.
func (c *Client) Device(ctx context.Context, app, device string) (DeviceInfo, error) {
	var out DeviceInfo
	err := c.doJSON(ctx, http.MethodGet, c.url("apps", app, "devices", device), nil, &out)
	return out, err
}

// Health returns the app's release health per version over p's window.
func (c *Client) Health(ctx context.Context, app string, p FleetParams) (HealthReport, error) {
	var out HealthReport
	err := c.doJSON(ctx, http.MethodGet, c.url("apps", app, "health")+p.query(false), nil, &out)
	return out, err
}

// Timeline returns the app's release health per version in buckets of
// p.Step.
func (c *Client) Timeline(ctx context.Context, app string, p FleetParams) (schema.Timeline, error) {
	var out schema.Timeline
	err := c.doJSON(ctx, http.MethodGet, c.url("apps", app, "health", "timeline")+p.query(true), nil, &out)
	return out, err
}

// query renders p as a query string ("" when every field is zero).
func (p FleetParams) query(withStep bool) string {
	v := url.Values{}
	if p.Since != 0 {
		v.Set("since", p.Since.String())
	}
	if withStep && p.Step != 0 {
		v.Set("step", p.Step.String())
	}
	if p.Channel != "" {
		v.Set("channel", p.Channel)
	}
	if p.IncludeDev {
		v.Set("include_dev", "true")
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}
