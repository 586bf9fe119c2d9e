package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"

	"github.com/capstan-io/capstan/internal/jsonwire"
	"github.com/capstan-io/capstan/schema"
)

// item is one event of a request: the event to publish, or why not.
type item struct {
	ev  schema.Event
	err *eventError
}

// bodyError is a request the handler refuses as a whole.
type bodyError struct {
	status  int
	code    string
	message string
}

var (
	errEmptyBody   = &bodyError{400, "invalid_json_body", "body is empty; send a stats event object or an array of them"}
	errBodyNotJSON = &bodyError{400, "invalid_json_body", "body must be a JSON object or an array of objects"}
)

func invalidJSON(err error) *bodyError {
	msg := "body is not valid JSON"
	var se *json.SyntaxError
	if errors.As(err, &se) {
		msg += " (" + se.Error() + " at byte " + strconv.FormatInt(se.Offset, 10) + ")"
	} else if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		msg += " (unexpected end of body)"
	}
	return &bodyError{400, "invalid_json_body", msg}
}

func tooManyEvents(max int) *bodyError {
	return &bodyError{413, "too_many_events", "a request may carry at most " + strconv.Itoa(max) + " events"}
}

// decoder turns a stats body into events; reused through a pool.
type decoder struct {
	h     hasher
	wire  wireEvent
	items []item
}

func (d *decoder) reset() {
	clear(d.items)
	d.items = d.items[:0]
}

// decode parses body (PROTOCOL.md §3: one event object or an array of
// them), validates each event on its own and gives each valid one its id.
// array tells which form the body had. A body that is not JSON, or holds
// more than maxEvents events, is refused as a whole; a bad event inside a
// valid array only fails its own item.
func (d *decoder) decode(body []byte, maxEvents int) (array bool, items []item, berr *bodyError) {
	d.reset()
	if array, ok := d.fastDecode(body, maxEvents); ok {
		return array, d.items, nil
	}
	return d.decodeJSON(body, maxEvents)
}

// decodeJSON is decode with encoding/json: the reference the fast path
// must match, and the path for everything it does not handle.
func (d *decoder) decodeJSON(body []byte, maxEvents int) (array bool, items []item, berr *bodyError) {
	d.reset()
	start := jsonwire.SkipSpace(body, 0)
	if start == len(body) {
		return false, nil, errEmptyBody
	}
	switch body[start] {
	case '{':
		d.wire = wireEvent{}
		if err := json.Unmarshal(body, &d.wire); err != nil {
			if isSyntax(err) {
				return false, nil, invalidJSON(err)
			}
			d.items = append(d.items, item{err: typeError(err, body)})
			return false, d.items, nil
		}
		d.h.reset()
		d.items = append(d.items, d.finish(&d.wire))
		return false, d.items, nil
	case '[':
		d.h.reset()
		if berr := d.decodeArray(body, maxEvents); berr != nil {
			return true, nil, berr
		}
		return true, d.items, nil
	default:
		return false, nil, errBodyNotJSON
	}
}

func (d *decoder) decodeArray(body []byte, maxEvents int) *bodyError {
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // '['
		return invalidJSON(err)
	}
	for n := 0; dec.More(); n++ {
		if n == maxEvents {
			return tooManyEvents(maxEvents)
		}
		off := skipSpaceComma(body, int(dec.InputOffset()))
		if off < len(body) && body[off] != '{' {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return invalidJSON(err)
			}
			d.items = append(d.items, item{err: errNotObject})
			continue
		}
		d.wire = wireEvent{}
		if err := dec.Decode(&d.wire); err != nil {
			if isSyntax(err) {
				return invalidJSON(err)
			}
			// Decode read the whole element before failing.
			d.items = append(d.items, item{err: typeError(err, body[off:dec.InputOffset()])})
			continue
		}
		d.items = append(d.items, d.finish(&d.wire))
	}
	if _, err := dec.Token(); err != nil { // ']'
		return invalidJSON(err)
	}
	// Nothing may follow the array: a second value means a broken body.
	if jsonwire.SkipSpace(body, int(dec.InputOffset())) != len(body) {
		return invalidJSON(errors.New("data after the top-level array"))
	}
	return nil
}

// finish validates one decoded event and stamps its id.
func (d *decoder) finish(w *wireEvent) item {
	ev, err := normalize(w)
	if err != nil {
		return item{err: err}
	}
	ev.ID = d.h.id(w, &ev)
	return item{ev: ev}
}

func isSyntax(err error) bool {
	var se *json.SyntaxError
	return errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// typeError explains a well-formed JSON event (raw) whose fields have
// the wrong types.
func typeError(err error, raw []byte) *eventError {
	var ee *eventError
	if errors.As(err, &ee) {
		if ee == errNotString {
			return stringFieldError(raw)
		}
		return ee
	}
	if errors.Is(err, jsonwire.ErrBadBool) {
		return errBadBool
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return errNotObject
		}
		return evErr(CodeInvalidEvent, te.Field+" must be a JSON "+jsonKind(te.Type.Kind().String()))
	}
	return evErr(CodeInvalidEvent, "event does not decode: "+err.Error())
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "map", "struct":
		return "object"
	case "bool":
		return "boolean"
	}
	return "value of another type"
}

func skipSpaceComma(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\r', '\n', ',':
			i++
		default:
			return i
		}
	}
	return i
}
