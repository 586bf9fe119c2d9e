package schema

import (
	"context"
	"fmt"
	"time"
)

// DefaultDeviceEvents is how many recent events a device lookup returns
// when DeviceQuery.Events is 0.
const DefaultDeviceEvents = 50

// DeviceQuery names one device of one app.
type DeviceQuery struct {
	Database string // "" = the connection's database
	App      string
	DeviceID string // lowercase, as ingest stores it
	Events   int    // most recent events returned (DefaultDeviceEvents when 0)
}

// DeviceState is the latest state ClickHouse holds for a device: the row
// of capstan_devices (what it last said it runs) and its recent events.
type DeviceState struct {
	// Known is false when ClickHouse has neither a state row nor an event.
	Known         bool
	LastSeen      time.Time
	Platform      string
	VersionName   string
	VersionBuild  string
	PluginVersion string
	VersionOS     string
	Channel       string
	CustomID      string
	IsProd        bool
	IsEmulator    bool
	// Events are the device's distinct events, newest first.
	Events []DeviceEvent
}

// DeviceEvent is one distinct event of a device (capstan_events columns
// but metadata).
type DeviceEvent struct {
	EventID    string    `json:"event_id"`
	ReceivedAt time.Time `json:"received_at"`
	// ClientTime is the device's own timestamp; nil when it sent none.
	ClientTime     *time.Time `json:"client_time,omitempty"`
	Action         string     `json:"action"`
	VersionName    string     `json:"version_name"`
	OldVersionName string     `json:"old_version_name"`
	// ReportedVersionName is what the device sent when version_name was
	// attributed to the failing bundle instead ("" when the same).
	ReportedVersionName string `json:"reported_version_name"`
	FileName            string `json:"file_name"`
	VersionBuild        string `json:"version_build"`
	VersionCode         string `json:"version_code"`
	VersionOS           string `json:"version_os"`
	PluginVersion       string `json:"plugin_version"`
	Platform            string `json:"platform"`
	Channel             string `json:"channel"`
	CustomID            string `json:"custom_id"`
	InstallSource       string `json:"install_source"`
	KeyID               string `json:"key_id"`
	IsProd              bool   `json:"is_prod"`
	IsEmulator          bool   `json:"is_emulator"`
	// Failure is IsFailureAction(action) and not Ignored.
	Failure bool `json:"failure"`
	// Ignored marks an event kept but never counted (legacy download_fail).
	Ignored bool `json:"ignored"`
}

// deviceWhere selects q's device; app_id leads both tables' sort keys.
func deviceWhere(q DeviceQuery) string {
	return "app_id = " + Quote(q.App) + " AND device_id = " + Quote(q.DeviceID)
}

// DeviceStateSQL reads q's row of capstan_devices. FINAL keeps the row
// with the newest last_seen however many parts hold one (a redelivered
// event writes the same row again). Columns: platform, version_name,
// version_build, plugin_version, version_os, channel, custom_id, is_prod,
// is_emulator, last_seen.
func DeviceStateSQL(q DeviceQuery) string {
	return `SELECT platform, version_name, version_build, plugin_version, version_os, channel, custom_id, is_prod, is_emulator, last_seen
FROM ` + qualify(q.Database, DevicesTable) + ` FINAL
WHERE ` + deviceWhere(q) + `
ORDER BY last_seen DESC
LIMIT 1`
}

// DeviceEventsSQL reads q's newest distinct events; the events of one
// request share received_at, so the device's own time orders them next.
// Grouping by event_id
// counts a row inserted twice (redelivery, retried batch) once before
// parts merge; its copies are identical, so any() picks either. Aliases
// differ from the column names: ClickHouse aliases are visible in the
// whole query.
func DeviceEventsSQL(q DeviceQuery) string {
	n := q.Events
	if n <= 0 {
		n = DefaultDeviceEvents
	}
	return fmt.Sprintf(`SELECT
    event_id,
    any(received_at) AS e_received_at,
    any(client_time) AS e_client_time,
    any(action) AS e_action,
    any(version_name) AS e_version_name,
    any(old_version_name) AS e_old_version_name,
    any(reported_version_name) AS e_reported_version_name,
    any(file_name) AS e_file_name,
    any(version_build) AS e_version_build,
    any(version_code) AS e_version_code,
    any(version_os) AS e_version_os,
    any(plugin_version) AS e_plugin_version,
    any(platform) AS e_platform,
    any(channel) AS e_channel,
    any(custom_id) AS e_custom_id,
    any(install_source) AS e_install_source,
    any(key_id) AS e_key_id,
    any(is_prod) AS e_is_prod,
    any(is_emulator) AS e_is_emulator,
    any(ignored) AS e_ignored
FROM %s
WHERE %s
GROUP BY event_id
ORDER BY e_received_at DESC, e_client_time DESC, event_id DESC
LIMIT %d`, qualify(q.Database, EventsTable), deviceWhere(q), n)
}

// Device reads what ClickHouse knows of one device.
func Device(ctx context.Context, conn Querier, q DeviceQuery) (DeviceState, error) {
	var row *DeviceState
	rows, err := conn.Query(ctx, DeviceStateSQL(q))
	if err != nil {
		return DeviceState{}, fmt.Errorf("device query: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s DeviceState
		var prod, emu uint8
		if err := rows.Scan(&s.Platform, &s.VersionName, &s.VersionBuild, &s.PluginVersion, &s.VersionOS, &s.Channel, &s.CustomID,
			&prod, &emu, &s.LastSeen); err != nil {
			return DeviceState{}, fmt.Errorf("device row: %w", err)
		}
		s.IsProd, s.IsEmulator = prod == 1, emu == 1
		row = &s
	}
	if err := rows.Err(); err != nil {
		return DeviceState{}, fmt.Errorf("device rows: %w", err)
	}
	rows.Close()

	erows, err := conn.Query(ctx, DeviceEventsSQL(q))
	if err != nil {
		return DeviceState{}, fmt.Errorf("device events query: %w", err)
	}
	defer erows.Close()
	events := []DeviceEvent{}
	for erows.Next() {
		var e DeviceEvent
		var client time.Time
		var prod, emu, ignored uint8
		if err := erows.Scan(&e.EventID, &e.ReceivedAt, &client, &e.Action, &e.VersionName, &e.OldVersionName, &e.ReportedVersionName,
			&e.FileName, &e.VersionBuild, &e.VersionCode, &e.VersionOS, &e.PluginVersion, &e.Platform, &e.Channel, &e.CustomID,
			&e.InstallSource, &e.KeyID, &prod, &emu, &ignored); err != nil {
			return DeviceState{}, fmt.Errorf("device event row: %w", err)
		}
		e.IsProd, e.IsEmulator, e.Ignored = prod == 1, emu == 1, ignored == 1
		if client.Unix() > 0 {
			c := client.UTC()
			e.ClientTime = &c
		}
		e.ReceivedAt = e.ReceivedAt.UTC()
		e.Failure = IsFailureAction(e.Action) && !e.Ignored
		events = append(events, e)
	}
	if err := erows.Err(); err != nil {
		return DeviceState{}, fmt.Errorf("device event rows: %w", err)
	}
	return MergeDevice(row, events), nil
}

// MergeDevice shapes a device's state row (nil when capstan_devices has
// none) and its events, newest first. The row says what the device runs;
// a device that only sent failures or download progress has no row, and
// then its newest event describes it, with no version it runs. LastSeen
// is the newest of the row and the events.
func MergeDevice(row *DeviceState, events []DeviceEvent) DeviceState {
	if events == nil {
		events = []DeviceEvent{}
	}
	var s DeviceState
	switch {
	case row != nil:
		s = *row
		s.Known = true
	case len(events) > 0:
		e := events[0]
		s = DeviceState{Known: true, Platform: e.Platform, VersionBuild: e.VersionBuild, PluginVersion: e.PluginVersion,
			VersionOS: e.VersionOS, Channel: e.Channel, CustomID: e.CustomID, IsProd: e.IsProd, IsEmulator: e.IsEmulator}
	}
	if len(events) > 0 && events[0].ReceivedAt.After(s.LastSeen) {
		s.LastSeen = events[0].ReceivedAt
	}
	if s.Known {
		s.LastSeen = s.LastSeen.UTC()
	}
	s.Events = events
	return s
}
