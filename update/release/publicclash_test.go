package release

import (
	"strings"
	"testing"
)

func TestPublicClash(t *testing.T) {
	ch := func(name string, public bool, platforms string) *Channel {
		c := NewChannel("com.a.b", name)
		c.Public = public
		c.IOS, c.Android, c.Electron = strings.Contains(platforms, "i"), strings.Contains(platforms, "a"), strings.Contains(platforms, "e")
		return &c
	}
	tests := []struct {
		name   string
		c      *Channel
		others []*Channel
		want   string
	}{
		{"private never conflicts", ch("b", false, "iae"), []*Channel{ch("a", true, "iae")}, ""},
		{"other private", ch("b", true, "iae"), []*Channel{ch("a", false, "iae")}, ""},
		{"same platform", ch("b", true, "i"), []*Channel{ch("a", true, "ia")}, "a/ios"},
		{"disjoint platforms", ch("b", true, "a"), []*Channel{ch("a", true, "ie")}, ""},
		{"itself is not a conflict", ch("a", true, "iae"), []*Channel{ch("a", true, "iae")}, ""},
		{"electron", ch("b", true, "e"), []*Channel{ch("x", true, "i"), ch("y", true, "e")}, "y/electron"},
	}
	for _, tc := range tests {
		byName := map[string]*Channel{}
		for _, o := range tc.others {
			byName[o.Name] = o
		}
		other, platform, ok := publicClash(*tc.c, byName)
		got := ""
		if ok {
			got = other + "/" + platform
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}
