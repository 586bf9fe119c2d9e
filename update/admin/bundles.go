package admin

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/capstan-io/capstan/audit"
	"github.com/capstan-io/capstan/update/bundlezip"
	"github.com/capstan-io/capstan/update/delta"
	"github.com/capstan-io/capstan/update/release"
)

// maxMetadataBytes bounds the metadata part; manifests of large delta
// bundles list thousands of files.
const maxMetadataBytes = 16 << 20

func (a *API) listBundles(w http.ResponseWriter, r *http.Request) error {
	snap, app, err := a.appOf(r)
	if err != nil {
		return err
	}
	bs := snap.Bundles(app.ID)
	sortBundles(bs)
	out := make([]release.Bundle, len(bs))
	for i, b := range bs {
		out[i] = *b
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) getBundle(w http.ResponseWriter, r *http.Request) error {
	snap, app, err := a.appOf(r)
	if err != nil {
		return err
	}
	v := chi.URLParam(r, "version")
	b, ok := snap.Bundle(app.ID, v)
	if !ok {
		return bundleNotFound(app.ID, v)
	}
	writeJSON(w, http.StatusOK, b)
	return nil
}

// deleteBundle refuses while a channel points at the bundle (as its
// bundle or rollout bundle): devices would get no_bundle.
func (a *API) deleteBundle(w http.ResponseWriter, r *http.Request) error {
	_, app, err := a.appOf(r)
	if err != nil {
		return err
	}
	v := chi.URLParam(r, "version")
	// The store checks the channels and deletes in one conditional write.
	if err := a.store.DeleteBundle(r.Context(), app.ID, v); err != nil {
		if ce := storeConflict(err); ce != nil {
			return ce
		}
		switch {
		case errors.Is(err, errStoreInUse):
			return conflict("bundle_in_use", fmt.Sprintf("bundle %q is in use: %v", v, err))
		case errors.Is(err, errStoreNotFound):
			return bundleNotFound(app.ID, v)
		}
		return fmt.Errorf("delete bundle: %w", err)
	}
	a.record(r, audit.Entry{App: app.ID, Bundle: v, Change: audit.ChangeBundleDelete, Detail: "bundle " + v + " deleted"})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// upload is what uploadBundle gathered from the request body.
type upload struct {
	meta     *BundleMetadata
	file     *os.File // nil when no file part came
	size     int64
	checksum string // SHA-256 hex of the file
	// objects are the `object` parts (per-file objects of a manifest the
	// uploader built, e.g. encrypted), spooled one after the other.
	objects  []release.FileSource
	objSpool *os.File
	objBytes int64
}

func (u *upload) close() {
	for _, f := range []*os.File{u.file, u.objSpool} {
		if f != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}
}

// uploadBundle accepts multipart/form-data with a `metadata` JSON part and
// a `file` part (the zip), or a bare JSON metadata body for bundles served
// from external_url. The zip is spooled to a temp file, checked, then
// handed to the store.
func (a *API) uploadBundle(w http.ResponseWriter, r *http.Request) error {
	_, app, err := a.appOf(r)
	if err != nil {
		return err
	}
	limit := a.maxUpload + maxMetadataBytes + 1<<20 // room for part headers
	if r.ContentLength > limit {
		return a.tooLarge()
	}
	u := &upload{}
	defer u.close()
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "multipart/form-data":
		if err := a.readMultipart(http.MaxBytesReader(w, r.Body, limit), params["boundary"], app.ID, u); err != nil {
			return err
		}
	case "application/json":
		u.meta = &BundleMetadata{}
		if err := decodeJSONFrom(http.MaxBytesReader(w, r.Body, maxMetadataBytes), u.meta, false); err != nil {
			return err
		}
	default:
		return newError(http.StatusUnsupportedMediaType, "unsupported_media_type", "upload a bundle as multipart/form-data (parts `metadata` and `file`), or as application/json metadata with external_url")
	}
	if u.meta == nil {
		return badRequest("missing_metadata", "the upload needs a `metadata` part (JSON with at least version)")
	}
	m := u.meta
	if err := checkMetadata(m, u.file != nil); err != nil {
		return err
	}
	if _, ok := a.store.Snapshot().Bundle(app.ID, m.Version); ok {
		return a.bundleExists(app.ID, m.Version)
	}
	b := release.Bundle{
		AppID: app.ID, Version: m.Version,
		Checksum: m.Checksum, SessionKey: m.SessionKey, KeyID: m.KeyID,
		ExternalURL: m.ExternalURL, Manifest: m.Manifest,
		MinUpdateVersion: m.MinUpdateVersion, Link: m.Link, Comment: m.Comment,
		Breaking: m.Breaking, Data: m.Data, CreatedAt: a.now(),
	}
	if err := a.checkBundleSize(b); err != nil {
		return err
	}
	files, err := objectsOf(b.Manifest, u.objects)
	if err != nil {
		return err
	}
	var zipBody io.Reader
	if u.file != nil {
		info, err := a.checkZip(u, m)
		if err != nil {
			return err
		}
		if m.SessionKey == "" {
			b.Checksum = u.checksum
			if len(m.Manifest) == 0 && !m.NoDelta {
				// Devices whose plugin takes manifests download only the
				// files they lack; older ones still get the zip.
				d, err := delta.FromZip(u.file, u.size, info.Root, a.tempDir)
				if err != nil {
					return fmt.Errorf("build manifest: %w", err)
				}
				defer d.Close()
				withDelta := b
				withDelta.Manifest = d.Manifest
				// A manifest too large for one record (thousands of files
				// on a NATS with a small max_payload) must not refuse a
				// zip that fits: such a bundle is served as its zip.
				if err := a.checkBundleSize(withDelta); err != nil {
					a.log.Warn("bundle uploaded without delta: its manifest does not fit in one record", "app", app.ID, "version", b.Version, "files", len(d.Manifest), "err", err)
				} else {
					b.Manifest, files = d.Manifest, d.Files
				}
			}
		}
		if _, err := u.file.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("rewind upload: %w", err)
		}
		zipBody = u.file
	}
	if err := a.store.CreateBundleFiles(r.Context(), b, zipBody, files); err != nil {
		if ce := storeConflict(err); ce != nil {
			return ce
		}
		switch {
		case errors.Is(err, errStoreExists):
			return a.bundleExists(app.ID, m.Version)
		case errors.Is(err, errStoreNotFound):
			return appNotFound(app.ID)
		}
		return fmt.Errorf("create bundle: %w", err)
	}
	if got, ok := a.store.Snapshot().Bundle(app.ID, m.Version); ok {
		b = *got
	}
	a.log.Info("bundle uploaded", "app", app.ID, "version", b.Version, "size", b.Size, "encrypted", b.SessionKey != "", "external", b.ExternalURL != "")
	a.record(r, audit.Entry{App: app.ID, Bundle: b.Version, Change: audit.ChangeBundleUpload, Detail: bundleDetail(b)})
	a.retain(r, app)
	writeJSON(w, http.StatusCreated, b)
	return nil
}

// bundleDetail summarises an uploaded bundle for the audit log.
func bundleDetail(b release.Bundle) string {
	d := "bundle " + b.Version + " uploaded"
	switch {
	case b.ExternalURL != "":
		d += ", external URL"
	case b.Size > 0:
		d += fmt.Sprintf(", %d bytes", b.Size)
	}
	if b.SessionKey != "" {
		d += ", encrypted"
	}
	if len(b.Manifest) > 0 {
		d += fmt.Sprintf(", %d manifest files", len(b.Manifest))
	}
	return d
}

// checkZip validates a plaintext zip and its checksum; an encrypted one
// cannot be read, so it is only checked not to be a plain zip.
func (a *API) checkZip(u *upload, m *BundleMetadata) (bundlezip.Info, error) {
	if u.size == 0 {
		return bundlezip.Info{}, badRequest("empty_file", "the uploaded file is empty")
	}
	if m.SessionKey != "" {
		if _, err := zip.NewReader(u.file, u.size); err == nil {
			return bundlezip.Info{}, badRequest("not_encrypted", "session_key is set but the file is a plain zip; upload the encrypted zip from `npx @capgo/cli bundle encrypt`")
		}
		return bundlezip.Info{}, nil
	}
	info, err := bundlezip.Validate(u.file, u.size, a.limits)
	if err != nil {
		var ze *bundlezip.Error
		if errors.As(err, &ze) {
			status := http.StatusBadRequest
			if ze.Code == bundlezip.CodeTooLarge || ze.Code == bundlezip.CodeTooManyFiles {
				status = http.StatusRequestEntityTooLarge
			}
			return info, newError(status, ze.Code, ze.Error())
		}
		return info, fmt.Errorf("validate zip: %w", err)
	}
	if m.Checksum != "" && m.Checksum != u.checksum {
		return info, badRequest("checksum_mismatch", fmt.Sprintf("checksum %s does not match the uploaded zip's SHA-256 %s", m.Checksum, u.checksum))
	}
	return info, nil
}

func (a *API) bundleExists(app, version string) error {
	return conflict("bundle_exists", fmt.Sprintf("app %q already has bundle %q; versions are immutable, upload a new version", app, version))
}

func (a *API) tooLarge() error {
	return newError(http.StatusRequestEntityTooLarge, "upload_too_large", fmt.Sprintf("bundle uploads are limited to %d bytes", a.maxUpload))
}

func (a *API) readMultipart(body io.Reader, boundary, appID string, u *upload) error {
	if boundary == "" {
		return badRequest("invalid_multipart", "multipart/form-data without a boundary")
	}
	mr := multipart.NewReader(body, boundary)
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return a.bodyError(err, "read multipart body")
		}
		switch name := part.FormName(); name {
		case "metadata":
			if u.meta != nil {
				return badRequest("invalid_multipart", "more than one `metadata` part")
			}
			u.meta = &BundleMetadata{}
			lr := &limitedReader{r: part, n: maxMetadataBytes, err: newError(http.StatusRequestEntityTooLarge, "metadata_too_large", fmt.Sprintf("metadata larger than %d bytes", maxMetadataBytes))}
			if err := decodeJSONFrom(lr, u.meta, false); err != nil {
				var ae *apiError
				if errors.As(err, &ae) && ae.code == "invalid_json_body" {
					if lr.hit {
						return lr.err
					}
					return badRequest("invalid_metadata", strings.Replace(ae.message, "invalid JSON body", "invalid metadata JSON", 1))
				}
				return err
			}
			// Refuse a taken version before receiving a large file.
			if _, ok := a.store.Snapshot().Bundle(appID, u.meta.Version); ok {
				return a.bundleExists(appID, u.meta.Version)
			}
		case "file":
			if u.file != nil {
				return badRequest("invalid_multipart", "more than one `file` part")
			}
			if err := a.spool(part, u); err != nil {
				return err
			}
		case "object":
			if len(u.objects) >= a.limits.MaxFiles {
				return newError(http.StatusRequestEntityTooLarge, "too_many_files", fmt.Sprintf("more than %d `object` parts", a.limits.MaxFiles))
			}
			if err := a.spoolObject(part, u); err != nil {
				return err
			}
		default:
			return badRequest("invalid_multipart", fmt.Sprintf("unexpected part %q; expected `metadata`, `file` and `object`", name))
		}
		part.Close()
	}
}

// spool copies the file part to a temp file, hashing it on the way.
func (a *API) spool(part io.Reader, u *upload) error {
	f, err := os.CreateTemp(a.tempDir, "capstan-upload-*.zip")
	if err != nil {
		return fmt.Errorf("spool upload: %w", err)
	}
	u.file = f
	h := sha256.New()
	lr := &limitedReader{r: part, n: a.maxUpload, err: a.tooLarge()}
	n, err := io.Copy(io.MultiWriter(f, h), lr)
	if err != nil {
		if lr.hit {
			return lr.err
		}
		var ae *apiError
		if errors.As(err, &ae) {
			return ae
		}
		var pe *os.PathError
		if errors.As(err, &pe) {
			return fmt.Errorf("spool upload: %w", err)
		}
		return a.bodyError(err, "read file part")
	}
	u.size = n
	u.checksum = hex.EncodeToString(h.Sum(nil))
	return nil
}

// spoolObject appends one `object` part to the object spool, hashing it.
func (a *API) spoolObject(part io.Reader, u *upload) error {
	if u.objSpool == nil {
		f, err := os.CreateTemp(a.tempDir, "capstan-objects-*.tmp")
		if err != nil {
			return fmt.Errorf("spool objects: %w", err)
		}
		u.objSpool = f
	}
	h := sha256.New()
	lr := &limitedReader{r: part, n: a.maxUpload, err: a.tooLarge()}
	n, err := io.Copy(io.MultiWriter(u.objSpool, h), lr)
	if err != nil {
		if lr.hit {
			return lr.err
		}
		var pe *os.PathError
		if errors.As(err, &pe) {
			return fmt.Errorf("spool objects: %w", err)
		}
		return a.bodyError(err, "read object part")
	}
	spool, start := u.objSpool, u.objBytes
	u.objBytes += n
	u.objects = append(u.objects, release.FileSource{
		SHA256: hex.EncodeToString(h.Sum(nil)), Size: n,
		Open: func() (io.Reader, error) { return io.NewSectionReader(spool, start, n), nil },
	})
	return nil
}

// objectsOf matches the uploaded objects to the manifest entries naming
// them by `object` (the SHA-256 hex of the part's bytes): every such entry
// needs its part and every part an entry. Entries without a size get the
// object's.
func objectsOf(m []release.ManifestEntry, objects []release.FileSource) ([]release.FileSource, error) {
	byHash := make(map[string]release.FileSource, len(objects))
	for _, o := range objects {
		byHash[o.SHA256] = o
	}
	used := map[string]bool{}
	for i := range m {
		e := &m[i]
		if e.Object == "" {
			continue
		}
		o, ok := byHash[strings.ToLower(e.Object)]
		if !ok {
			return nil, badRequest("missing_object", fmt.Sprintf("manifest entry %q names object %s, but no `object` part has that SHA-256", e.FileName, e.Object))
		}
		e.Object = o.SHA256
		if e.Size == 0 {
			e.Size = o.Size
		}
		used[o.SHA256] = true
	}
	var out []release.FileSource
	seen := map[string]bool{}
	for _, o := range objects {
		if !used[o.SHA256] {
			return nil, badRequest("unused_object", fmt.Sprintf("`object` part with SHA-256 %s is named by no manifest entry", o.SHA256))
		}
		if !seen[o.SHA256] { // a part sent twice is stored once
			seen[o.SHA256] = true
			out = append(out, o)
		}
	}
	return out, nil
}

// bodyError classifies a failure reading the request body.
func (a *API) bodyError(err error, what string) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return a.tooLarge()
	}
	return badRequest("invalid_multipart", fmt.Sprintf("%s: %v", what, err))
}

// limitedReader fails with err once more than n bytes are read.
type limitedReader struct {
	r   io.Reader
	n   int64
	err error
	hit bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		l.hit = true
		return 0, l.err
	}
	if int64(len(p)) > l.n+1 {
		p = p[:l.n+1]
	}
	k, err := l.r.Read(p)
	l.n -= int64(k)
	if l.n < 0 {
		l.hit = true
		return k, l.err
	}
	return k, err
}
