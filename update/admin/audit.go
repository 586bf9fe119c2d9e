package admin

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/capstan-io/capstan/audit"
	"github.com/capstan-io/capstan/update/release"
)

// The audit log of release changes: who (the admin token's name) changed
// what, appended after every successful write and listed at GET /audit.

// ActorAdmin is the actor of changes made with the start-up --admin-token.
const ActorAdmin = "token:" + StartupTokenName

// Actor is who makes the request: "token:<name>" of the admin token that
// authenticated it (the first 8 hex digits of its hash for a legacy token
// without a name), ActorAdmin for the start-up token, "" outside the
// admin API.
func Actor(ctx context.Context) string {
	if p, ok := principalFrom(ctx); ok {
		return p.actor()
	}
	return ""
}

// recorderOf drops a nil *audit.Log held in a non-nil interface.
func recorderOf(r audit.Recorder) audit.Recorder {
	if l, ok := r.(*audit.Log); ok && l == nil {
		return nil
	}
	return r
}

// auditTimeout bounds one append; the change is already made, so a client
// that hangs up does not cancel it.
const auditTimeout = 5 * time.Second

// record appends e to the audit log (none configured: nothing) with the
// request's actor. The change it describes is already made, so a failed
// append is logged, never answered as an error.
func (a *API) record(r *http.Request, e audit.Entry) {
	if a.audit == nil {
		return
	}
	if e.Actor == "" {
		e.Actor = Actor(r.Context())
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), auditTimeout)
	defer cancel()
	if err := a.audit.Append(ctx, e); err != nil {
		a.log.Error("audit append failed", "change", e.Change, "app", e.App, "channel", e.Channel, "bundle", e.Bundle, "actor", e.Actor, "err", err)
	}
}

// recordChannelSet records a successful channel PUT: what the body set.
func (a *API) recordChannelSet(r *http.Request, c release.Channel, p ChannelPatch, created bool) {
	a.record(r, audit.Entry{App: c.AppID, Channel: c.Name, Bundle: c.Bundle, Change: audit.ChangeChannelSet, Detail: channelDetail(p, created)})
}

// recordChannelDelete records a successful channel delete.
func (a *API) recordChannelDelete(r *http.Request, app, name string) {
	a.record(r, audit.Entry{App: app, Channel: name, Change: audit.ChangeChannelDelete, Detail: "channel deleted"})
}

// channelDetail lists the fields a channel PUT set, bundle and rollout
// first: "bundle=1.1.0 rollout_bundle=1.2.0 rollout_percent=10 public=true".
func channelDetail(p ChannelPatch, created bool) string {
	var parts []string
	if created {
		parts = append(parts, "created")
	}
	v := reflect.ValueOf(p)
	t := v.Type()
	for i := range t.NumField() {
		f := v.Field(i)
		if f.Kind() != reflect.Pointer || f.IsNil() {
			continue
		}
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" {
			name = t.Field(i).Name
		}
		parts = append(parts, name+"="+detailValue(f.Elem()))
	}
	if len(parts) == 0 || (created && len(parts) == 1) {
		parts = append(parts, "no fields")
	}
	return strings.Join(parts, " ")
}

func detailValue(v reflect.Value) string {
	switch v.Kind() {
	case reflect.String:
		if v.String() == "" {
			return `""`
		}
		return v.String()
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Slice:
		return fmt.Sprintf("[%d]", v.Len())
	}
	return "set"
}

// AuditQuery selects audit entries for Client.Audit.
type AuditQuery struct {
	App     string
	Channel string
	// Since is an RFC 3339 time or a duration back from now ("24h",
	// "7d"); "" = from the start.
	Since string
	// Limit is how many of the newest entries (0 = 100, at most 1000).
	Limit int
}

// UpdateAppRequest is the body of PATCH /apps/{app}: only the fields
// present change; "" clears webhook_url.
type UpdateAppRequest struct {
	Name       *string `json:"name,omitempty"`
	WebhookURL *string `json:"webhook_url,omitempty"`
	// KeepBundles sets the app's bundle retention (0 turns it off).
	KeepBundles *int `json:"keep_bundles,omitempty"`
}

// auditLister is the part of the audit log GET /audit reads.
type auditLister interface {
	List(ctx context.Context, q audit.Query) ([]audit.Entry, error)
}

// parseSince reads ?since=: an RFC 3339 time, or a positive duration back
// from now (Go syntax, plus whole days as "7d").
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 100000 {
			return time.Time{}, badRequest("invalid_since", fmt.Sprintf("since %q: want an RFC 3339 time or a duration such as 24h or 7d", s))
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		d, err = time.ParseDuration(s)
		if err != nil || d <= 0 {
			return time.Time{}, badRequest("invalid_since", fmt.Sprintf("since %q: want an RFC 3339 time or a duration such as 24h or 7d", s))
		}
	}
	return now.Add(-d), nil
}

// listAudit is GET /audit?app=&channel=&since=&limit=: the newest
// matching entries, oldest first.
func (a *API) listAudit(w http.ResponseWriter, r *http.Request) error {
	l, ok := a.audit.(auditLister)
	if !ok || a.audit == nil {
		return newError(http.StatusServiceUnavailable, "audit_unavailable", "this server keeps no audit log")
	}
	qv := r.URL.Query()
	q := audit.Query{App: qv.Get("app"), Channel: qv.Get("channel")}
	since, err := parseSince(qv.Get("since"), a.now())
	if err != nil {
		return err
	}
	q.Since = since
	if s := qv.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > audit.MaxLimit {
			return badRequest("invalid_limit", fmt.Sprintf("limit %q: want a whole number from 1 to %d", s, audit.MaxLimit))
		}
		q.Limit = n
	}
	p, _ := principalFrom(r.Context())
	if q.App != "" && !p.allows(q.App) {
		return forbidden("app_not_allowed", fmt.Sprintf("token %s may not read the audit log of app %q; it is limited to %s", p.name, q.App, strings.Join(p.apps, ", ")))
	}
	entries, err := listAuditOf(r.Context(), l, q, p)
	if err != nil {
		if r.Context().Err() != nil {
			return r.Context().Err()
		}
		a.log.Error("audit list failed", "err", err)
		return newError(http.StatusServiceUnavailable, "audit_unavailable", "the audit log could not be read; try again")
	}
	if entries == nil {
		entries = []audit.Entry{}
	}
	writeJSON(w, http.StatusOK, entries)
	return nil
}

// maxWebhookURLLen bounds App.WebhookURL.
const maxWebhookURLLen = 2048

func validWebhookURL(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > maxWebhookURLLen {
		return badRequest("invalid_webhook_url", fmt.Sprintf("webhook_url longer than %d characters", maxWebhookURLLen))
	}
	return validHTTPURL("webhook_url", s)
}

// listAuditOf lists q's entries, only those of p's apps when p is limited
// to some: each app's newest q.Limit, merged, newest q.Limit of all.
func listAuditOf(ctx context.Context, l auditLister, q audit.Query, p principal) ([]audit.Entry, error) {
	if !p.scoped() || q.App != "" {
		return l.List(ctx, q)
	}
	var all []audit.Entry
	for _, app := range p.apps {
		qa := q
		qa.App = app
		got, err := l.List(ctx, qa)
		if err != nil {
			return nil, err
		}
		all = append(all, got...)
	}
	return newestAudit(all, q.Limit), nil
}

// newestAudit sorts entries by sequence and keeps the newest limit
// (0: audit.DefaultLimit).
func newestAudit(entries []audit.Entry, limit int) []audit.Entry {
	if limit <= 0 {
		limit = audit.DefaultLimit
	}
	slices.SortFunc(entries, func(x, y audit.Entry) int { return cmp.Compare(x.Seq, y.Seq) })
	if len(entries) > limit {
		entries = entries[len(entries)-limit:]
	}
	return entries
}
