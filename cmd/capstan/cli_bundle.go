package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/capstan-io/capstan/update"
	"github.com/capstan-io/capstan/update/admin"
	"github.com/capstan-io/capstan/update/bundlezip"
	"github.com/capstan-io/capstan/update/release"
)

var bundleVerbs = map[string]verb{
	"upload":  {"--app APP --version V [--channel NAME] [flags] <zip-or-directory>", "upload a bundle (a zip, or a directory zipped for you), optionally pointing a channel at it", bundleUpload},
	"list":    {"--app APP", "list an app's bundles, newest first", bundleList},
	"delete":  {"--app APP <version>", "delete a bundle no channel points at", bundleDelete},
	"cleanup": {"--app APP --keep N [--dry-run]", "delete unused bundles past the N newest (never one a channel or rollout uses)", bundleCleanup},
}

func runBundle(ctx context.Context, args []string) error {
	return dispatch(ctx, "bundle", bundleVerbs, []string{"upload", "list", "delete", "cleanup"}, args)
}

func bundleUpload(ctx context.Context, c *common, args []string) error {
	app := appFlag(c.fs)
	var m admin.BundleMetadata
	fs := c.fs
	fs.StringVar(&m.Version, "version", "", "bundle version, semver X.Y.Z[-pre][+build] (required)")
	fs.StringVar(&m.SessionKey, "session-key", "", "ivSessionKey printed by `npx @capgo/cli bundle encrypt` (the file is then the encrypted zip)")
	fs.StringVar(&m.Checksum, "checksum", "", "checksum: the signed one from `bundle encrypt`, or the SHA-256 hex of the zip (checked)")
	fs.StringVar(&m.KeyID, "key-id", "", "key id of the encryption key")
	publicKey := fs.String("public-key", "", "public key file of the app (.capgo_key_v2.pub): sets --key-id as the plugin derives it")
	channel := fs.String("channel", "", "after the upload, point this channel at the bundle (created with the defaults if new)")
	fs.BoolVar(&m.NoDelta, "no-delta", false, "store the zip only: no per-file manifest, every device downloads the whole zip")
	manifest := fs.String("manifest", "", "JSON file with manifest entries [{file_name, file_hash, download_url}] for per-file (delta) updates")
	fs.StringVar(&m.MinUpdateVersion, "min-update-version", "", "lowest native version allowed to take this bundle (version_number policy)")
	fs.StringVar(&m.Comment, "comment", "", "comment shown to the app")
	fs.StringVar(&m.Link, "link", "", "link shown to the app (release notes)")
	fs.BoolVar(&m.Breaking, "breaking", false, "mark the bundle as breaking")
	fs.StringVar(&m.ExternalURL, "external-url", "", "serve the zip from this URL instead of uploading it (needs --checksum)")
	fs.Func("data", "key=value passed to the app (repeatable)", func(s string) error {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return errors.New("want key=value")
		}
		if m.Data == nil {
			m.Data = map[string]string{}
		}
		m.Data[k] = v
		return nil
	})
	pos, err := c.parse(args, 0, 1)
	if err != nil {
		return err
	}
	if err := requireApp(*app); err != nil {
		return err
	}
	if m.Version == "" {
		return errors.New("--version is required")
	}
	if *manifest != "" {
		if m.Manifest, err = readManifest(*manifest); err != nil {
			return err
		}
	}
	if *publicKey != "" {
		pem, err := os.ReadFile(*publicKey)
		if err != nil {
			return fmt.Errorf("--public-key: %w", err)
		}
		id := update.KeyID(string(pem))
		if id == "" {
			return fmt.Errorf("--public-key %s: the file is empty", *publicKey)
		}
		if m.KeyID != "" && m.KeyID != id {
			return fmt.Errorf("--key-id %s does not match %s's key id %s", m.KeyID, *publicKey, id)
		}
		m.KeyID = id
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	var b release.Bundle
	switch {
	case len(pos) == 0:
		if m.ExternalURL == "" && len(m.Manifest) == 0 {
			c.fs.Usage()
			return errors.New("give a zip file or directory to upload (or --external-url / --manifest)")
		}
		b, err = cl.UploadBundle(ctx, *app, m, nil)
	default:
		var f *os.File
		f, err = openBundle(pos[0], m.SessionKey != "")
		if err != nil {
			return err
		}
		defer f.Close()
		b, err = cl.UploadBundle(ctx, *app, m, f)
	}
	if err != nil {
		return err
	}
	if *channel != "" {
		// The bundle stays uploaded if this fails; say so, so a retry
		// points the channel instead of uploading again.
		if _, err := cl.SetChannel(ctx, *app, *channel, admin.ChannelPatch{Bundle: &b.Version}); err != nil {
			return fmt.Errorf("bundle %s uploaded, but pointing channel %s at it failed (run `capstan channel set --app %s %s --bundle %s`): %w", b.Version, *channel, *app, *channel, b.Version, err)
		}
	}
	if *c.json {
		return printJSON(b)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "app\t%s\n", b.AppID)
	fmt.Fprintf(tw, "version\t%s\n", b.Version)
	fmt.Fprintf(tw, "checksum\t%s\n", b.Checksum)
	if b.ObjectSHA256 != "" {
		fmt.Fprintf(tw, "sha256\t%s\n", b.ObjectSHA256)
		fmt.Fprintf(tw, "size\t%d\n", b.Size)
	}
	if b.SessionKey != "" {
		fmt.Fprintf(tw, "encrypted\tyes (key id %s)\n", dash(b.KeyID))
	}
	if b.ExternalURL != "" {
		fmt.Fprintf(tw, "url\t%s\n", b.ExternalURL)
	}
	if len(b.Manifest) > 0 {
		fmt.Fprintf(tw, "manifest\t%d files\n", len(b.Manifest))
	}
	if *channel != "" {
		fmt.Fprintf(tw, "channel\t%s\n", *channel)
	}
	return tw.Flush()
}

// openBundle opens a zip, or zips a directory into a temp file (removed
// once closed). Plaintext zips are checked locally first so a bad bundle
// fails before a long upload.
func openBundle(path string, encrypted bool) (*os.File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		if encrypted {
			return nil, errors.New("an encrypted bundle must be the zip file produced by `npx @capgo/cli bundle encrypt`, not a directory")
		}
		return zipDirToTemp(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if !encrypted {
		if _, err := bundlezip.Validate(f, st.Size(), bundlezip.Limits{}); err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return f, nil
}

func zipDirToTemp(dir string) (*os.File, error) {
	f, err := os.CreateTemp("", "capstan-bundle-*.zip")
	if err != nil {
		return nil, err
	}
	// Unlink now: the open handle keeps the data until Close.
	defer os.Remove(f.Name())
	if err := bundlezip.ZipDir(dir, f); err != nil {
		f.Close()
		return nil, err
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = bundlezip.Validate(f, size, bundlezip.Limits{})
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return f, nil
}

// readManifest reads a JSON array of manifest entries, or an object with
// a "manifest" array.
func readManifest(path string) ([]release.ManifestEntry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var list []release.ManifestEntry
	if err := json.Unmarshal(data, &list); err == nil {
		return list, nil
	}
	var wrapped struct {
		Manifest []release.ManifestEntry `json:"manifest"`
	}
	if err := json.Unmarshal(data, &wrapped); err != nil || wrapped.Manifest == nil {
		return nil, fmt.Errorf("%s: want a JSON array of {file_name, file_hash, download_url}", path)
	}
	return wrapped.Manifest, nil
}

func bundleList(ctx context.Context, c *common, args []string) error {
	app := appFlag(c.fs)
	_, cl, err := c.connect(args, app, 0, 0)
	if err != nil {
		return err
	}
	bs, err := cl.ListBundles(ctx, *app)
	if err != nil {
		return err
	}
	if *c.json {
		return printJSON(bs)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tSIZE\tCHECKSUM\tENCRYPTED\tSOURCE\tCREATED\tCOMMENT")
	for _, b := range bs {
		src := "stored"
		switch {
		case b.ExternalURL != "":
			src = b.ExternalURL
		case b.Object == "" && len(b.Manifest) > 0:
			src = fmt.Sprintf("manifest (%d files)", len(b.Manifest))
		}
		enc := "no"
		if b.SessionKey != "" {
			enc = "yes"
		}
		size := "-"
		if b.Size > 0 {
			size = fmt.Sprint(b.Size)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.Version, size, short(b.Checksum, 16), enc, src, fmtTime(b.CreatedAt), dash(b.Comment))
	}
	return tw.Flush()
}

func short(s string, n int) string {
	if len(s) <= n {
		return dash(s)
	}
	return s[:n] + "…"
}

func bundleDelete(ctx context.Context, c *common, args []string) error {
	app := appFlag(c.fs)
	pos, cl, err := c.connect(args, app, 1, 1)
	if err != nil {
		return err
	}
	if err := cl.DeleteBundle(ctx, *app, pos[0]); err != nil {
		return err
	}
	return c.done(map[string]string{"deleted": pos[0]}, "deleted bundle %s of %s\n", pos[0], *app)
}

func bundleCleanup(ctx context.Context, c *common, args []string) error {
	app := appFlag(c.fs)
	keep := c.fs.Int("keep", -1, "how many of the newest unused bundles to keep (required)")
	dry := c.fs.Bool("dry-run", false, "list what would be deleted, delete nothing")
	_, cl, err := c.connect(args, app, 0, 0)
	if err != nil {
		return err
	}
	if *keep < 0 {
		return errors.New("--keep N is required (0 deletes every unused bundle)")
	}
	res, err := cl.CleanupBundles(ctx, *app, admin.CleanupRequest{Keep: keep, DryRun: *dry})
	if err != nil {
		return err
	}
	if *c.json {
		return printJSON(res)
	}
	verbDone := "deleted"
	if res.DryRun {
		verbDone = "would delete"
	}
	fmt.Fprintf(stdout, "%s %d bundles: %s\n", verbDone, len(res.Deleted), dash(strings.Join(res.Deleted, " ")))
	fmt.Fprintf(stdout, "kept %d newest unused: %s\n", len(res.Kept), dash(strings.Join(res.Kept, " ")))
	fmt.Fprintf(stdout, "in use by a channel or rollout: %s\n", dash(strings.Join(res.InUse, " ")))
	for _, s := range res.Skipped {
		fmt.Fprintf(stdout, "skipped %s: %s\n", s.Version, s.Reason)
	}
	return nil
}
