package release

import (
	"errors"
	"strings"
	"testing"
)

func TestKeysRoundTrip(t *testing.T) {
	tests := []struct {
		key  string
		kind string
		segs []string
	}{
		{appKey("com.example.app"), kindApp, []string{"com.example.app"}},
		{chanKey("com.a", "beta.1"), kindChannel, []string{"com.a", "beta.1"}},
		{bundleKey("com.a", "1.0.0+build/7 ü"), kindBundle, []string{"com.a", "1.0.0+build/7 ü"}},
		{ovrKey("com.a", "0a1b-uuid"), kindOverride, []string{"com.a", "0a1b-uuid"}},
		{tokenKey(strings.Repeat("a", 64)), kindToken, []string{strings.Repeat("a", 64)}},
		{chanSeqKey("com.a"), kindChanSeq, []string{"com.a"}},
	}
	for _, tt := range tests {
		pk, err := parseKey(tt.key)
		if err != nil {
			t.Fatalf("%s: %v", tt.key, err)
		}
		if pk.kind != tt.kind || strings.Join(pk.segs, "|") != strings.Join(tt.segs, "|") {
			t.Errorf("%s: got %+v", tt.key, pk)
		}
		for _, c := range tt.key {
			if !strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.", c) {
				t.Errorf("%s: unsafe key character %q", tt.key, c)
			}
		}
	}
}

func TestParseKeyRejects(t *testing.T) {
	for _, k := range []string{"", "nope.x", "app", "app.a.b", "chan.YQ", "chan.YQ.!!", "ovr.YQ.YQ.YQ"} {
		if _, err := parseKey(k); err == nil {
			t.Errorf("%q accepted", k)
		}
	}
}

func TestValidSegment(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"com.example.app", true},
		{"1.0.0+build.7", true},
		{"", false},
		{strings.Repeat("x", maxSegment+1), false},
		{"a\x00b", false},
		{"a\nb", false},
		{"\xff", false},
	}
	for _, tt := range tests {
		err := validSegment("id", tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("%q: %v", tt.in, err)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: not ErrInvalid: %v", tt.in, err)
		}
	}
}

func TestValidPathSegment(t *testing.T) {
	for in, ok := range map[string]bool{"1.0.0+b.7": true, "com.a": true, "a/b": false, `a\b`: false, "..": false, "1..2": false, ".": false, "": false} {
		if err := validPathSegment("v", in); (err == nil) != ok {
			t.Errorf("%q: %v", in, err)
		}
	}
}

func TestValidHashHex(t *testing.T) {
	if !ValidHashHex(strings.Repeat("0a", 32)) || ValidHashHex(strings.Repeat("0A", 32)) || ValidHashHex("00") || ValidHashHex(strings.Repeat("zz", 32)) {
		t.Fatal("validHashHex")
	}
}

// TestParseOvrKey checks the override fast path agrees with parseKey.
func TestParseOvrKey(t *testing.T) {
	long := strings.Repeat("d", maxSegment+40)
	keys := []string{
		ovrKey("com.a", "0a1b-uuid"),
		ovrKey("com.a", "00000001-0000-4000-8000-000000001eef"),
		ovrKey("com.a", long),
		ovrKey("com.a", ""),
		"ovr.YQ", "ovr.YQ.YQ.YQ", "ovr.YQ.!!", "ovr.!!.YQ", "ovr..", "ovr.YQ=.YQ",
	}
	for _, k := range keys {
		var buf ovrKeyBuf
		app, dev, err := parseOvrKey(k, &buf)
		pk, perr := parseKey(k)
		if (err == nil) != (perr == nil) {
			t.Errorf("%q: parseOvrKey err %v, parseKey err %v", k, err, perr)
			continue
		}
		if err == nil && (string(app) != pk.segs[0] || string(dev) != pk.segs[1]) {
			t.Errorf("%q: got %q %q, want %q", k, app, dev, pk.segs)
		}
	}
	var buf ovrKeyBuf
	key := ovrKey("com.example.app", "00000001-0000-4000-8000-000000001eef")
	if n := testing.AllocsPerRun(100, func() { _, _, _ = parseOvrKey(key, &buf) }); n != 0 {
		t.Errorf("parseOvrKey allocates %v times", n)
	}
}
