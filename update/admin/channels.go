package admin

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/capstan-io/capstan/update/release"
)

func (a *API) listChannels(w http.ResponseWriter, r *http.Request) error {
	snap, app, err := a.appOf(r)
	if err != nil {
		return err
	}
	cs := snap.Channels(app.ID)
	out := make([]release.Channel, len(cs))
	for i, c := range cs {
		out[i] = *c
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) getChannel(w http.ResponseWriter, r *http.Request) error {
	snap, app, err := a.appOf(r)
	if err != nil {
		return err
	}
	name := chi.URLParam(r, "name")
	c, ok := snap.Channel(app.ID, name)
	if !ok {
		return channelNotFound(app.ID, name)
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

// putChannel creates a channel (from release.NewChannel defaults) or
// updates one with the fields present in the body. Pointing the channel
// at another bundle is how releases are promoted and rolled back; the
// store returns once the change is in the snapshot devices are served from.
func (a *API) putChannel(w http.ResponseWriter, r *http.Request) error {
	name := chi.URLParam(r, "name")
	if err := validChannelName(name); err != nil {
		return err
	}
	var p ChannelPatch
	if err := decodeJSON(w, r, &p, true); err != nil {
		return err
	}
	a.writeMu.Lock()
	defer a.writeMu.Unlock()
	snap, app, err := a.appOf(r)
	if err != nil {
		return err
	}
	c := release.NewChannel(app.ID, name)
	old, exists := snap.Channel(app.ID, name)
	if exists {
		c = *old
	}
	c, err = applyPatch(c, p)
	if err != nil {
		return err
	}
	for field, v := range map[string]string{"bundle": c.Bundle, "rollout_bundle": c.RolloutBundle} {
		if v == "" {
			continue
		}
		if _, ok := snap.Bundle(app.ID, v); !ok {
			return notFound("bundle_not_found", fmt.Sprintf("%s %q: app %q has no such bundle", field, v, app.ID))
		}
	}
	if other, platform, ok := publicConflict(c, snap.Channels(app.ID)); ok {
		return conflict("public_channel_conflict", fmt.Sprintf("channel %q is already public for %s; make it private (or disable %s on one of them) first, so each device has one default channel", other, platform, platform))
	}
	if err := a.store.PutChannel(r.Context(), c); err != nil {
		if errors.Is(err, errStoreNotFound) {
			return notFound("not_found", fmt.Sprintf("put channel %q: %v", name, err))
		}
		if errors.Is(err, errStoreInvalid) {
			return badRequest("invalid_channel", err.Error())
		}
		return fmt.Errorf("put channel: %w", err)
	}
	if got, ok := a.store.Snapshot().Channel(app.ID, name); ok {
		c = *got
	}
	a.log.Info("channel set", "app", app.ID, "channel", name, "bundle", c.Bundle, "rollout_bundle", c.RolloutBundle, "rollout_percent", c.RolloutPercent)
	status := http.StatusOK
	if !exists {
		status = http.StatusCreated
	}
	writeJSON(w, status, c)
	return nil
}

// deleteChannel refuses while devices are pinned to the channel: they
// would silently lose their channel (no_channel) instead of being moved
// on purpose.
func (a *API) deleteChannel(w http.ResponseWriter, r *http.Request) error {
	a.writeMu.Lock()
	defer a.writeMu.Unlock()
	snap, app, err := a.appOf(r)
	if err != nil {
		return err
	}
	name := chi.URLParam(r, "name")
	if _, ok := snap.Channel(app.ID, name); !ok {
		return channelNotFound(app.ID, name)
	}
	pinned := 0
	snap.Overrides(app.ID, func(o release.Override) bool {
		if o.Channel == name {
			pinned++
		}
		return true
	})
	if pinned > 0 {
		return conflict("channel_in_use", fmt.Sprintf("%d device(s) are pinned to channel %q; unpin them (capstan device unset-channel) first", pinned, name))
	}
	if err := a.store.DeleteChannel(r.Context(), app.ID, name); err != nil {
		if errors.Is(err, errStoreNotFound) {
			return channelNotFound(app.ID, name)
		}
		return fmt.Errorf("delete channel: %w", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
