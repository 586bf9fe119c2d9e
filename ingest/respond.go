package ingest

import (
	"net/http"
	"strconv"
	"unicode/utf8"
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
	b := make([]byte, 0, 32+len(code)+len(msg))
	b = append(b, `{"error":`...)
	b = appendJSONString(b, code)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, msg)
	b = append(b, '}')
	return writeBody(w, status, b)
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
			b = appendJSONString(b, e.Code)
			b = append(b, `,"message":`...)
			b = appendJSONString(b, e.Message)
			b = append(b, '}')
		} else {
			b = append(b, `,"status":"ok"}`...)
		}
	}
	return append(b, "]}"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, "\ufffd"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
