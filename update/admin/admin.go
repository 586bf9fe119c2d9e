// Package admin serves Capstan's authenticated admin API (apps, bundles,
// channels, device overrides, tokens) and the Go client the CLI uses.
package admin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/capstan-io/capstan/audit"
	"github.com/capstan-io/capstan/rollout"
	"github.com/capstan-io/capstan/update/bundlezip"
	"github.com/capstan-io/capstan/update/release"
)

// Store is the part of the release store the admin API writes through.
// Writes return once the change is visible in Snapshot.
type Store interface {
	CreateApp(ctx context.Context, a release.App) error
	DeleteApp(ctx context.Context, id string) error
	PutChannel(ctx context.Context, c release.Channel) error
	// UpdateChannel writes fn's change of the channel as the bucket has it
	// (nil: new), re-running fn when another write got in first.
	UpdateChannel(ctx context.Context, app, name string, fn func(cur *release.Channel) (release.Channel, error)) (release.Channel, bool, error)
	DeleteChannel(ctx context.Context, app, name string) error
	// CreateBundle stores b and its zip (nil when b.ExternalURL is set).
	CreateBundle(ctx context.Context, b release.Bundle, zip io.Reader) error
	// CreateBundleFiles is CreateBundle for a delta bundle whose manifest
	// files Capstan stores, shared by digest with other bundles.
	CreateBundleFiles(ctx context.Context, b release.Bundle, zip io.Reader, files []release.FileSource) error
	DeleteBundle(ctx context.Context, app, version string) error
	PutOverride(ctx context.Context, o release.Override) error
	DeleteOverride(ctx context.Context, app, device string) error
	// CreateToken stores a token with a role; ErrExists when its name is
	// taken, whatever other front took it.
	CreateToken(ctx context.Context, t release.Token) error
	// RevokeToken deletes the tokens answering to name; ErrNotFound when
	// none does.
	RevokeToken(ctx context.Context, name string) ([]release.Token, error)
	// TouchToken records a token's use at a time; it never brings back
	// a revoked token.
	TouchToken(ctx context.Context, hashHex string, at time.Time) error
	Snapshot() *release.Snapshot
}

// Config configures the admin API.
type Config struct {
	Store Store
	// AdminToken is the start-up token (--admin-token); only its SHA-256
	// is kept. Empty means only tokens known to the store are accepted.
	AdminToken string
	// MaxUploadBytes bounds an uploaded zip (default 512 MiB).
	MaxUploadBytes int64
	// Limits bound what an uploaded zip may unpack to (default
	// bundlezip.DefaultLimits).
	Limits bundlezip.Limits
	// TempDir receives uploads while they are checked ("" = os.TempDir).
	TempDir string
	Logger  *slog.Logger
	// Audit receives an entry for every release change (nil: none kept).
	Audit audit.Recorder
	// GuardDefaults are the health gate's settings before a channel's
	// overrides, shown by the rollout status.
	GuardDefaults rollout.Settings
	// GuardStatus reads the guard's last reading of a rollout (nil: none).
	GuardStatus GuardStatus
	// Fleet reads devices and release health from ClickHouse (nil: those
	// endpoints answer 503 stats_unavailable).
	Fleet Fleet
}

// DefaultMaxUploadBytes is used when Config.MaxUploadBytes is 0.
const DefaultMaxUploadBytes = 512 << 20

// API is the admin HTTP API.
type API struct {
	store     Store
	adminHash []byte // SHA-256 of the start-up token, nil when none
	maxUpload int64
	limits    bundlezip.Limits
	tempDir   string
	log       *slog.Logger
	now       func() time.Time
	audit     audit.Recorder

	guardDefaults rollout.Settings
	guardStatus   GuardStatus
	fleet         Fleet

	usage usage
}

// New builds the API from cfg.
func New(cfg Config) *API {
	a := &API{
		store:     cfg.Store,
		maxUpload: cfg.MaxUploadBytes,
		limits:    cfg.Limits,
		tempDir:   cfg.TempDir,
		log:       cfg.Logger,
		now:       func() time.Time { return time.Now().UTC() },
		audit:     recorderOf(cfg.Audit),

		guardDefaults: cfg.GuardDefaults,
		guardStatus:   cfg.GuardStatus,
		fleet:         cfg.Fleet,
	}
	if a.guardDefaults == (rollout.Settings{}) {
		a.guardDefaults = rollout.DefaultSettings()
	}
	if cfg.AdminToken != "" {
		h := sha256.Sum256([]byte(cfg.AdminToken))
		a.adminHash = h[:]
	}
	if a.maxUpload <= 0 {
		a.maxUpload = DefaultMaxUploadBytes
	}
	if a.limits == (bundlezip.Limits{}) {
		a.limits = bundlezip.DefaultLimits()
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	return a
}

// Handler returns the whole API as one handler answering JSON 404/405;
// mount it with r.Mount("/api/v1", api.Handler()).
func (a *API) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(a.identify)
	// Without a valid token, unknown paths and methods answer 401 too, so
	// they reveal nothing.
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := a.authenticated(w, r); ok {
			writeError(w, notFound("not_found", fmt.Sprintf("no admin endpoint %s", r.URL.Path)))
		}
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := a.authenticated(w, r); ok {
			writeError(w, newError(http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path)))
		}
	})
	a.routes(r)
	return r
}

// Routes registers the admin endpoints (routeTable) on r relative to the
// API root, e.g. r.Route("/api/v1", api.Routes). It adds no 404/405
// handlers; Handler does.
func (a *API) Routes(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(a.identify)
		a.routes(r)
	})
}

// handle adapts a handler returning an error; an *apiError is answered
// as is, store sentinels get their status, anything else is logged.
func (a *API) handle(fn func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := fn(w, r)
		if err == nil {
			return
		}
		writeError(w, a.toAPIError(r, err))
	}
}

func (a *API) toAPIError(r *http.Request, err error) *apiError {
	var ae *apiError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &mbe):
		return newError(http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body larger than %d bytes", mbe.Limit))
	case errors.Is(err, errStoreNotFound):
		return notFound("not_found", err.Error())
	case errors.Is(err, errStoreExists):
		return conflict("exists", err.Error())
	case errors.Is(err, errStoreInUse):
		return conflict("in_use", err.Error())
	case errors.Is(err, errStoreInvalid):
		return badRequest("invalid", err.Error())
	case isTooLarge(err):
		return a.recordTooLarge(err)
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this answer.
		return newError(499, "canceled", "request canceled")
	}
	a.log.Error("admin request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	return newError(http.StatusServiceUnavailable, "store_unavailable", "the release store could not complete the request; try again")
}

func hashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}
