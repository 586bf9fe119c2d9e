// Package schema defines the data Capstan's stats pipeline moves: the event
// on the wire, the JetStream streams that carry it and the ClickHouse
// tables that store it.
package schema

// Event is one device statistic as published to JetStream by ingest and
// inserted into ClickHouse by the consumer. Encoded as JSON (batch.go).
type Event struct {
	// ID is derived from the event's content so that a resent batch
	// deduplicates (its message's Nats-Msg-Id derives from the ids of
	// its events, BatchMsgID); timestamp-less events,
	// which devices never resend, also hash a per-request nonce.
	ID string `json:"id"`
	// ReceivedMs is the server receive time, epoch milliseconds.
	ReceivedMs int64 `json:"received_ms"`
	// ClientMs is the device's own timestamp, epoch milliseconds (0 = none).
	ClientMs int64 `json:"client_ms,omitempty"`

	AppID    string `json:"app_id"`
	DeviceID string `json:"device_id"` // lowercase
	Platform string `json:"platform"`
	Action   string `json:"action"`
	// VersionName is the bundle the event is about: for failures, the
	// failing bundle when the event says which (see ReportedVersion).
	VersionName    string `json:"version_name"`
	FileName       string `json:"file_name,omitempty"` // from "<version>:<file>"
	OldVersionName string `json:"old_version_name,omitempty"`
	VersionBuild   string `json:"version_build,omitempty"`
	VersionCode    string `json:"version_code,omitempty"`
	VersionOS      string `json:"version_os,omitempty"`
	PluginVersion  string `json:"plugin_version,omitempty"`
	CustomID       string `json:"custom_id,omitempty"`
	Channel        string `json:"channel,omitempty"`
	InstallSource  string `json:"install_source,omitempty"`
	KeyID          string `json:"key_id,omitempty"`
	IsEmulator     bool   `json:"is_emulator"`
	IsProd         bool   `json:"is_prod"`
	// ReportedVersion is the version the device sent when VersionName was
	// attributed to another bundle; "" when they are the same.
	ReportedVersion string `json:"reported_version,omitempty"`
	// Ignored marks an event kept but never counted as a failure: the
	// download_fail that plugins before 7.17.0 / 6.14.25 sent for every
	// "no update" answer.
	Ignored bool `json:"ignored,omitempty"`

	Metadata map[string]string `json:"metadata,omitempty"`
}
