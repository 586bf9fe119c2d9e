package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/capstan-io/capstan/schema"
)

// Fleet reads what devices reported, from ClickHouse; schema.FleetReader
// implements it.
type Fleet interface {
	Device(ctx context.Context, app, device string) (schema.DeviceState, error)
	Health(ctx context.Context, q schema.ReportQuery) ([]schema.ReportRow, error)
	Timeline(ctx context.Context, q schema.TimelineQuery) (schema.Timeline, error)
}

// Bounds of the health endpoints' parameters.
const (
	DefaultFleetSince = 24 * time.Hour
	DefaultFleetStep  = time.Hour
	MaxFleetSince     = 90 * 24 * time.Hour
	MaxFleetBuckets   = 1000
	// fleetTimeout bounds one ClickHouse read, under the admin port's
	// write deadline so the answer is an error body, not a cut connection.
	fleetTimeout = 20 * time.Second
)

// fleetWindow is the validated query of a health request.
type fleetWindow struct {
	since      time.Duration
	step       time.Duration
	channel    string
	includeDev bool
}

// parseFleetWindow validates since, channel, include_dev and, when
// withStep, step of a health request's query.
func parseFleetWindow(q url.Values, withStep bool) (fleetWindow, *apiError) {
	w := fleetWindow{since: DefaultFleetSince, step: DefaultFleetStep, channel: q.Get("channel")}
	if s := q.Get("since"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d > MaxFleetSince {
			return w, badRequest("invalid_since", fmt.Sprintf("since %q: want a positive duration of at most %s, such as 24h or 90m", s, fmtDuration(MaxFleetSince)))
		}
		w.since = d
	}
	if s := q.Get("step"); withStep && s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < time.Minute || d%time.Minute != 0 {
			return w, badRequest("invalid_step", fmt.Sprintf("step %q: want a whole number of minutes, at least 1m, such as 5m or 1h", s))
		}
		w.step = d
	}
	if s := q.Get("include_dev"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return w, badRequest("invalid_include_dev", fmt.Sprintf("include_dev %q: want true or false", s))
		}
		w.includeDev = b
	}
	return w, nil
}

// fmtDuration prints whole days as such ("90d"), other durations as Go does.
func fmtDuration(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// fleetError turns a Fleet failure into an answer: ClickHouse unreachable
// or slow is 503, a query it refused 502; both are stats_error.
func (a *API) fleetError(r *http.Request, err error) error {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return err
	}
	a.log.Warn("fleet read failed", "path", r.URL.Path, "err", err)
	switch code := schema.ErrorCode(err); {
	case errors.Is(err, schema.ErrConnect):
		return newError(http.StatusServiceUnavailable, "stats_error", fmt.Sprintf("ClickHouse is unreachable; try again later: %v", err))
	case errors.Is(err, context.DeadlineExceeded):
		return newError(http.StatusServiceUnavailable, "stats_error", fmt.Sprintf("ClickHouse did not answer within %s; try a shorter window", fleetTimeout))
	case code == 60 || code == 81: // UNKNOWN_TABLE, UNKNOWN_DATABASE
		return newError(http.StatusServiceUnavailable, "stats_error", "ClickHouse has no Capstan tables yet (the stats consumer creates them)")
	case code != 0:
		return newError(http.StatusBadGateway, "stats_error", fmt.Sprintf("ClickHouse refused the query: %v", err))
	}
	return newError(http.StatusServiceUnavailable, "stats_error", fmt.Sprintf("reading from ClickHouse failed; try again: %v", err))
}

func (a *API) fleetOrUnavailable() (Fleet, error) {
	if a.fleet == nil {
		return nil, newError(http.StatusServiceUnavailable, "stats_unavailable", "this server reads no ClickHouse (start capstan serve with --clickhouse-url)")
	}
	return a.fleet, nil
}

// getDevice answers what the release state and ClickHouse know of one
// device: its pin, last reported state and newest events.
func (a *API) getDevice(w http.ResponseWriter, r *http.Request) error {
	snap, app, dev, err := a.deviceOf(r)
	if err != nil {
		return err
	}
	fleet, err := a.fleetOrUnavailable()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), fleetTimeout)
	defer cancel()
	st, err := fleet.Device(ctx, app.ID, dev)
	if err != nil {
		return a.fleetError(r, err)
	}
	pin, pinned := snap.Override(app.ID, dev)
	if !st.Known && !pinned {
		return notFound("unknown_device", fmt.Sprintf("app %q has no device %q: it reported no stats and is not pinned", app.ID, dev))
	}
	writeJSON(w, http.StatusOK, deviceInfo(app.ID, dev, pin, st))
	return nil
}

// deviceInfo shapes the answer of getDevice.
func deviceInfo(app, dev, pin string, st schema.DeviceState) DeviceInfo {
	d := DeviceInfo{App: app, DeviceID: dev, Pin: pin, RecentEvents: st.Events}
	if d.RecentEvents == nil {
		d.RecentEvents = []schema.DeviceEvent{}
	}
	if !st.Known {
		return d
	}
	d.Known = true
	d.LastSeen = st.LastSeen.UTC().Format(time.RFC3339Nano)
	d.Platform, d.VersionName, d.VersionBuild = st.Platform, st.VersionName, st.VersionBuild
	d.PluginVersion, d.VersionOS, d.Channel, d.CustomID = st.PluginVersion, st.VersionOS, st.Channel, st.CustomID
	d.IsProd, d.IsEmulator = st.IsProd, st.IsEmulator
	return d
}

// getHealth is `capstan stats --json` for one app.
func (a *API) getHealth(w http.ResponseWriter, r *http.Request) error {
	_, app, err := a.appOf(r)
	if err != nil {
		return err
	}
	win, aerr := parseFleetWindow(r.URL.Query(), false)
	if aerr != nil {
		return aerr
	}
	fleet, err := a.fleetOrUnavailable()
	if err != nil {
		return err
	}
	now := a.now()
	q := schema.ReportQuery{App: app.ID, Channel: win.channel, Since: now.Add(-win.since), Until: now, IncludeDev: win.includeDev}
	ctx, cancel := context.WithTimeout(r.Context(), fleetTimeout)
	defer cancel()
	rows, err := fleet.Health(ctx, q)
	if err != nil {
		return a.fleetError(r, err)
	}
	if rows == nil {
		rows = []schema.ReportRow{}
	}
	writeJSON(w, http.StatusOK, HealthReport{Since: q.Since.UTC(), Until: q.Until.UTC(), Versions: rows})
	return nil
}

// getTimeline is the app's health per version in buckets of ?step.
func (a *API) getTimeline(w http.ResponseWriter, r *http.Request) error {
	_, app, err := a.appOf(r)
	if err != nil {
		return err
	}
	win, aerr := parseFleetWindow(r.URL.Query(), true)
	if aerr != nil {
		return aerr
	}
	now := a.now()
	since := now.Add(-win.since)
	if _, n := schema.TimelineBuckets(since, now, win.step); n > MaxFleetBuckets {
		return badRequest("too_many_buckets", fmt.Sprintf("since %s in steps of %s is %d buckets; at most %d (use a larger step)", win.since, win.step, n, MaxFleetBuckets))
	}
	fleet, err := a.fleetOrUnavailable()
	if err != nil {
		return err
	}
	q := schema.TimelineQuery{ReportQuery: schema.ReportQuery{App: app.ID, Channel: win.channel, Since: since, Until: now, IncludeDev: win.includeDev}, Step: win.step}
	ctx, cancel := context.WithTimeout(r.Context(), fleetTimeout)
	defer cancel()
	tl, err := fleet.Timeline(ctx, q)
	if err != nil {
		return a.fleetError(r, err)
	}
	writeJSON(w, http.StatusOK, tl)
	return nil
}
