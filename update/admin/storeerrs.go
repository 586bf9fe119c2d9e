package admin

import "github.com/capstan-io/capstan/update/release"

// The store's sentinel errors, named once so handlers read uniformly.
var (
	errStoreNotFound = release.ErrNotFound
	errStoreExists   = release.ErrExists
	errStoreInUse    = release.ErrInUse
	errStoreInvalid  = release.ErrInvalid
)
