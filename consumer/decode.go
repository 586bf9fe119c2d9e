package consumer

import (
	"encoding/json"
	"fmt"

	"github.com/capstan-io/capstan/schema"
)

// Dead-letter reasons (the reason label of capstan_consumer_dead_letters_total
// and the Capstan-Dead-Letter-Reason header).
const (
	ReasonBadJSON        = "bad_json"
	ReasonMissingField   = "missing_field"
	ReasonInvalidField   = "invalid_field"
	ReasonInsertRejected = "insert_rejected"
	// ReasonUnknownFormat: a Capstan-Events version this consumer does
	// not know (a newer front); the message is kept whole.
	ReasonUnknownFormat = "unknown_format"
)

// Headers set on a dead-lettered message. The body is the original
// message, or for one bad event of a version 2 message that event alone
// (a version 1 body).
const (
	HeaderOriginalSubject = "Capstan-Original-Subject"
	HeaderStreamSequence  = "Capstan-Stream-Sequence"
	HeaderReason          = "Capstan-Dead-Letter-Reason"
	HeaderError           = "Capstan-Dead-Letter-Error"
	// HeaderRecordIndex is the place of a dead-lettered event in its
	// version 2 message; absent when the body is the whole message.
	HeaderRecordIndex = "Capstan-Record-Index"
)

// decodeError says why a message cannot become a row.
type decodeError struct {
	reason string
	detail string
}

func (e *decodeError) Error() string { return e.reason + ": " + e.detail }

// decodeEvent turns a stream message body into an event ready to insert,
// or says why it cannot be one.
func decodeEvent(data []byte) (*schema.Event, *decodeError) {
	var e schema.Event
	if !fastDecode(data, &e) {
		e = schema.Event{}
		if err := json.Unmarshal(data, &e); err != nil {
			return nil, &decodeError{ReasonBadJSON, err.Error()}
		}
	}
	missing := func(field string) *decodeError {
		return &decodeError{ReasonMissingField, fmt.Sprintf("%s is required", field)}
	}
	switch {
	case e.ID == "":
		return nil, missing("id")
	case e.ReceivedMs == 0:
		return nil, missing("received_ms")
	case e.AppID == "":
		return nil, missing("app_id")
	case e.DeviceID == "":
		return nil, missing("device_id")
	case e.Action == "":
		return nil, missing("action")
	}
	if !isEventID(e.ID) {
		return nil, &decodeError{ReasonInvalidField, fmt.Sprintf("id %q is not 32 hex characters", e.ID)}
	}
	// received_at is a DateTime on every flavor: keep it inside
	// 1970..2105 so the row can be stored at all.
	if e.ReceivedMs < 0 || e.ReceivedMs >= maxDateTimeMs {
		return nil, &decodeError{ReasonInvalidField, fmt.Sprintf("received_ms %d out of range", e.ReceivedMs)}
	}
	return &e, nil
}

// maxDateTimeMs is the first millisecond a ClickHouse DateTime cannot hold.
const maxDateTimeMs = int64(1<<32) * 1000

func isEventID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}
