package consumer

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/capstan-io/capstan/schema"
)

// columns appends a batch's rows to a prepared insert column by column:
// one typed slice per column instead of one []any per row, which saves
// boxing every value (about twenty allocations a row). The values are
// those of schema.EventValues (TestColumnsMatchEventValues), in
// schema.EventColumns order. Its buffers are reused from batch to batch;
// only the inserter uses it.
type columns struct {
	str   []string
	times []time.Time
	u8    []uint8
	maps  []map[string]string
	// Legacy metadata: every row's sorted keys and their values, one
	// row after the other; arrays holds each row's part.
	keys, vals   []string
	arrays       [][]string
	metaPrepared bool
}

// errUnknownColumn means schema.EventColumns names a column columns
// cannot fill; the row-by-row path still can.
var errUnknownColumn = errors.New("no column-wise appender")

// stringColumns read one String column from an event.
var stringColumns = map[string]func(*schema.Event) string{
	"event_id":              func(e *schema.Event) string { return e.ID },
	"app_id":                func(e *schema.Event) string { return e.AppID },
	"device_id":             func(e *schema.Event) string { return e.DeviceID },
	"platform":              func(e *schema.Event) string { return e.Platform },
	"action":                func(e *schema.Event) string { return e.Action },
	"version_name":          func(e *schema.Event) string { return e.VersionName },
	"file_name":             func(e *schema.Event) string { return e.FileName },
	"old_version_name":      func(e *schema.Event) string { return e.OldVersionName },
	"version_build":         func(e *schema.Event) string { return e.VersionBuild },
	"version_code":          func(e *schema.Event) string { return e.VersionCode },
	"version_os":            func(e *schema.Event) string { return e.VersionOS },
	"plugin_version":        func(e *schema.Event) string { return e.PluginVersion },
	"custom_id":             func(e *schema.Event) string { return e.CustomID },
	"channel":               func(e *schema.Event) string { return e.Channel },
	"install_source":        func(e *schema.Event) string { return e.InstallSource },
	"key_id":                func(e *schema.Event) string { return e.KeyID },
	"reported_version_name": func(e *schema.Event) string { return e.ReportedVersion },
}

// eventTime is a DateTime(64) column value as schema.EventValues makes
// it: UTC, whole seconds on legacy servers.
func eventTime(ms int64, flavor schema.Flavor) time.Time {
	t := time.UnixMilli(ms).UTC()
	if flavor == schema.FlavorLegacy {
		t = t.Truncate(time.Second)
	}
	return t
}

var emptyMetadata = map[string]string{}

// append adds rows to b. On error b is unusable (abort it); the caller
// can still find the offending row with schema.AppendEvent.
func (c *columns) append(b driver.Batch, rows []*item, flavor schema.Flavor) error {
	c.metaPrepared = false
	for i, name := range schema.EventColumns(flavor) {
		v, err := c.column(name, rows, flavor)
		if err != nil {
			return err
		}
		col := b.Column(i)
		switch v := v.(type) {
		// Map and Array columns take rows one at a time anyway.
		case []map[string]string:
			for _, m := range v {
				if err := col.AppendRow(m); err != nil {
					return fmt.Errorf("column %s: %w", name, err)
				}
			}
		case [][]string:
			for _, a := range v {
				if err := col.AppendRow(a); err != nil {
					return fmt.Errorf("column %s: %w", name, err)
				}
			}
		default:
			if err := col.Append(v); err != nil {
				return fmt.Errorf("column %s: %w", name, err)
			}
		}
	}
	return nil
}

// column returns the values of the named column for rows, in one of the
// column's buffers (valid until the next call for the same kind).
func (c *columns) column(name string, rows []*item, flavor schema.Flavor) (any, error) {
	switch name {
	case "received_at", "client_time":
		c.times = c.times[:0]
		for _, it := range rows {
			ms := it.ev.ReceivedMs
			if name == "client_time" {
				ms = it.ev.ClientMs
			}
			c.times = append(c.times, eventTime(ms, flavor))
		}
		return c.times, nil
	case "is_emulator", "is_prod", "ignored":
		c.u8 = c.u8[:0]
		for _, it := range rows {
			var f bool
			switch name {
			case "is_prod":
				f = it.ev.IsProd
			case "is_emulator":
				f = it.ev.IsEmulator
			default:
				f = it.ev.Ignored
			}
			c.u8 = append(c.u8, b2u(f))
		}
		return c.u8, nil
	case "metadata":
		c.maps = c.maps[:0]
		for _, it := range rows {
			m := it.ev.Metadata
			if m == nil {
				m = emptyMetadata
			}
			c.maps = append(c.maps, m)
		}
		return c.maps, nil
	case "metadata_keys", "metadata_values":
		c.prepareMetadata(rows)
		c.arrays = c.arrays[:0]
		from := 0
		for _, it := range rows {
			to := from + len(it.ev.Metadata)
			if name == "metadata_keys" {
				c.arrays = append(c.arrays, c.keys[from:to:to])
			} else {
				c.arrays = append(c.arrays, c.vals[from:to:to])
			}
			from = to
		}
		return c.arrays, nil
	}
	get, ok := stringColumns[name]
	if !ok {
		return nil, fmt.Errorf("column %s: %w", name, errUnknownColumn)
	}
	c.str = c.str[:0]
	for _, it := range rows {
		c.str = append(c.str, get(it.ev))
	}
	return c.str, nil
}

// prepareMetadata fills keys and vals for the legacy parallel arrays:
// each row's keys sorted, then their values, once per batch.
func (c *columns) prepareMetadata(rows []*item) {
	if c.metaPrepared {
		return
	}
	c.metaPrepared = true
	c.keys, c.vals = c.keys[:0], c.vals[:0]
	for _, it := range rows {
		from := len(c.keys)
		for k := range it.ev.Metadata {
			c.keys = append(c.keys, k)
		}
		slices.Sort(c.keys[from:])
		for _, k := range c.keys[from:] {
			c.vals = append(c.vals, it.ev.Metadata[k])
		}
	}
}

// release drops references to the last batch's values.
func (c *columns) release() {
	clear(c.str[:cap(c.str)])
	clear(c.maps[:cap(c.maps)])
	clear(c.keys[:cap(c.keys)])
	clear(c.vals[:cap(c.vals)])
	clear(c.arrays[:cap(c.arrays)])
	c.metaPrepared = false
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}
