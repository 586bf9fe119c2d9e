package update

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/go-chi/chi/v5"

	"github.com/capstan-io/capstan/internal/jsonwire"
	"github.com/capstan-io/capstan/update/release"
)

// DefaultMaxBodyBytes bounds device request bodies when Config leaves it 0.
const DefaultMaxBodyBytes int64 = 1 << 20

// Config builds a Handler.
type Config struct {
	// Snapshot returns the current release snapshot; called once per request.
	Snapshot func() *release.Snapshot
	// PublicURL is the base of bundle URLs. Empty: derived from each
	// request's Host (fine for local use, wrong behind most proxies).
	PublicURL string
	// MaxBodyBytes bounds request bodies (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	Metrics      *Metrics
	Logger       *slog.Logger
	// Choices stores old plugins' setChannel choices; nil: not stored.
	Choices ChoiceStore
}

// Handler serves /updates and /channel_self.
type Handler struct {
	snapshot  func() *release.Snapshot
	publicURL string
	maxBody   int64
	metrics   *Metrics
	log       *slog.Logger
	choices   ChoiceStore
}

// NewHandler returns a Handler; a nil Snapshot serves an empty snapshot.
func NewHandler(cfg Config) *Handler {
	h := &Handler{
		snapshot:  cfg.Snapshot,
		publicURL: strings.TrimRight(cfg.PublicURL, "/"),
		maxBody:   cfg.MaxBodyBytes,
		metrics:   cfg.Metrics,
		log:       cfg.Logger,
		choices:   cfg.Choices,
	}
	if h.snapshot == nil {
		h.snapshot = func() *release.Snapshot { return emptySnapshot }
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h
}

// Routes mounts /updates, /updates/manifest_size and /channel_self. Each path answers every method
// itself so that a wrong method gets a JSON 405, whatever the router's
// own MethodNotAllowed handler is.
func (h *Handler) Routes(r chi.Router) {
	r.HandleFunc("/updates", h.ServeUpdates)
	r.HandleFunc("/updates/manifest_size", h.ServeManifestSize)
	r.HandleFunc("/channel_self", h.ServeChannelSelf)
}

// Shared header values: assigning them avoids a slice allocation per
// response. net/http never modifies them.
var (
	hdrJSON    = []string{"application/json"}
	hdrNoStore = []string{"no-store"}
)

var (
	healthBody = []byte(`{"status":"ok"}`)
	tooLarge   = &RequestError{Status: http.StatusRequestEntityTooLarge, Code: CodePayloadTooLarge, res: resTooLarge}
)

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	hd := w.Header()
	hd["Content-Type"] = hdrJSON
	hd["Cache-Control"] = hdrNoStore
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeMethodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	writeJSON(w, http.StatusMethodNotAllowed, jsonwire.ErrorBody(CodeMethodNotAllowed, "method "+r.Method+" is not allowed here; use "+allow))
}

// ServeUpdates answers the update check: POST with a JSON body, or the
// legacy GET with cap_* headers (a GET without them is a health check).
func (h *Handler) ServeUpdates(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		body, rerr := h.readBody(r)
		if rerr != nil {
			h.reject(w, r, "", rerr)
			return
		}
		req, rerr := DecodeJSON(body.b)
		body.release()
		h.check(w, r, &req, rerr)
	case http.MethodGet, http.MethodHead:
		req, legacy, rerr := DecodeLegacyHeaders(r.Header)
		if !legacy {
			writeJSON(w, http.StatusOK, healthBody)
			return
		}
		h.check(w, r, &req, rerr)
	default:
		writeMethodNotAllowed(w, r, "POST, GET")
	}
}

func (h *Handler) check(w http.ResponseWriter, r *http.Request, req *Request, rerr *RequestError) {
	if rerr == nil {
		rerr = req.ValidateVersionBuild()
	}
	if rerr != nil {
		h.reject(w, r, req.AppID, rerr)
		return
	}
	snap := h.snapshot()
	opts := Options{PublicURL: h.publicURL}
	if opts.PublicURL == "" {
		opts.PublicURL = requestBase(r)
	}
	a := Decide(req, snap, opts)
	if h.metrics != nil {
		h.metrics.observe(AppLabel(snap, req.AppID), a.res)
	}
	writeJSON(w, a.Status, a.Body)
}

// reject answers a request that never reached the decision.
func (h *Handler) reject(w http.ResponseWriter, r *http.Request, appID string, rerr *RequestError) {
	if h.metrics != nil {
		h.metrics.observe(AppLabel(h.snapshot(), appID), rerr.res)
	}
	h.log.Debug("update check rejected", "path", r.URL.Path, "status", rerr.Status, "error", rerr.Code, "message", rerr.Message)
	writeJSON(w, rerr.Status, rerr.Body())
}

func requestBase(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if host == "" {
		host = "localhost"
	}
	return scheme + "://" + host
}

// Request bodies are read into pooled buffers; decoding copies every
// string out, so a buffer is reusable as soon as decoding is done.
type pooledBody struct{ b []byte }

var bodyPool = sync.Pool{New: func() any { return &pooledBody{b: make([]byte, 0, 4096)} }}

const maxPooledBody = 64 << 10

func (p *pooledBody) release() {
	if cap(p.b) <= maxPooledBody {
		p.b = p.b[:0]
		bodyPool.Put(p)
	}
}

// readBody reads at most h.maxBody bytes; more is a 413.
func (h *Handler) readBody(r *http.Request) (*pooledBody, *RequestError) {
	if r.ContentLength > h.maxBody {
		return nil, h.tooLarge()
	}
	p := bodyPool.Get().(*pooledBody)
	b := p.b[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > h.maxBody {
			p.b = b
			p.release()
			return nil, h.tooLarge()
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			p.b = b
			p.release()
			return nil, badRequest(resInvalidJSON, "cannot read body: "+err.Error())
		}
	}
	p.b = b
	return p, nil
}

func (h *Handler) tooLarge() *RequestError {
	e := *tooLarge
	e.Message = "request body is larger than " + itoa(h.maxBody) + " bytes"
	return &e
}
