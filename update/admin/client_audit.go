package admin

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/capstan-io/capstan/audit"
	"github.com/capstan-io/capstan/update/release"
)

// Audit lists the newest audit entries q selects, oldest first.
func (c *Client) Audit(ctx context.Context, q AuditQuery) ([]audit.Entry, error) {
	v := url.Values{}
	for k, s := range map[string]string{"app": q.App, "channel": q.Channel, "since": q.Since} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	u := c.url("audit")
	if len(v) > 0 {
		u += "?" + v.Encode()
	}
	var out []audit.Entry
	err := c.doJSON(ctx, http.MethodGet, u, nil, &out)
	return out, err
}

// UpdateApp changes the fields of an app set in req (PATCH /apps/{app}).
func (c *Client) UpdateApp(ctx context.Context, id string, req UpdateAppRequest) (release.App, error) {
	var out release.App
	err := c.doJSON(ctx, http.MethodPatch, c.url("apps", id), req, &out)
	return out, err
}
