package consumer

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/capstan-io/capstan/schema"
)

func TestDecodeEvent(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	valid := fmt.Sprintf(`{"id":%q,"received_ms":1700000000000,"app_id":"com.example.app","device_id":"d1","action":"set","platform":"ios","version_name":"1.0.0"}`, id)
	tests := []struct {
		name   string
		body   string
		reason string
	}{
		{"valid", valid, ""},
		{"not json", `{"id":`, ReasonBadJSON},
		{"array", `[1,2]`, ReasonBadJSON},
		{"wrong type", `{"id":1}`, ReasonBadJSON},
		{"missing id", strings.Replace(valid, `"id":"`+id+`"`, `"id":""`, 1), ReasonMissingField},
		{"missing received", strings.Replace(valid, `"received_ms":1700000000000`, `"received_ms":0`, 1), ReasonMissingField},
		{"missing app", strings.Replace(valid, `"app_id":"com.example.app"`, `"app_id":""`, 1), ReasonMissingField},
		{"missing device", strings.Replace(valid, `"device_id":"d1"`, `"device_id":""`, 1), ReasonMissingField},
		{"missing action", strings.Replace(valid, `"action":"set"`, `"action":""`, 1), ReasonMissingField},
		{"short id", strings.Replace(valid, id, "abc", 1), ReasonInvalidField},
		{"quote in id", strings.Replace(valid, id, "0123456789abcdef0123456789abcd'f", 1), ReasonInvalidField},
		{"negative time", strings.Replace(valid, `1700000000000`, `-5`, 1), ReasonInvalidField},
		{"time after 2106", strings.Replace(valid, `1700000000000`, `4294967296000`, 1), ReasonInvalidField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := decodeEvent([]byte(tt.body))
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if ev.ID != id || ev.AppID != "com.example.app" {
					t.Fatalf("decoded %+v", ev)
				}
				return
			}
			if err == nil {
				t.Fatalf("want %s, decoded %+v", tt.reason, ev)
			}
			if err.reason != tt.reason {
				t.Fatalf("reason %s, want %s (%v)", err.reason, tt.reason, err)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want errClass
	}{
		{"connection refused", errors.New("dial tcp 127.0.0.1:9000: connect: connection refused"), retryLater},
		{"unknown table", &clickhouse.Exception{Code: 60, Message: "Table capstan.capstan_events doesn't exist"}, retryLater},
		{"too many parts", &clickhouse.Exception{Code: 252, Message: "Too many parts"}, retryLater},
		{"memory", &clickhouse.Exception{Code: 241, Message: "Memory limit exceeded"}, retryLater},
		{"timeout", &clickhouse.Exception{Code: 159, Message: "Timeout exceeded"}, retryLater},
		{"type mismatch wrapped", fmt.Errorf("insert batch: %w", &clickhouse.Exception{Code: 53}), rowsRejected},
		{"parse datetime", &clickhouse.Exception{Code: 41}, rowsRejected},
		{"arrays differ", &clickhouse.Exception{Code: 190}, rowsRejected},
	}
	for _, tt := range tests {
		if got := classify(tt.err); got != tt.want {
			t.Errorf("%s: classify = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	initial, capped := 250*time.Millisecond, 10*time.Second
	want := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second,
		4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		if got := backoff(i, initial, capped); got != w {
			t.Errorf("backoff(%d) = %s, want %s", i, got, w)
		}
	}
	if got := backoff(1000, initial, capped); got != capped {
		t.Errorf("backoff(1000) = %s", got)
	}
}

func TestLagSeconds(t *testing.T) {
	now := time.UnixMilli(1_700_000_010_000)
	tests := []struct {
		oldest []int64
		want   float64
	}{
		{nil, 0},
		{[]int64{0, 0}, 0},
		{[]int64{1_700_000_000_000, 0}, 10},
		{[]int64{1_700_000_005_000, 1_700_000_000_000}, 10},
		{[]int64{1_700_000_020_000}, 0}, // clock skew: never negative
	}
	for _, tt := range tests {
		if got := lagSeconds(now, tt.oldest...); got != tt.want {
			t.Errorf("lagSeconds(%v) = %v, want %v", tt.oldest, got, tt.want)
		}
	}
}

func TestStoredIDsQuery(t *testing.T) {
	rows := []*item{
		{ev: &schema.Event{ID: "aa", ReceivedMs: 1_700_000_005_500}},
		{ev: &schema.Event{ID: "bb", ReceivedMs: 1_700_000_000_100}},
	}
	q := storedIDsQuery(rows)
	for _, want := range []string{"received_at >= toDateTime(1700000000)", "received_at < toDateTime(1700000006)", "event_id IN ('aa','bb')"} {
		if !strings.Contains(q, want) {
			t.Errorf("query %q lacks %q", q, want)
		}
	}
	got := withoutStored(rows, map[string]bool{"bb": true})
	if len(got) != 1 || got[0].ev.ID != "aa" {
		t.Errorf("withoutStored kept %v", got)
	}
}
