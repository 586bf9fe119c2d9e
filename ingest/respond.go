package ingest

import (
	"net/http"
	"strconv"

	"github.com/capstan-io/capstan/internal/jsonwire"
)

func writeBody(w http.ResponseWriter, status int, body []byte) int {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return status
}

// writeError writes {"error":code,"message":msg}.
func writeError(w http.ResponseWriter, status int, code, msg string) int {
	return writeBody(w, status, jsonwire.ErrorBody(code, msg))
}

// appendResults writes the answer to an array body: one result per event,
// in order.
func appendResults(b []byte, items []item) []byte {
	b = append(b, `{"status":"ok","results":[`...)
	for i := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"index":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		if e := items[i].err; e != nil {
			b = append(b, `,"status":"error","error":`...)
			b = jsonwire.AppendString(b, e.Code)
			b = append(b, `,"message":`...)
			b = jsonwire.AppendString(b, e.Message)
			b = append(b, '}')
		} else {
			b = append(b, `,"status":"ok"}`...)
		}
	}
	return append(b, "]}"...)
}
