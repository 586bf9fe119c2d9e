package schema

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"iter"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/capstan-io/capstan/internal/jsonwire"
)

// Events stream message formats. The version is in the EventsHeader
// header; a message without it is version 1.
//
//   - Version 1: one event as a JSON object (what ingest published before
//     batches; still read so a stream need not be drained to upgrade).
//   - Version 2: the events of one request (and one app), each a JSON
//     object as in version 1, separated by '\n'. JSON never holds a raw
//     newline, so a bad record cannot swallow its neighbours.
const (
	EventsHeader   = "Capstan-Events"
	EventsVersion1 = 1
	EventsVersion2 = 2
)

// BatchSeparator ends every record of a version 2 body but the last.
const BatchSeparator = '\n'

// MaxBatchBytes is where ingest starts a new message: well under the
// stream's MaxMsgSize and NATS's default 1 MiB max_payload even with the
// event that crosses it (ingest's caps keep one under ~420 KiB escaped).
const MaxBatchBytes = 256 << 10

// MessageVersion is the format of an events stream message.
func MessageVersion(h nats.Header) (int, error) {
	v := h.Get(EventsHeader)
	if v == "" {
		return EventsVersion1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || (n != EventsVersion1 && n != EventsVersion2) {
		return 0, fmt.Errorf("unknown %s version %q", EventsHeader, v)
	}
	return n, nil
}

// AppendBatchEvent appends ev as the next record of a version 2 body b.
func AppendBatchEvent(b []byte, ev *Event, keys []string) ([]byte, []string) {
	if len(b) > 0 {
		b = append(b, BatchSeparator)
	}
	return AppendEventJSON(b, ev, keys)
}

// BatchRecords calls fn with every record of a version 2 body, in order.
// An empty body, or an empty line, is an empty record (which no decoder
// accepts), so a damaged body is never silently shorter.
func BatchRecords(body []byte, fn func(index int, rec []byte)) {
	for i := 0; ; i++ {
		rec, rest, found := bytes.Cut(body, []byte{BatchSeparator})
		fn(i, rec)
		if !found {
			return
		}
		body = rest
	}
}

// DecodeBatch decodes a version 2 body with encoding/json (tests and
// tools; the consumer decodes record by record).
func DecodeBatch(body []byte) ([]Event, error) {
	var out []Event
	var err error
	BatchRecords(body, func(i int, rec []byte) {
		if err != nil {
			return
		}
		var ev Event
		if e := json.Unmarshal(rec, &ev); e != nil {
			err = fmt.Errorf("record %d: %w", i, e)
			return
		}
		out = append(out, ev)
	})
	return out, err
}

// BatchMsgID is the Nats-Msg-Id of a message holding the events with
// ids, in order: "r" and the first 16 bytes of SHA-256 over the ids
// separated by '\n', in hex. An exact resend of a request has the same
// events and so the same id, which JetStream drops.
func BatchMsgID(ids iter.Seq[string]) string {
	var b BatchMsgIDBuilder
	for id := range ids {
		b.Add(id)
	}
	return b.ID()
}

// BatchMsgIDBuilder computes a BatchMsgID from ids added one by one. Its
// buffer is kept across Reset, so a pooled builder does not allocate
// (BatchMsgID's iterator would move its buffer to the heap).
type BatchMsgIDBuilder struct{ buf []byte }

// Reset empties b for the next message.
func (b *BatchMsgIDBuilder) Reset() { b.buf = b.buf[:0] }

// Add appends the next event id.
func (b *BatchMsgIDBuilder) Add(id string) {
	if len(b.buf) > 0 {
		b.buf = append(b.buf, BatchSeparator)
	}
	b.buf = append(b.buf, id...)
}

// ID is the BatchMsgID of the ids added since the last Reset.
func (b *BatchMsgIDBuilder) ID() string {
	sum := sha256.Sum256(b.buf)
	var out [1 + 32]byte
	out[0] = 'r'
	hex.Encode(out[1:], sum[:16])
	return string(out[:])
}

// AppendEventJSON appends ev as JSON exactly as encoding/json marshals
// it (same keys, omitempty rules and sorted metadata keys), without
// reflection; TestAppendEventJSONMatchesMarshal keeps the two in step.
func AppendEventJSON(b []byte, ev *Event, keys []string) ([]byte, []string) {
	b = append(b, `{"id":`...)
	b = jsonwire.AppendString(b, ev.ID)
	b = append(b, `,"received_ms":`...)
	b = strconv.AppendInt(b, ev.ReceivedMs, 10)
	if ev.ClientMs != 0 {
		b = append(b, `,"client_ms":`...)
		b = strconv.AppendInt(b, ev.ClientMs, 10)
	}
	b = appendField(b, `,"app_id":`, ev.AppID, false)
	b = appendField(b, `,"device_id":`, ev.DeviceID, false)
	b = appendField(b, `,"platform":`, ev.Platform, false)
	b = appendField(b, `,"action":`, ev.Action, false)
	b = appendField(b, `,"version_name":`, ev.VersionName, false)
	b = appendField(b, `,"file_name":`, ev.FileName, true)
	b = appendField(b, `,"old_version_name":`, ev.OldVersionName, true)
	b = appendField(b, `,"version_build":`, ev.VersionBuild, true)
	b = appendField(b, `,"version_code":`, ev.VersionCode, true)
	b = appendField(b, `,"version_os":`, ev.VersionOS, true)
	b = appendField(b, `,"plugin_version":`, ev.PluginVersion, true)
	b = appendField(b, `,"custom_id":`, ev.CustomID, true)
	b = appendField(b, `,"channel":`, ev.Channel, true)
	b = appendField(b, `,"install_source":`, ev.InstallSource, true)
	b = appendField(b, `,"key_id":`, ev.KeyID, true)
	b = append(b, `,"is_emulator":`...)
	b = strconv.AppendBool(b, ev.IsEmulator)
	b = append(b, `,"is_prod":`...)
	b = strconv.AppendBool(b, ev.IsProd)
	b = appendField(b, `,"reported_version":`, ev.ReportedVersion, true)
	if ev.Ignored {
		b = append(b, `,"ignored":true`...)
	}
	if len(ev.Metadata) > 0 {
		b = append(b, `,"metadata":`...)
		b, keys = jsonwire.AppendStringMap(b, ev.Metadata, keys)
	}
	return append(b, '}'), keys
}

func appendField(b []byte, key, v string, omitEmpty bool) []byte {
	if omitEmpty && v == "" {
		return b
	}
	b = append(b, key...)
	return jsonwire.AppendString(b, v)
}
