package admin

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/capstan-io/capstan/audit"
	"github.com/capstan-io/capstan/update/release"
)

// listDevices lists the app's device overrides sorted by device id,
// optionally only those pinned to ?channel=.
func (a *API) listDevices(w http.ResponseWriter, r *http.Request) error {
	snap, app, err := a.appOf(r)
	if err != nil {
		return err
	}
	only := r.URL.Query().Get("channel")
	out := []release.Override{}
	snap.Overrides(app.ID, func(o release.Override) bool {
		if only == "" || o.Channel == only {
			out = append(out, o)
		}
		return true
	})
	slices.SortFunc(out, func(x, y release.Override) int { return strings.Compare(x.DeviceID, y.DeviceID) })
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) deviceOf(r *http.Request) (*release.Snapshot, release.App, string, error) {
	snap, app, err := a.appOf(r)
	if err != nil {
		return snap, app, "", err
	}
	dev, err := normDeviceID(chi.URLParam(r, "device"))
	return snap, app, dev, err
}

func (a *API) getDeviceChannel(w http.ResponseWriter, r *http.Request) error {
	snap, app, dev, err := a.deviceOf(r)
	if err != nil {
		return err
	}
	ch, ok := snap.Override(app.ID, dev)
	if !ok {
		return overrideNotFound(app.ID, dev)
	}
	writeJSON(w, http.StatusOK, release.Override{AppID: app.ID, DeviceID: dev, Channel: ch})
	return nil
}

// setDeviceChannel pins a device to a channel; the pin wins over whatever
// channel the device asks for.
func (a *API) setDeviceChannel(w http.ResponseWriter, r *http.Request) error {
	var req DeviceChannelRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	if err := validChannelName(req.Channel); err != nil {
		return err
	}
	_, app, dev, err := a.deviceOf(r)
	if err != nil {
		return err
	}
	o := release.Override{AppID: app.ID, DeviceID: dev, Channel: req.Channel}
	if err := a.store.PutOverride(r.Context(), o); err != nil {
		if ce := storeConflict(err); ce != nil {
			return ce
		}
		if errors.Is(err, release.ErrChannelNotFound) {
			return channelNotFound(app.ID, req.Channel)
		}
		if errors.Is(err, errStoreNotFound) {
			return appNotFound(app.ID)
		}
		if errors.Is(err, errStoreInvalid) {
			return badRequest("invalid_override", err.Error())
		}
		return fmt.Errorf("put override: %w", err)
	}
	a.record(r, audit.Entry{App: app.ID, Channel: o.Channel, Change: audit.ChangePinSet, Detail: fmt.Sprintf("device %s pinned to %s", dev, o.Channel)})
	writeJSON(w, http.StatusOK, o)
	return nil
}

func (a *API) unsetDeviceChannel(w http.ResponseWriter, r *http.Request) error {
	snap, app, dev, err := a.deviceOf(r)
	if err != nil {
		return err
	}
	ch, ok := snap.Override(app.ID, dev)
	if !ok {
		return overrideNotFound(app.ID, dev)
	}
	if err := a.store.DeleteOverride(r.Context(), app.ID, dev); err != nil {
		if errors.Is(err, errStoreNotFound) {
			return overrideNotFound(app.ID, dev)
		}
		return fmt.Errorf("delete override: %w", err)
	}
	a.record(r, audit.Entry{App: app.ID, Channel: ch, Change: audit.ChangePinDelete, Detail: fmt.Sprintf("device %s unpinned from %s", dev, ch)})
	w.WriteHeader(http.StatusNoContent)
	return nil
}
