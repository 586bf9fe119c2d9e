package jsonwire

import (
	"encoding/json"
	"maps"
	"slices"
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

func TestPlainString(t *testing.T) {
	for _, tc := range []struct {
		s      string
		i      int
		ok     bool
		inside string
	}{
		{`"abc"`, 0, true, "abc"}, {`x""`, 1, true, ""}, {`"héllo ✓"`, 0, true, "héllo ✓"},
		{`"a\"b"`, 0, false, ""}, {"\"a\nb\"", 0, false, ""}, {"\"\xff\"", 0, false, ""},
		{`"open`, 0, false, ""}, {`abc`, 0, false, ""}, {``, 0, false, ""}, {`"a"`, 3, false, ""},
	} {
		s, e, ok := PlainString([]byte(tc.s), tc.i)
		if ok != tc.ok || ok && (tc.s[s:e] != tc.inside || tc.s[e] != '"') {
			t.Errorf("PlainString(%q, %d) = %d, %d, %v; want %q, %v", tc.s, tc.i, s, e, ok, tc.inside, tc.ok)
		}
	}
}

func TestInt(t *testing.T) {
	for _, tc := range []struct {
		s   string
		v   int64
		end int
		ok  bool
	}{
		{"0", 0, 1, true}, {"-12,", -12, 3, true}, {"123456789012345678}", 123456789012345678, 18, true},
		{"1234567890123456789", 0, 0, false}, {"01", 0, 0, false}, {"-", 0, 0, false}, {"1.5", 0, 0, false},
		{"1e3", 0, 0, false}, {"1E3", 0, 0, false}, {"", 0, 0, false}, {"x", 0, 0, false},
	} {
		v, end, ok := Int([]byte(tc.s), 0)
		if v != tc.v || end != tc.end || ok != tc.ok {
			t.Errorf("Int(%q) = %d, %d, %v; want %d, %d, %v", tc.s, v, end, ok, tc.v, tc.end, tc.ok)
		}
	}
}

func TestHasWord(t *testing.T) {
	for _, tc := range []struct {
		s    string
		w    string
		want bool
	}{
		{"null", "null", true}, {"null,", "null", true}, {"null}", "null", true}, {"nullx", "null", false},
		{"null1", "null", false}, {"nul", "null", false}, {"true ", "true", true}, {"falsey", "false", false},
	} {
		if got := HasWord([]byte(tc.s), 0, tc.w); got != tc.want {
			t.Errorf("HasWord(%q, %q) = %v, want %v", tc.s, tc.w, got, tc.want)
		}
	}
}

func TestSkipScalar(t *testing.T) {
	for _, tc := range []struct {
		s   string
		end int
		ok  bool
	}{
		{`"x",`, 3, true}, {"true}", 4, true}, {"false", 5, true}, {"null ", 4, true}, {"-7,", 2, true},
		{`"a\n"`, 0, false}, {"tru", 0, false}, {"nil", 0, false}, {"1.5", 0, false}, {"{}", 0, false},
		{"[]", 0, false}, {"", 0, false},
	} {
		end, ok := SkipScalar([]byte(tc.s), 0)
		if ok != tc.ok || ok && end != tc.end {
			t.Errorf("SkipScalar(%q) = %d, %v; want %d, %v", tc.s, end, ok, tc.end, tc.ok)
		}
	}
}

// The member scanners walk an object as encoding/json reads it.
func TestObjectMembers(t *testing.T) {
	for _, tc := range []struct {
		s    string
		keys []string
		ok   bool
	}{
		{`{}`, nil, true}, {"{ \n}", nil, true}, {`{"a":1}`, []string{"a"}, true},
		{` { "a" : 1 , "b":2 } `, []string{"a", "b"}, true},
		{`{"a":1,}`, nil, false}, {`{"a" 1}`, nil, false}, {`{"a":1 "b":2}`, nil, false}, {`{"a":1`, nil, false},
		{`{a:1}`, nil, false}, {`[]`, nil, false},
	} {
		data := []byte(tc.s)
		var keys []string
		i, more, ok := OpenObject(data, SkipSpace(data, 0))
		for ok && more {
			var ks, ke int
			if ks, ke, ok = PlainString(data, SkipSpace(data, i)); !ok {
				break
			}
			if i, ok = Colon(data, ke+1); !ok {
				break
			}
			keys = append(keys, tc.s[ks:ke])
			var v int64
			if v, i, ok = Int(data, i); !ok || v == 0 {
				break
			}
			i, more, ok = NextMember(data, i)
		}
		if ok = ok && SkipSpace(data, i) == len(data); ok != tc.ok || ok && !slices.Equal(keys, tc.keys) {
			t.Errorf("%q: keys %q, ok %v; want %q, %v", tc.s, keys, ok, tc.keys, tc.ok)
		}
	}
}

// StringMap gives what encoding/json gives where it accepts the object.
func TestStringMap(t *testing.T) {
	for _, tc := range []struct {
		s  string
		ok bool
	}{
		{`{}`, true}, {`null`, true}, {`{"a":"1","b":"2"}`, true}, {`{"a":"1","a":"2"}`, true},
		{` {"é" : "✓" } `, true}, {`{"a":null}`, false}, {`{"a":1}`, false}, {`{"a":"\n"}`, false},
		{`{"a":"1",}`, false}, {`[]`, false}, {`{"a":{}}`, false},
	} {
		for _, start := range []map[string]string{nil, {"old": "x"}} {
			data := []byte(tc.s)
			got := maps.Clone(start)
			end, ok := StringMap(data, string(data), SkipSpace(data, 0), &got)
			if ok != tc.ok {
				t.Errorf("%q: ok %v, want %v", tc.s, ok, tc.ok)
				continue
			}
			if !ok {
				continue
			}
			want := maps.Clone(start)
			if err := json.Unmarshal(data, &want); err != nil {
				t.Fatalf("%q: %v", tc.s, err)
			}
			if SkipSpace(data, end) != len(data) || !maps.Equal(got, want) || (got == nil) != (want == nil) {
				t.Errorf("%q onto %v: got %v (end %d), encoding/json gives %v", tc.s, start, got, end, want)
			}
		}
	}
}

func TestFoldsToField(t *testing.T) {
	fields := []string{"app_id", "is_prod"}
	for _, tc := range []struct {
		key  string
		want bool
	}{{"APP_ID", true}, {"Is_Prod", true}, {"app_id", true}, {"other", false}, {"appid", false}, {"é", true}} {
		if got := FoldsToField([]byte(tc.key), fields); got != tc.want {
			t.Errorf("FoldsToField(%q) = %v, want %v", tc.key, got, tc.want)
		}
	}
}

func TestScanNoAllocs(t *testing.T) {
	data := []byte(`{"a":"1","b":"2"}`)
	body := string(data)
	m := map[string]string{"a": "", "b": ""}
	if n := testing.AllocsPerRun(100, func() {
		if _, ok := StringMap(data, body, 0, &m); !ok {
			t.Fatal("not decoded")
		}
	}); n != 0 {
		t.Fatalf("%v allocations per run, want 0", n)
	}
}

func TestNullables(t *testing.T) {
	for _, tc := range []struct {
		s       string
		v, null bool
		end     int
		ok      bool
	}{
		{"true,", true, false, 4, true}, {"false}", false, false, 5, true}, {"null", false, true, 4, true},
		{"True", false, false, 0, false}, {"1", false, false, 0, false}, {"nullx", false, false, 0, false},
	} {
		v, null, end, ok := NullableBool([]byte(tc.s), 0)
		if v != tc.v || null != tc.null || end != tc.end || ok != tc.ok {
			t.Errorf("NullableBool(%q) = %v, %v, %d, %v", tc.s, v, null, end, ok)
		}
	}
	if v, null, end, ok := NullableInt([]byte("null,"), 0); v != 0 || !null || end != 4 || !ok {
		t.Errorf("NullableInt(null) = %d, %v, %d, %v", v, null, end, ok)
	}
	if v, null, end, ok := NullableInt([]byte("-3}"), 0); v != -3 || null || end != 2 || !ok {
		t.Errorf("NullableInt(-3) = %d, %v, %d, %v", v, null, end, ok)
	}
	if _, _, _, ok := NullableInt([]byte("nul"), 0); ok {
		t.Error("NullableInt(nul) accepted")
	}
}

func TestSkipUnknown(t *testing.T) {
	fields := []string{"app_id"}
	data := []byte(`1,`)
	if end, ok := SkipUnknown(data, 0, []byte("other"), fields); !ok || end != 1 {
		t.Errorf("other: %d, %v", end, ok)
	}
	if _, ok := SkipUnknown(data, 0, []byte("App_Id"), fields); ok {
		t.Error("a key encoding/json folds to app_id was skipped")
	}
}
