package release

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ErrTooLarge is returned (wrapped, as a *TooLargeError) for a record
// that cannot be stored because it exceeds what one NATS message may
// carry. Retrying never helps; the admin API answers 413.
var ErrTooLarge = errors.New("record too large")

// TooLargeError names the record, its encoded size and the limit.
type TooLargeError struct {
	What  string // e.g. `metadata of bundle "1.0.0"`
	Size  int    // encoded bytes
	Limit int    // largest record this store can write
	// MaxPayload is the NATS connection's max_payload the limit comes from.
	MaxPayload int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s is %d bytes encoded; records are limited to %d bytes (the NATS server's max_payload of %d bytes, less %d for headers)",
		e.What, e.Size, e.Limit, e.MaxPayload, valueHeadroom)
}

func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// valueHeadroom is what a record's message needs besides its value: the
// KV and batch headers of a conditional write.
const valueHeadroom = 4 << 10

// bundleSlack covers fields a bundle record gains after CheckBundleSize:
// object name, digests and size.
const bundleSlack = 1 << 10

// MaxValueBytes is the largest record value this store can write, derived
// from the max_payload the NATS server announced on this connection (1 MiB
// by default on an external server, 8 MiB on the embedded one). It follows
// the server across reconnects.
func (s *Store) MaxValueBytes() int {
	mp := s.js.Conn().MaxPayload()
	return max(int(mp)-valueHeadroom, 0)
}

// CheckBundleSize reports, before anything is uploaded, whether b's
// metadata (its manifest above all) fits in one record: a *TooLargeError
// (ErrTooLarge) when it does not.
func (s *Store) CheckBundleSize(b Bundle) error {
	data, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("encode bundle %q: %w", b.Version, err)
	}
	return s.checkSize(fmt.Sprintf("metadata of bundle %q", b.Version), len(data)+bundleSlack)
}

func (s *Store) checkSize(what string, size int) error {
	if limit := s.MaxValueBytes(); size > limit {
		return fmt.Errorf("%w", &TooLargeError{What: what, Size: size, Limit: limit, MaxPayload: s.js.Conn().MaxPayload()})
	}
	return nil
}
