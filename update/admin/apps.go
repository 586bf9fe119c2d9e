package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/capstan-io/capstan/audit"
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
	a.record(r, audit.Entry{App: app.ID, Change: audit.ChangeAppCreate, Detail: appDetail("app created", app.Name)})
	writeJSON(w, http.StatusCreated, app)
	return nil
}

// listApps lists every app, or only its own to a token limited to some.
func (a *API) listApps(w http.ResponseWriter, r *http.Request) error {
	apps := a.store.Snapshot().Apps()
	if p, ok := principalFrom(r.Context()); ok && p.scoped() {
		apps = slices.DeleteFunc(apps, func(app release.App) bool { return !p.allows(app.ID) })
	}
	writeJSON(w, http.StatusOK, apps)
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
	a.record(r, audit.Entry{App: app.ID, Change: audit.ChangeAppDelete, Detail: "app deleted with its channels, bundles and pins"})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func appDetail(what, name string) string {
	if name == "" {
		return what
	}
	return fmt.Sprintf("%s, name %q", what, name)
}

// appPutter is the store's replacement of an app's metadata.
type appPutter interface {
	PutApp(ctx context.Context, a release.App) error
}

// updateApp is PATCH /apps/{app}: sets the name and the webhook URL
// that receives the app's automatic release changes ("" clears it).
func (a *API) updateApp(w http.ResponseWriter, r *http.Request) error {
	var req UpdateAppRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	if req.Name == nil && req.WebhookURL == nil && req.KeepBundles == nil {
		return badRequest("nothing_to_update", "give name, webhook_url or keep_bundles")
	}
	if req.KeepBundles != nil && (*req.KeepBundles < 0 || *req.KeepBundles > maxKeep) {
		return badRequest("invalid_keep", fmt.Sprintf("keep_bundles must be 0 (off) to %d", maxKeep))
	}
	if req.Name != nil && len(*req.Name) > maxAppNameLen {
		return badRequest("invalid_name", fmt.Sprintf("app name longer than %d characters", maxAppNameLen))
	}
	if req.WebhookURL != nil {
		if err := validWebhookURL(*req.WebhookURL); err != nil {
			return err
		}
	}
	_, app, err := a.appOf(r)
	if err != nil {
		return err
	}
	put, ok := a.store.(appPutter)
	if !ok {
		return newError(http.StatusNotImplemented, "not_supported", "this server's store cannot update apps")
	}
	var changed []string
	if req.Name != nil {
		app.Name = *req.Name
		changed = append(changed, fmt.Sprintf("name %q", app.Name))
	}
	if req.WebhookURL != nil {
		app.WebhookURL = *req.WebhookURL
		// The URL may hold a secret (Slack-style hooks): not in the log.
		if app.WebhookURL == "" {
			changed = append(changed, "webhook cleared")
		} else {
			changed = append(changed, "webhook set")
		}
	}
	if req.KeepBundles != nil {
		app.KeepBundles = *req.KeepBundles
		changed = append(changed, fmt.Sprintf("keep %d unused bundles", app.KeepBundles))
	}
	if err := put.PutApp(r.Context(), app); err != nil {
		if ce := storeConflict(err); ce != nil {
			return ce
		}
		if errors.Is(err, errStoreNotFound) {
			return appNotFound(app.ID)
		}
		if errors.Is(err, errStoreInvalid) {
			return badRequest("invalid_app", err.Error())
		}
		return fmt.Errorf("update app: %w", err)
	}
	if got, ok := a.store.Snapshot().App(app.ID); ok {
		app = got
	}
	a.record(r, audit.Entry{App: app.ID, Change: audit.ChangeAppUpdate, Detail: strings.Join(changed, ", ")})
	a.log.Info("app updated", "app", app.ID, "changed", strings.Join(changed, ", "))
	writeJSON(w, http.StatusOK, app)
	return nil
}
