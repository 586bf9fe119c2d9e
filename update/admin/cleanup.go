package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/capstan-io/capstan/audit"
	"github.com/capstan-io/capstan/update/release"
)

// maxKeep bounds a retention count, so a typo cannot read as "keep all".
const maxKeep = 100000

// CleanupRequest is the body of POST /apps/{app}/bundles/cleanup.
type CleanupRequest struct {
	// Keep is how many of the newest unused bundles stay (0: none). It is
	// required, so an empty body cannot mean "delete every unused bundle".
	Keep *int `json:"keep"`
	// DryRun lists what would go without deleting it.
	DryRun bool `json:"dry_run,omitempty"`
}

// CleanupSkip is a bundle the cleanup chose but could not delete.
type CleanupSkip struct {
	Version string `json:"version"`
	Reason  string `json:"reason"`
}

// CleanupResult answers a cleanup: deleted (or, dry run, to delete)
// oldest first, the bundles in use, and those that turned out in use or
// gone meanwhile.
type CleanupResult struct {
	Deleted []string      `json:"deleted"`
	InUse   []string      `json:"in_use"`
	Kept    []string      `json:"kept"`
	Skipped []CleanupSkip `json:"skipped,omitempty"`
	DryRun  bool          `json:"dry_run,omitempty"`
}

// CleanupPlan splits an app's bundles into those a channel uses (as its
// bundle or rollout bundle; a pin reaches bundles only through its
// channel), the keep newest of the rest by upload time, and the others,
// oldest first, which may go.
func CleanupPlan(bundles []*release.Bundle, channels []*release.Channel, keep int) (remove, inUse, kept []string) {
	used := map[string]bool{}
	for _, c := range channels {
		if c.Bundle != "" {
			used[c.Bundle] = true
		}
		if c.RolloutBundle != "" {
			used[c.RolloutBundle] = true
		}
	}
	var unused []*release.Bundle
	for _, b := range bundles {
		if used[b.Version] {
			inUse = append(inUse, b.Version)
		} else {
			unused = append(unused, b)
		}
	}
	// Newest first; versions break ties so the plan is the same on every front.
	slices.SortFunc(unused, func(a, b *release.Bundle) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.Version, a.Version)
	})
	keep = max(0, min(keep, len(unused)))
	for _, b := range unused[:keep] {
		kept = append(kept, b.Version)
	}
	for i := len(unused) - 1; i >= keep; i-- {
		remove = append(remove, unused[i].Version)
	}
	slices.Sort(inUse)
	return remove, inUse, kept
}

func (a *API) cleanupBundles(w http.ResponseWriter, r *http.Request) error {
	var req CleanupRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	if req.Keep == nil {
		return badRequest("keep_required", "say how many of the newest unused bundles to keep: {\"keep\": N}")
	}
	if *req.Keep < 0 || *req.Keep > maxKeep {
		return badRequest("invalid_keep", fmt.Sprintf("keep must be 0 to %d", maxKeep))
	}
	_, app, err := a.appOf(r)
	if err != nil {
		return err
	}
	res, err := a.cleanup(r, app.ID, *req.Keep, req.DryRun)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// cleanup deletes the app's unused bundles past the keep newest. Each
// delete is the store's conditional one, so a bundle a channel took
// meanwhile is skipped, never deleted.
func (a *API) cleanup(r *http.Request, app string, keep int, dryRun bool) (CleanupResult, error) {
	snap := a.store.Snapshot()
	remove, inUse, kept := CleanupPlan(snap.Bundles(app), snap.Channels(app), keep)
	res := CleanupResult{Deleted: []string{}, InUse: inUse, Kept: kept, DryRun: dryRun}
	if res.InUse == nil {
		res.InUse = []string{}
	}
	if res.Kept == nil {
		res.Kept = []string{}
	}
	if dryRun {
		res.Deleted = append(res.Deleted, remove...)
		return res, nil
	}
	for _, v := range remove {
		err := a.store.DeleteBundle(r.Context(), app, v)
		switch {
		case err == nil:
			res.Deleted = append(res.Deleted, v)
			a.record(r, audit.Entry{App: app, Bundle: v, Change: audit.ChangeBundleDelete, Detail: fmt.Sprintf("bundle %s deleted by cleanup (keep %d)", v, keep)})
		case errors.Is(err, errStoreInUse):
			res.Skipped = append(res.Skipped, CleanupSkip{v, "in_use"})
		case errors.Is(err, errStoreNotFound):
			res.Skipped = append(res.Skipped, CleanupSkip{v, "not_found"})
		case errors.Is(err, context.Canceled):
			return res, err
		default:
			if ce := storeConflict(err); ce != nil {
				res.Skipped = append(res.Skipped, CleanupSkip{v, ce.code})
				continue
			}
			return res, fmt.Errorf("cleanup: delete bundle %s: %w", v, err)
		}
	}
	return res, nil
}

// retain applies the app's retention after an upload; failures are
// logged, the upload already succeeded.
func (a *API) retain(r *http.Request, app release.App) {
	if app.KeepBundles <= 0 {
		return
	}
	res, err := a.cleanup(r, app.ID, app.KeepBundles, false)
	if err != nil {
		a.log.Warn("bundle retention", "app", app.ID, "keep", app.KeepBundles, "err", err)
		return
	}
	if len(res.Deleted) > 0 {
		a.log.Info("bundle retention", "app", app.ID, "keep", app.KeepBundles, "deleted", res.Deleted)
	}
}
