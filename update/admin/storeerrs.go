package admin

import (
	"errors"
	"fmt"

	"github.com/capstan-io/capstan/update/release"
)

// The store's sentinel errors, named once so handlers read uniformly.
var (
	errStoreNotFound = release.ErrNotFound
	errStoreExists   = release.ErrExists
	errStoreInUse    = release.ErrInUse
	errStoreInvalid  = release.ErrInvalid
)

// storeConflict is the 409 of a write the store refused because of what
// another write (possibly through another front, a moment before) left:
// the store checks every invariant at commit, so these hold whatever the
// admin's own snapshot showed. nil for any other error.
func storeConflict(err error) *apiError {
	switch {
	case errors.Is(err, release.ErrPublicConflict):
		return conflict("public_channel_conflict", fmt.Sprintf("%v; make it private (or disable the platform on one of them) first, so each device has one default channel", err))
	case errors.Is(err, release.ErrChannelInUse):
		return conflict("channel_in_use", fmt.Sprintf("%v; unpin them (capstan device unset-channel) first", err))
	case errors.Is(err, release.ErrInUse):
		return conflict("bundle_in_use", fmt.Sprintf("%v; point the channel elsewhere first", err))
	case errors.Is(err, release.ErrAppDeleted):
		return conflict("app_deleted", fmt.Sprintf("the app was deleted while this change was being made: %v", err))
	case errors.Is(err, release.ErrConcurrent):
		return conflict("concurrent_change", fmt.Sprintf("other changes to the app kept landing first; retry: %v", err))
	}
	return nil
}
