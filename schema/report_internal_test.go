package schema

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// The window's end keeps the minute row it falls in, even in that
// minute's first second.
func TestReportWindowEnd(t *testing.T) {
	noon := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		until time.Time
		end   time.Time // the rendered bound: minute < end
	}{
		{noon, noon},
		{noon.Add(400 * time.Millisecond), noon.Add(time.Second)},
		{noon.Add(time.Nanosecond), noon.Add(time.Second)},
		{noon.Add(30 * time.Second), noon.Add(30 * time.Second)},
		{noon.Add(59*time.Second + 999*time.Millisecond), noon.Add(time.Minute)},
	}
	for _, tt := range tests {
		where := reportWhere(ReportQuery{Since: noon.Add(-time.Hour), Until: tt.until, IncludeDev: true})
		want := "minute < toDateTime(" + strconv.FormatInt(tt.end.Unix(), 10) + ")"
		if !strings.Contains(where, want) {
			t.Errorf("until %s: %s lacks %s", tt.until.Format(time.StampMilli), where, want)
		}
	}
}
