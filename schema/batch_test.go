package schema

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

func TestAppendEventJSONMatchesMarshal(t *testing.T) {
	full := Event{}
	// Every field set (so a field added to Event without updating
	// AppendEventJSON shows up as a missing key), then every field empty.
	v := reflect.ValueOf(&full).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("v<&>\"é\x01\n" + v.Type().Field(i).Name)
		case reflect.Int64:
			f.SetInt(int64(1000 + i))
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Map:
			f.Set(reflect.ValueOf(map[string]string{"b": "2", "a": "1\n", "é": ""}))
		default:
			t.Fatalf("Event field %s has kind %s: teach AppendEventJSON about it", v.Type().Field(i).Name, f.Kind())
		}
	}
	for _, ev := range []Event{full, {}, {ID: "x", Metadata: map[string]string{}}} {
		want, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := AppendEventJSON(nil, &ev, nil)
		var a, b map[string]any
		if err := json.Unmarshal(want, &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(got, &b); err != nil {
			t.Fatalf("AppendEventJSON output is not JSON: %v: %s", err, got)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("AppendEventJSON differs from encoding/json:\n got %s\nwant %s", got, want)
		}
		if strings.Contains(string(got), "\n") {
			t.Fatalf("record holds a raw newline: %q", got)
		}
	}
}

func TestBatchRoundTrip(t *testing.T) {
	evs := []Event{
		{ID: "0123456789abcdef0123456789abcdef", ReceivedMs: 1, AppID: "a", DeviceID: "d", Action: "set"},
		{ID: "fedcba9876543210fedcba9876543210", ReceivedMs: 2, AppID: "a", DeviceID: "d\n2", Action: "x",
			Metadata: map[string]string{"k": "line\nbreak"}},
	}
	var body []byte
	var keys []string
	for i := range evs {
		body, keys = AppendBatchEvent(body, &evs[i], keys)
	}
	got, err := DecodeBatch(body)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, evs) {
		t.Fatalf("round trip\n got %+v\nwant %+v", got, evs)
	}
	if n := strings.Count(string(body), "\n"); n != 1 {
		t.Fatalf("%d separators, want 1: %q", n, body)
	}
}

func TestBatchRecords(t *testing.T) {
	tests := []struct {
		body string
		want []string
	}{
		{`{"a":1}`, []string{`{"a":1}`}},
		{"{}\n{}\n{}", []string{"{}", "{}", "{}"}},
		{"", []string{""}},
		{"{}\n", []string{"{}", ""}},
		{"{}\n\n{}", []string{"{}", "", "{}"}},
	}
	for _, tt := range tests {
		var got []string
		BatchRecords([]byte(tt.body), func(i int, rec []byte) {
			if i != len(got) {
				t.Fatalf("%q: index %d after %d records", tt.body, i, len(got))
			}
			got = append(got, string(rec))
		})
		if !slices.Equal(got, tt.want) {
			t.Errorf("%q: records %q, want %q", tt.body, got, tt.want)
		}
	}
	if _, err := DecodeBatch([]byte("{}\nnope")); err == nil || !strings.Contains(err.Error(), "record 1") {
		t.Errorf("bad record: %v", err)
	}
}

func TestBatchMsgID(t *testing.T) {
	a := []string{"0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"}
	id := BatchMsgID(slices.Values(a))
	// "r" + hex(SHA-256(ids joined by "\n"))[:32], fixed so that fronts of
	// different versions agree on it.
	if id != "r2f4eae3c4002c9d2441afddd6b4181c6" {
		t.Errorf("msg id %q", id)
	}
	if BatchMsgID(slices.Values(a)) != id {
		t.Error("msg id not stable")
	}
	if BatchMsgID(slices.Values([]string{a[1], a[0]})) == id {
		t.Error("msg id ignores order")
	}
	if BatchMsgID(slices.Values(a[:1])) == id {
		t.Error("msg id ignores an event")
	}
	// A reused builder (ingest pools one per request) starts afresh.
	var b BatchMsgIDBuilder
	b.Add("other")
	b.Reset()
	for _, s := range a {
		b.Add(s)
	}
	if got := b.ID(); got != id {
		t.Errorf("builder after Reset: %q, want %q", got, id)
	}
}

func TestMessageVersion(t *testing.T) {
	for _, tt := range []struct {
		h    nats.Header
		want int
		err  bool
	}{
		{nil, 1, false},
		{nats.Header{}, 1, false},
		{nats.Header{EventsHeader: {"1"}}, 1, false},
		{nats.Header{EventsHeader: {"2"}}, 2, false},
		{nats.Header{EventsHeader: {"3"}}, 0, true},
		{nats.Header{EventsHeader: {"x"}}, 0, true},
	} {
		got, err := MessageVersion(tt.h)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("%v: %d %v", tt.h, got, err)
		}
	}
}
