package jsonwire

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestOptBool(t *testing.T) {
	for _, tc := range []struct {
		raw     string
		want    OptBool
		wantErr bool
	}{
		{"true", BoolTrue, false}, {`"true"`, BoolTrue, false}, {"1", BoolTrue, false}, {`"1"`, BoolTrue, false},
		{"false", BoolFalse, false}, {`"false"`, BoolFalse, false}, {"0", BoolFalse, false}, {`"0"`, BoolFalse, false},
		{"null", BoolUnset, false}, {`""`, BoolUnset, false}, {"", BoolUnset, false},
		{"yes", BoolUnset, true}, {"TRUE", BoolUnset, true}, {"2", BoolUnset, true}, {"{}", BoolUnset, true},
	} {
		b := BoolTrue
		if tc.wantErr {
			b = BoolUnset
		}
		err := b.UnmarshalJSON([]byte(tc.raw))
		if (err != nil) != tc.wantErr || b != tc.want {
			t.Errorf("%q: got %d, %v; want %d, error %v", tc.raw, b, err, tc.want, tc.wantErr)
		}
	}
	if BoolUnset.Or(true) != true || BoolUnset.Or(false) != false || BoolTrue.Or(false) != true || BoolFalse.Or(true) != false {
		t.Error("Or does not pick the value or the default")
	}
	// Event ids hash the numeric values.
	if BoolUnset != 0 || BoolFalse != 1 || BoolTrue != 2 {
		t.Error("OptBool values were renumbered")
	}
	var v struct{ B OptBool }
	if err := json.Unmarshal([]byte(`{"B":"false"}`), &v); err != nil || v.B != BoolFalse {
		t.Errorf("through encoding/json: %d, %v", v.B, err)
	}
}

// AppendString must agree with encoding/json on what the string is.
func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `quo"te`, `back\slash`, `q"uo\te`, "ctl\x00\x01\x1f\x7f", "ctl\x00\x1f\n",
		"tab\tnl\nret\r", "<html>&amp;", "<&>", "héllo wörld ✓ 😀", "é😀", "\u2028\u2029", "bad\xff\xfeutf8",
		"bad\xffutf8", "\xed\xa0\x80", strings.Repeat("ab\"", 50)} {
		enc := AppendString(nil, s)
		var back string
		if err := json.Unmarshal(enc, &back); err != nil {
			t.Fatalf("%q encoded as invalid JSON %s: %v", s, enc, err)
		}
		want := s
		if !utf8.ValidString(s) {
			// encoding/json replaces each invalid byte, ToValidUTF8 each run.
			b, _ := json.Marshal(s)
			_ = json.Unmarshal(b, &want)
		}
		if back != want {
			t.Errorf("%q round-tripped to %q, want %q", s, back, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\xff", "\u2028", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var back, want string
		if err := json.Unmarshal(AppendString(nil, s), &back); err != nil {
			t.Fatalf("invalid JSON for %q: %v", s, err)
		}
		b, _ := json.Marshal(s)
		_ = json.Unmarshal(b, &want)
		if back != want {
			t.Fatalf("%q → %q, encoding/json gives %q", s, back, want)
		}
	})
}

func TestAppendStringMap(t *testing.T) {
	for _, m := range []map[string]string{nil, {}, {"a": "1"}, {"b": "2", "a": "1\n", "é": "", "A": "<&>"}} {
		got, keys := AppendStringMap([]byte("x"), m, []string{"stale"})
		want, _ := json.Marshal(m)
		if m == nil {
			want = []byte("{}")
		}
		// encoding/json escapes <, > and &; compare what the JSON says.
		var a, b map[string]string
		if err := json.Unmarshal(got[1:], &a); err != nil || got[0] != 'x' {
			t.Fatalf("%v: bad output %s: %v", m, got, err)
		}
		_ = json.Unmarshal(want, &b)
		if len(a) != len(b) || len(keys) != len(m) {
			t.Fatalf("%v: got %s (keys %q), want %s", m, got, keys, want)
		}
		for k, v := range b {
			if a[k] != v {
				t.Fatalf("%v: got %s, want %s", m, got, want)
			}
		}
		if len(m) > 1 && string(got[1:]) != strings.NewReplacer(`\u003c`, "<", `\u0026`, "&", `\u003e`, ">").Replace(string(want)) {
			t.Fatalf("keys not in encoding/json order: got %s, want %s", got[1:], want)
		}
	}
}

func TestErrorBody(t *testing.T) {
	got := ErrorBody("missing_app_id", `app_id "x" <is> required`)
	want := `{"error":"missing_app_id","message":"app_id \"x\" <is> required"}`
	if string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestAppendNoAllocs(t *testing.T) {
	m := map[string]string{"source": "bench", "b": "2", "a": "1"}
	buf := make([]byte, 0, 256)
	keys := make([]string, 0, 8)
	if n := testing.AllocsPerRun(100, func() {
		buf, keys = AppendStringMap(buf[:0], m, keys)
		buf = AppendString(buf, "plain \"quoted\" \xff \u2028")
	}); n != 0 {
		t.Fatalf("%v allocations per run, want 0", n)
	}
}

func TestSkipSpace(t *testing.T) {
	for _, tc := range []struct {
		s    string
		i    int
		want int
	}{{"", 0, 0}, {"  x", 0, 2}, {" \t\r\n", 1, 4}, {"x ", 0, 0}, {"\v", 0, 0}, {"a  b", 1, 3}} {
		if got := SkipSpace([]byte(tc.s), tc.i); got != tc.want {
			t.Errorf("SkipSpace(%q, %d) = %d, want %d", tc.s, tc.i, got, tc.want)
		}
	}
}

// BenchmarkAppendEventStrings encodes the strings and metadata of a typical
// stats event.
func BenchmarkAppendEventStrings(b *testing.B) {
	strs := []string{"2d1a5e3c-9b7f-4f7e-9e57-100000000001", "com.example.app", "android", "app_moved_to_foreground",
		"1.2.3", "8.51.23", "production", "0123456789abcdef0123456789abcdef"}
	meta := map[string]string{"source": "bench", "screen": "home"}
	buf := make([]byte, 0, 1024)
	keys := make([]string, 0, 8)
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		for _, s := range strs {
			buf = AppendString(buf, s)
		}
		buf, keys = AppendStringMap(buf, meta, keys)
	}
}
