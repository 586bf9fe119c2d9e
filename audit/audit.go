// Package audit records every release change, manual or automatic, in a
// JetStream stream and lists them back.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Stream is the JetStream stream holding the audit log.
const Stream = "CAPSTAN_AUDIT"

// Actors of automatic changes.
const ActorGuard = "guard"

// Entry is one release change.
type Entry struct {
	Time    time.Time `json:"time"`
	App     string    `json:"app"`
	Channel string    `json:"channel,omitempty"`
	Bundle  string    `json:"bundle,omitempty"`
	// Change names what happened, e.g. channel_set, rollout_pause.
	Change string `json:"change"`
	// Actor is "token:<name>" for a change made with an admin token, or
	// ActorGuard for the rollout guard.
	Actor     string `json:"actor"`
	Automatic bool   `json:"automatic,omitempty"`
	// Detail is a one-line human summary.
	Detail string `json:"detail,omitempty"`
	// Gate holds the health gate's numbers behind an automatic change.
	Gate json.RawMessage `json:"gate,omitempty"`
	// Seq is the entry's stream sequence, set when listed.
	Seq uint64 `json:"seq,omitempty"`
}

// Query selects entries to list.
type Query struct {
	App     string    // "" = every app
	Channel string    // "" = every channel
	Since   time.Time // zero = from the start
	Limit   int       // newest Limit entries; 0 = 100
}

// Recorder appends entries; the admin API and the guard write through it.
type Recorder interface {
	Append(ctx context.Context, e Entry) error
}

// Log is the audit stream.
type Log struct{}

// Append stores e.
func (l *Log) Append(ctx context.Context, e Entry) error {
	return errors.New("audit: not implemented")
}

// List returns the entries q selects, oldest first.
func (l *Log) List(ctx context.Context, q Query) ([]Entry, error) {
	return nil, errors.New("audit: not implemented")
}
