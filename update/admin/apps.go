package admin

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/capstan-io/capstan/update/release"
)

func (a *API) createApp(w http.ResponseWriter, r *http.Request) error {
	var req CreateAppRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	if err := validAppID(req.ID); err != nil {
		return err
	}
	if len(req.Name) > maxAppNameLen {
		return badRequest("invalid_name", fmt.Sprintf("app name longer than %d characters", maxAppNameLen))
	}
	if _, ok := a.store.Snapshot().App(req.ID); ok {
		return conflict("app_exists", fmt.Sprintf("app %q already exists", req.ID))
	}
	app := release.App{ID: req.ID, Name: req.Name, CreatedAt: a.now()}
	if err := a.store.CreateApp(r.Context(), app); err != nil {
		if errors.Is(err, release.ErrConcurrent) {
			return storeConflict(err)
		}
		if errors.Is(err, errStoreExists) {
			return conflict("app_exists", fmt.Sprintf("app %q already exists", req.ID))
		}
		return fmt.Errorf("create app: %w", err)
	}
	if got, ok := a.store.Snapshot().App(req.ID); ok {
		app = got
	}
	writeJSON(w, http.StatusCreated, app)
	return nil
}

func (a *API) listApps(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, a.store.Snapshot().Apps())
	return nil
}

// appOf returns the app named in the path, or a 404.
func (a *API) appOf(r *http.Request) (*release.Snapshot, release.App, error) {
	id := chi.URLParam(r, "app")
	snap := a.store.Snapshot()
	app, ok := snap.App(id)
	if !ok {
		return snap, app, appNotFound(id)
	}
	return snap, app, nil
}

func (a *API) getApp(w http.ResponseWriter, r *http.Request) error {
	_, app, err := a.appOf(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, app)
	return nil
}

// deleteApp removes an app with its channels, bundles and overrides.
func (a *API) deleteApp(w http.ResponseWriter, r *http.Request) error {
	_, app, err := a.appOf(r)
	if err != nil {
		return err
	}
	if err := a.store.DeleteApp(r.Context(), app.ID); err != nil {
		if errors.Is(err, release.ErrConcurrent) {
			return storeConflict(err)
		}
		if errors.Is(err, errStoreNotFound) {
			return appNotFound(app.ID)
		}
		return fmt.Errorf("delete app: %w", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
