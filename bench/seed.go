package bench

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"sync"
)

// Admin seeds a Capstan through its admin API (/api/v1, bearer token).
type Admin struct {
	BaseURL string
	Token   string
	Client  *http.Client
}

func (a *Admin) do(ctx context.Context, method, path, contentType string, body []byte, okCodes ...int) error {
	req, err := http.NewRequestWithContext(ctx, method, a.BaseURL+"/api/v1"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.Token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := a.Client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	for _, c := range okCodes {
		if resp.StatusCode == c {
			return nil
		}
	}
	return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
}

func (a *Admin) json(ctx context.Context, method, path string, v any, okCodes ...int) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return a.do(ctx, method, path, "application/json", b, okCodes...)
}

// CreateApp creates an app; an existing one is fine.
func (a *Admin) CreateApp(ctx context.Context, id string) error {
	return a.json(ctx, http.MethodPost, "/apps", map[string]string{"id": id, "name": id}, http.StatusConflict)
}

// UploadBundle uploads zip as version of app; an existing version is fine.
func (a *Admin) UploadBundle(ctx context.Context, app, version string, zipData []byte) error {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="metadata"`)
	h.Set("Content-Type", "application/json")
	pw, _ := mw.CreatePart(h)
	// no_delta: the answers stay the zip offers the bare baseline renders
	// too; delta figures come from update/admin's benchmarks.
	meta, _ := json.Marshal(map[string]any{"version": version, "comment": "benchmark bundle", "no_delta": true})
	pw.Write(meta)
	fw, _ := mw.CreateFormFile("file", version+".zip")
	fw.Write(zipData)
	mw.Close()
	return a.do(ctx, http.MethodPost, "/apps/"+url.PathEscape(app)+"/bundles", mw.FormDataContentType(), buf.Bytes(), http.StatusConflict)
}

// PutChannel creates or updates a channel.
func (a *Admin) PutChannel(ctx context.Context, app string, c ChannelPlan) error {
	patch := map[string]any{
		"bundle": c.Bundle, "public": c.Public, "allow_self_set": c.AllowSelfSet,
	}
	if c.RolloutBundle != "" {
		patch["rollout_bundle"] = c.RolloutBundle
		patch["rollout_percent"] = c.RolloutPercent
	}
	return a.json(ctx, http.MethodPut, "/apps/"+url.PathEscape(app)+"/channels/"+url.PathEscape(c.Name), patch)
}

// PinDevice sets an operator override for a device.
func (a *Admin) PinDevice(ctx context.Context, app, device, channel string) error {
	return a.json(ctx, http.MethodPut, "/apps/"+url.PathEscape(app)+"/devices/"+url.PathEscape(device)+"/channel", map[string]string{"channel": channel})
}

// TinyBundle is a valid bundle zip: index.html at the root plus a script.
func TinyBundle(version string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("index.html")
	fmt.Fprintf(w, "<!doctype html><html><head><script src=\"app.js\"></script></head><body>bundle %s</body></html>\n", version)
	w, _ = zw.Create("app.js")
	fmt.Fprintf(w, "console.log(%q);\n", version)
	zw.Close()
	return buf.Bytes()
}

// SeedFleet creates the fleet's apps, bundles, channels and overrides.
func (a *Admin) SeedFleet(ctx context.Context, f *Fleet) error {
	for _, app := range f.Apps {
		if err := a.CreateApp(ctx, app.ID); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		for _, v := range app.Bundles {
			if err := a.UploadBundle(ctx, app.ID, v, TinyBundle(v)); err != nil {
				return fmt.Errorf("seed: %w", err)
			}
		}
		for _, c := range app.Channels {
			if err := a.PutChannel(ctx, app.ID, c); err != nil {
				return fmt.Errorf("seed: %w", err)
			}
		}
	}
	pins := f.Overrides()
	work := make(chan Device)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range work {
				if err := a.PinDevice(ctx, d.AppID, d.ID, d.Override); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for _, d := range pins {
		work <- d
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return fmt.Errorf("seed overrides: %w", err)
	default:
	}
	return nil
}
