package bench

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestBaselineAnswers(t *testing.T) {
	h := BaselineHandler()
	f := NewFleet(DefaultApps(), 10, 1)
	post := func(path string, body []byte) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body)))
		return rec.Code, rec.Body.String()
	}
	if code, body := post("/updates", UpdateRequests(f)[0].Body); code != 200 || !strings.Contains(body, `"kind":"up_to_date"`) {
		t.Errorf("updates: %d %s", code, body)
	}
	r := StatsRequests(f, 1, 20, 1)[0]
	body := append([]byte(nil), r.Body...)
	for i, off := range r.Stamps {
		putStamp(body, off, placeholder+int64(i))
	}
	if code, ans := post("/stats", body); code != 200 || strings.Count(ans, `"status":"ok"`) != 21 {
		t.Errorf("stats array: %d %s", code, ans)
	}
	if code, ans := post("/stats", []byte(`{"action":"set","device_id":"x"}`)); code != 200 || ans != `{"status":"ok"}` {
		t.Errorf("stats object: %d %s", code, ans)
	}
	if code, _ := post("/stats", []byte(`[{`)); code != 400 {
		t.Errorf("bad stats body: %d", code)
	}
	if code, _ := post("/updates", []byte(`nope`)); code != 400 {
		t.Errorf("bad update body: %d", code)
	}
}
