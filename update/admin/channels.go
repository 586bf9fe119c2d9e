package admin

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/capstan-io/capstan/rollout"
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

// channelOf is the channel {name} of the request's app.
func (a *API) channelOf(r *http.Request) (*release.Channel, error) {
	snap, app, err := a.appOf(r)
	if err != nil {
		return nil, err
	}
	name := chi.URLParam(r, "name")
	c, ok := snap.Channel(app.ID, name)
	if !ok {
		return nil, channelNotFound(app.ID, name)
	}
	return c, nil
}

func (a *API) getChannel(w http.ResponseWriter, r *http.Request) error {
	c, err := a.channelOf(r)
	if err != nil {
		return err
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
	_, app, err := a.appOf(r)
	if err != nil {
		return err
	}
	// The patch is applied inside the store's write, to the channel as the
	// bucket has it, so a change another front made a moment ago is kept.
	c, created, err := a.store.UpdateChannel(r.Context(), app.ID, name, func(cur *release.Channel) (release.Channel, error) {
		c := release.NewChannel(app.ID, name)
		if cur != nil {
			c = *cur
		}
		c, err := applyPatch(c, p)
		if err != nil {
			return c, err
		}
		// A new rollout bundle or plan starts a rollout; clearing it ends one.
		c, err = rollout.Normalize(cur, c, a.now())
		if err != nil {
			return c, badRequest("invalid_rollout", err.Error())
		}
		return c, nil
	})
	if err != nil {
		if ce := storeConflict(err); ce != nil {
			return ce
		}
		if errors.Is(err, release.ErrBundleNotFound) {
			return notFound("bundle_not_found", err.Error())
		}
		if errors.Is(err, errStoreNotFound) {
			return appNotFound(app.ID)
		}
		if errors.Is(err, errStoreInvalid) {
			return badRequest("invalid_channel", err.Error())
		}
		return fmt.Errorf("put channel: %w", err)
	}
	if got, ok := a.store.Snapshot().Channel(app.ID, name); ok && got.UpdatedAt.Equal(c.UpdatedAt) {
		c = *got
	}
	a.log.Info("channel set", "app", app.ID, "channel", name, "bundle", c.Bundle, "rollout_bundle", c.RolloutBundle, "rollout_percent", c.RolloutPercent)
	a.recordChannelSet(r, c, p, created)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, c)
	return nil
}

// deleteChannel refuses while devices are pinned to the channel: they
// would silently lose their channel (no_channel) instead of being moved
// on purpose.
func (a *API) deleteChannel(w http.ResponseWriter, r *http.Request) error {
	_, app, err := a.appOf(r)
	if err != nil {
		return err
	}
	name := chi.URLParam(r, "name")
	// The store counts the pins and deletes in one conditional write.
	if err := a.store.DeleteChannel(r.Context(), app.ID, name); err != nil {
		if ce := storeConflict(err); ce != nil {
			return ce
		}
		if errors.Is(err, errStoreNotFound) {
			return channelNotFound(app.ID, name)
		}
		return fmt.Errorf("delete channel: %w", err)
	}
	a.recordChannelDelete(r, app.ID, name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
