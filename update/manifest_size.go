package update

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/capstan-io/capstan/update/release"
)

// SizeEntry is one manifest entry of a manifest_size call, answered with
// its size or the reason it is unknown.
type SizeEntry struct {
	FileName    *string `json:"file_name"`
	FileHash    *string `json:"file_hash"`
	DownloadURL *string `json:"download_url"`
	Size        *int64  `json:"size,omitempty"`
	Error       string  `json:"error,omitempty"`
}

// SizeAnswer is the body of a manifest_size answer (the plugin's
// GetBundleDownloadSizeResult).
type SizeAnswer struct {
	TotalSize    int64       `json:"totalSize"`
	KnownFiles   int         `json:"knownFiles"`
	UnknownFiles int         `json:"unknownFiles"`
	Files        []SizeEntry `json:"files"`
}

// Reasons a manifest entry's size is unknown.
const (
	SizeUnknownBundle = "unknown_bundle"
	SizeUnknownFile   = "unknown_file"
	SizeNotRecorded   = "size_unknown"
)

// ManifestSizes answers a manifest_size call: the sizes recorded at upload
// for the entries of one bundle's manifest, matched by file name and hash.
// Entries it cannot size say why, so a device never mistakes "unknown" for
// "nothing to download".
func ManifestSizes(snap *release.Snapshot, appID, version string, entries []SizeEntry) SizeAnswer {
	ans := SizeAnswer{Files: make([]SizeEntry, 0, len(entries))}
	var known map[string]release.ManifestEntry
	b, ok := (*release.Bundle)(nil), false
	if snap != nil {
		b, ok = snap.Bundle(appID, version)
	}
	if ok {
		known = make(map[string]release.ManifestEntry, len(b.Manifest))
		for _, m := range b.Manifest {
			known[m.FileName] = m
		}
	}
	for _, e := range entries {
		out := SizeEntry{FileName: e.FileName, FileHash: e.FileHash, DownloadURL: e.DownloadURL}
		m, found := release.ManifestEntry{}, false
		if e.FileName != nil {
			m, found = known[*e.FileName]
		}
		switch {
		case !ok:
			out.Error = SizeUnknownBundle
		case !found || e.FileHash == nil || !strings.EqualFold(*e.FileHash, m.FileHash):
			out.Error = SizeUnknownFile
		case m.Size <= 0:
			out.Error = SizeNotRecorded
		default:
			size := m.Size
			out.Size = &size
			ans.TotalSize += size
			ans.KnownFiles++
		}
		if out.Error != "" {
			ans.UnknownFiles++
		}
		ans.Files = append(ans.Files, out)
	}
	return ans
}

// sizeRequest is the body the plugin posts: its info object, the bundle
// version and the manifest entries it still has to download.
type sizeRequest struct {
	AppID    string      `json:"app_id"`
	Version  string      `json:"version"`
	Manifest []SizeEntry `json:"manifest"`
}

// ServeManifestSize answers POST {updateUrl}/manifest_size (plugin 8.47+,
// getBundleDownloadSize). Any non-2xx makes the plugin mark every file
// unknown, so only a malformed body gets one.
func (h *Handler) ServeManifestSize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeMethodNotAllowed(w, r, "POST")
		return
	}
	body, rerr := h.readBody(r)
	if rerr != nil {
		writeJSON(w, rerr.Status, rerr.Body())
		return
	}
	var req sizeRequest
	err := json.Unmarshal(body.b, &req)
	body.release()
	if err != nil {
		rerr := badRequest(resInvalidJSON, "body must be the device info object with version and manifest: "+err.Error())
		writeJSON(w, rerr.Status, rerr.Body())
		return
	}
	if req.AppID == "" {
		writeJSON(w, errMissingAppID.Status, errMissingAppID.Body())
		return
	}
	out, _ := json.Marshal(ManifestSizes(h.snapshot(), req.AppID, req.Version, req.Manifest))
	writeJSON(w, http.StatusOK, out)
}
