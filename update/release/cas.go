package release

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The writes below keep the release invariants with any number of fronts
// writing at once; see the package comment for how.

// CreateApp adds an app; ErrExists when its id is taken. Keys and zips a
// deleted app of the same id left behind (a front crashed while deleting
// it) are removed first, so nothing of the old app comes back.
func (s *Store) CreateApp(ctx context.Context, a App) error {
	if err := validPathSegment("app id", a.ID); err != nil {
		return fmt.Errorf("create app: %w", err)
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = now()
	}
	data, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("create app %q: %w", a.ID, err)
	}
	err = s.guarded(ctx, func() (uint64, error) {
		e, err := s.last(ctx, appKey(a.ID))
		if err != nil {
			return 0, err
		}
		if e.live {
			return 0, ErrExists
		}
		// Only an app that existed can have left keys behind.
		if e.seq != 0 {
			if ok, _, err := s.sweepApp(ctx, a.ID, e.seq); err != nil {
				return 0, err
			} else if !ok {
				return 0, errConflict
			}
		}
		return s.commit(ctx, []*nats.Msg{expect(s.putMsg(appKey(a.ID), data), e.seq)})
	})
	if err != nil {
		return fmt.Errorf("create app %q: %w", a.ID, err)
	}
	return nil
}

// DeleteApp removes an app with its channels, bundles (metadata and zips)
// device overrides and device channel choices. Deleting the app key is
// the commit point: every other write of the app expects that key, so
// none lands after it, and readers see nothing of an app without its key.
// The rest is swept after; a sweep cut short by a crash is finished by
// the next start of any front or a re-creation of the app.
func (s *Store) DeleteApp(ctx context.Context, id string) error {
	if err := validSegment("app id", id); err != nil {
		return fmt.Errorf("delete app: %w", err)
	}
	var appSeq uint64
	var shas []string
	err := s.guarded(ctx, func() (uint64, error) {
		g, err := s.readGuard(ctx, id, 0)
		if err != nil {
			return 0, err
		}
		shas = shas[:0]
		for _, b := range g.app.bundles {
			shas = append(shas, b.ObjectSHA256)
		}
		appSeq, err = s.commit(ctx, []*nats.Msg{expect(s.delMsg(appKey(id)), g.seq)})
		return appSeq, err
	})
	if err != nil {
		return fmt.Errorf("delete app %q: %w", id, err)
	}
	_, rev, err := s.sweepApp(context.WithoutCancel(ctx), id, appSeq)
	if err != nil {
		s.log.Warn("delete app: sweep left keys behind; the next start repairs them", "app", id, "err", err)
	}
	s.waitApplied(ctx, max(rev, appSeq))
	for _, sha := range shas {
		s.bundleDropCached(sha)
	}
	return nil
}

// PutChannel creates or replaces a channel. A zero ID keeps the existing
// channel's id, or assigns the app's next free one. The app and the
// bundles it points at must exist (ErrNotFound, ErrBundleNotFound); a
// public channel must not share a platform with another public one
// (ErrPublicConflict).
func (s *Store) PutChannel(ctx context.Context, c Channel) error {
	if err := validChannel(c); err != nil {
		return fmt.Errorf("put channel: %w", err)
	}
	_, _, err := s.UpdateChannel(ctx, c.AppID, c.Name, func(*Channel) (Channel, error) { return c, nil })
	return err
}

// UpdateChannel writes fn's change of a channel: fn gets the channel as
// it is in the bucket (nil when it does not exist yet) and returns the
// channel to write, which must pass PutChannel's checks. fn runs again on
// the newer channel whenever another write got in first, so a partial
// update never overwrites a concurrent one. It returns the channel as
// written and whether it was created.
func (s *Store) UpdateChannel(ctx context.Context, app, name string, fn func(cur *Channel) (Channel, error)) (Channel, bool, error) {
	if err := validSegment("app id", app); err != nil {
		return Channel{}, false, fmt.Errorf("put channel: %w", err)
	}
	if err := validSegment("channel name", name); err != nil {
		return Channel{}, false, fmt.Errorf("put channel: %w", err)
	}
	key := chanKey(app, name)
	var c Channel
	var created bool
	err := s.guarded(ctx, func() (uint64, error) {
		ce, err := s.last(ctx, key)
		if err != nil {
			return 0, err
		}
		g, err := s.readGuard(ctx, app, ce.seq)
		if err != nil {
			return 0, err
		}
		var cur *Channel
		if ce.live {
			var old Channel
			if err := json.Unmarshal(ce.data, &old); err == nil {
				old.AppID, old.Name = app, name
				cur = &old
			}
		}
		if c, err = fn(cur); err != nil {
			return 0, err
		}
		c.AppID, c.Name = app, name
		created = !ce.live
		if err := validChannel(c); err != nil {
			return 0, err
		}
		if c.DisableAutoUpdate == "" {
			c.DisableAutoUpdate = PolicyNone
		}
		for _, v := range []string{c.Bundle, c.RolloutBundle} {
			if _, ok := g.app.bundles[v]; v == "" || ok {
				continue
			}
			// Not in the snapshot; the bucket may still hold it (with a
			// value this front cannot read). Creating and deleting bundles
			// rewrite the app key, so this read is as safe as the snapshot.
			if be, err := s.last(ctx, bundleKey(app, v)); err != nil {
				return 0, err
			} else if !be.live {
				return 0, fmt.Errorf("%q of app %q: %w", v, app, ErrBundleNotFound)
			}
		}
		if other, p, ok := publicClash(c, g.app.channels); ok {
			return 0, fmt.Errorf("channel %q is already public for %s: %w", other, p, ErrPublicConflict)
		}
		if c.ID == 0 && cur != nil {
			c.ID = cur.ID
		}
		msgs := make([]*nats.Msg, 0, 3)
		if c.ID == 0 {
			// The app's id counter is written in the same batch, so an id
			// is used once and no counter outlives a deleted app.
			se, err := s.last(ctx, chanSeqKey(app))
			if err != nil {
				return 0, err
			}
			var next int64
			for _, o := range g.app.channels {
				next = max(next, o.ID)
			}
			if se.live {
				if n, err := strconv.ParseInt(string(se.data), 10, 64); err == nil {
					next = max(next, n)
				}
			}
			next++
			c.ID = next
			msgs = append(msgs, expect(s.putMsg(chanSeqKey(app), []byte(strconv.FormatInt(next, 10))), se.seq))
		}
		c.UpdatedAt = now()
		data, err := json.Marshal(c)
		if err != nil {
			return 0, err
		}
		msgs = append(msgs, expect(s.putMsg(key, data), ce.seq), g.bump(s, app))
		return s.commit(ctx, msgs)
	})
	if err != nil {
		return Channel{}, false, fmt.Errorf("put channel %q: %w", name, err)
	}
	return c, created, nil
}

// publicClash finds another public channel sharing a platform with c.
func publicClash(c Channel, channels map[string]*Channel) (other, platform string, ok bool) {
	if !c.Public {
		return "", "", false
	}
	for _, o := range channels {
		if o.Name == c.Name || !o.Public {
			continue
		}
		for _, p := range []string{"ios", "android", "electron"} {
			if c.PlatformEnabled(p) && o.PlatformEnabled(p) {
				return o.Name, p, true
			}
		}
	}
	return "", "", false
}

// DeleteChannel removes a channel; ErrChannelInUse while devices are
// pinned to it. Pinning rewrites the channel key, so a pin landing
// between the check and the delete makes the delete conflict and re-check.
func (s *Store) DeleteChannel(ctx context.Context, app, name string) error {
	if err := validSegment("app id", app); err != nil {
		return fmt.Errorf("delete channel: %w", err)
	}
	if err := validSegment("channel name", name); err != nil {
		return fmt.Errorf("delete channel: %w", err)
	}
	key := chanKey(app, name)
	err := s.guarded(ctx, func() (uint64, error) {
		ce, err := s.last(ctx, key)
		if err != nil {
			return 0, err
		}
		if !ce.live {
			return 0, fmt.Errorf("channel %q: %w", name, ErrNotFound)
		}
		g, err := s.readGuard(ctx, app, ce.seq)
		if err != nil {
			return 0, err
		}
		if n := pinnedTo(g.snap, app, name); n > 0 {
			return 0, fmt.Errorf("%d device(s) pinned to it: %w", n, ErrChannelInUse)
		}
		return s.commit(ctx, []*nats.Msg{expect(s.delMsg(key), ce.seq), g.bump(s, app)})
	})
	if err != nil {
		return fmt.Errorf("delete channel %q of app %q: %w", name, app, err)
	}
	return nil
}

// pinnedTo counts the devices pinned to a channel.
func pinnedTo(snap *Snapshot, app, name string) int {
	n := 0
	if a := snap.overrides[app]; a != nil {
		a.each(app, func(o Override) bool {
			if o.Channel == name {
				n++
			}
			return true
		})
	}
	return n
}

// PutOverride pins a device to a channel of its app; the app and channel
// must exist (ErrNotFound). DeviceID is stored lowercase. The pin is
// written with the channel key rewritten as it is (conflicting with a
// concurrent DeleteChannel) and on condition that the app key is
// unchanged (conflicting with a concurrent DeleteApp).
func (s *Store) PutOverride(ctx context.Context, o Override) error {
	o.DeviceID = strings.ToLower(o.DeviceID)
	for _, f := range [][2]string{{"app id", o.AppID}, {"device id", o.DeviceID}, {"channel name", o.Channel}} {
		if err := validSegment(f[0], f[1]); err != nil {
			return fmt.Errorf("put override: %w", err)
		}
	}
	data, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("put override: %w", err)
	}
	ck := chanKey(o.AppID, o.Channel)
	err = s.guarded(ctx, func() (uint64, error) {
		g, err := s.readGuard(ctx, o.AppID, 0)
		if err != nil {
			return 0, err
		}
		ce, err := s.last(ctx, ck)
		if err != nil {
			return 0, err
		}
		if !ce.live {
			return 0, fmt.Errorf("%q: %w", o.Channel, ErrChannelNotFound)
		}
		pin := s.assertOn(s.putMsg(ovrKey(o.AppID, o.DeviceID), data), appKey(o.AppID), g.seq)
		return s.commit(ctx, []*nats.Msg{pin, expect(s.putMsg(ck, ce.data), ce.seq)})
	})
	if err != nil {
		return fmt.Errorf("put override for device %q: %w", o.DeviceID, err)
	}
	return nil
}

// CreateBundle stores a new bundle version: it streams zip (nil when the
// bundle has an ExternalURL or only a manifest) into the object store,
// recording the SHA-256 and size of the stored bytes, then its metadata.
// An empty Checksum of a plaintext bundle becomes that SHA-256. ErrExists
// when the version is taken, ErrAppDeleted when the app was deleted
// meanwhile; no object is left behind then. The metadata is written on
// condition that the version key and the app key are as read.
func (s *Store) CreateBundle(ctx context.Context, b Bundle, zip io.Reader) error {
	return s.CreateBundleFiles(ctx, b, zip, nil)
}

// CreateBundleFiles is CreateBundle for a delta bundle whose files Capstan
// stores: every manifest entry with an Object names one of files, which
// are stored once each (shared with other bundles by digest) and claimed
// before the metadata is written (files.go). Files left unused by a failed
// upload go in a later sweep.
func (s *Store) CreateBundleFiles(ctx context.Context, b Bundle, zip io.Reader, files []FileSource) error {
	start := time.Now()
	if err := validBundle(b, zip != nil); err != nil {
		return fmt.Errorf("create bundle: %w", err)
	}
	if err := validFiles(b.Manifest, files); err != nil {
		return fmt.Errorf("create bundle: %w", err)
	}
	key := bundleKey(b.AppID, b.Version)
	check := func() (lastEntry, error) {
		be, err := s.last(ctx, key)
		if err != nil {
			return be, err
		}
		if be.live {
			return be, fmt.Errorf("bundle %q of app %q: %w", b.Version, b.AppID, ErrExists)
		}
		return be, nil
	}
	if _, err := s.readGuard(ctx, b.AppID, 0); err != nil && !errors.Is(err, errConflict) {
		return fmt.Errorf("create bundle %q: %w", b.Version, err)
	}
	if _, err := check(); err != nil {
		return fmt.Errorf("create bundle %q: %w", b.Version, err)
	}
	b.Object, b.ObjectSHA256, b.Size = "", "", 0
	if b.CreatedAt.IsZero() {
		b.CreatedAt = now()
	}
	var cached *bundleTemp
	if zip != nil {
		// Tee the upload into the local cache so the first download on
		// this front needs no fetch.
		cached = s.bundleNewTemp()
		name := objectName(b.AppID, b.Version)
		info, err := s.obs.Put(ctx, jetstream.ObjectMeta{
			Name:        name,
			Description: b.AppID + " " + b.Version,
		}, io.TeeReader(zip, cached))
		if err != nil {
			cached.discard()
			return fmt.Errorf("store bundle %q zip: %w", b.Version, err)
		}
		b.Object, b.Size = name, int64(info.Size)
		b.ObjectSHA256 = hex.EncodeToString(cached.h.Sum(nil))
		if b.Checksum == "" {
			b.Checksum = b.ObjectSHA256
		}
	}
	data, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("create bundle %q: %w", b.Version, err)
	}
	if err == nil {
		err = s.claimFiles(ctx, files)
	}
	if err == nil && time.Since(start) > time.Duration(fileGrace.Load())/2 {
		err = fmt.Errorf("upload took longer than %v; its files may have been swept: upload again", time.Duration(fileGrace.Load())/2)
	}
	if err == nil {
		err = s.guarded(ctx, func() (uint64, error) {
			be, err := check()
			if err != nil {
				return 0, err
			}
			g, err := s.readGuard(ctx, b.AppID, 0)
			if err != nil {
				return 0, err
			}
			return s.commit(ctx, []*nats.Msg{expect(s.putMsg(key, data), be.seq), g.bump(s, b.AppID)})
		})
	}
	if err != nil {
		if b.Object != "" {
			s.deleteObject(context.WithoutCancel(ctx), b)
		}
		cached.discard()
		return fmt.Errorf("create bundle %q of app %q: %w", b.Version, b.AppID, err)
	}
	if cached != nil {
		_ = cached.keep(s.bundlePath(b.ObjectSHA256), b.ObjectSHA256, s.log)
	}
	return nil
}

// DeleteBundle removes a bundle version and its zip; ErrInUse while a
// channel points at it (as Bundle or RolloutBundle).
func (s *Store) DeleteBundle(ctx context.Context, app, version string) error {
	if err := validSegment("app id", app); err != nil {
		return fmt.Errorf("delete bundle: %w", err)
	}
	if err := validSegment("bundle version", version); err != nil {
		return fmt.Errorf("delete bundle: %w", err)
	}
	key := bundleKey(app, version)
	var b Bundle
	err := s.guarded(ctx, func() (uint64, error) {
		be, err := s.last(ctx, key)
		if err != nil {
			return 0, err
		}
		if !be.live {
			return 0, fmt.Errorf("bundle %q: %w", version, ErrNotFound)
		}
		g, err := s.readGuard(ctx, app, be.seq)
		if err != nil {
			return 0, err
		}
		for _, c := range g.app.channels {
			if c.Bundle == version || c.RolloutBundle == version {
				return 0, fmt.Errorf("channel %q uses it: %w", c.Name, ErrInUse)
			}
		}
		b = Bundle{}
		if err := json.Unmarshal(be.data, &b); err != nil {
			s.log.Warn("delete bundle: undecodable metadata", "app", app, "version", version, "err", err)
		}
		return s.commit(ctx, []*nats.Msg{expect(s.delMsg(key), be.seq), g.bump(s, app)})
	})
	if err != nil {
		return fmt.Errorf("delete bundle %q of app %q: %w", version, app, err)
	}
	s.deleteObject(ctx, b)
	s.bundleDropCached(b.ObjectSHA256)
	if objs := manifestObjects(b.Manifest); len(objs) > 0 {
		// Files still in their grace period go in a later sweep.
		if _, err := s.SweepFiles(ctx, objs); err != nil {
			s.log.Warn("delete bundle: sweep its files", "app", app, "version", version, "err", err)
		}
	}
	return nil
}

func manifestObjects(m []ManifestEntry) []string {
	var out []string
	for _, e := range m {
		if e.Object != "" {
			out = append(out, e.Object)
		}
	}
	return out
}

// validFiles checks that the files stored with a bundle are exactly those
// its manifest entries name by Object.
func validFiles(m []ManifestEntry, files []FileSource) error {
	have := make(map[string]bool, len(files))
	for _, f := range files {
		if !ValidHashHex(f.SHA256) || f.Size < 0 || f.Open == nil {
			return fmt.Errorf("%w: file %q needs a SHA-256 hex, a size and its bytes", ErrInvalid, f.SHA256)
		}
		have[f.SHA256] = true
	}
	named := make(map[string]bool, len(m))
	for _, e := range m {
		if e.Object == "" {
			continue
		}
		if !have[e.Object] {
			return fmt.Errorf("%w: manifest entry %q names object %q, which the upload does not carry", ErrInvalid, e.FileName, e.Object)
		}
		named[e.Object] = true
	}
	for sha := range have {
		if !named[sha] {
			return fmt.Errorf("%w: file %s is in no manifest entry", ErrInvalid, sha)
		}
	}
	return nil
}
