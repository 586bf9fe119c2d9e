package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	"github.com/pb33f/libopenapi-validator/content"
	oaerrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/paths"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
)

var (
	oaOnce  sync.Once
	oaModel *v3.Document
	oaVal   validator.Validator
	oaErr   error
)

// openAPI parses the embedded document once for the package's tests.
func openAPI(t testing.TB) (*v3.Document, validator.Validator) {
	t.Helper()
	oaOnce.Do(func() {
		doc, err := libopenapi.NewDocument(openAPIDoc)
		if err != nil {
			oaErr = fmt.Errorf("parse openapi.json: %w", err)
			return
		}
		m, err := doc.BuildV3Model()
		if err != nil {
			oaErr = fmt.Errorf("build openapi.json model: %w", err)
			return
		}
		oaModel = &m.Model
		oaVal = validator.NewValidatorFromV3Model(oaModel,
			config.WithFormatAssertions(),
			config.WithBodyDecoder("multipart/form-data", multipartJSONDecoder()))
	})
	if oaErr != nil {
		t.Fatal(oaErr)
	}
	return oaModel, oaVal
}

// multipartJSONDecoder decodes a multipart body for validation: parts
// whose encoding is application/json (metadata) as JSON, others as
// strings. The parts of an array property (object) are gathered into
// it, as OpenAPI repeats parts; any other part name given twice becomes
// an array, which no object schema accepts.
func multipartJSONDecoder() content.Decoder {
	return content.DecoderFunc(func(in *content.DecodeInput) (any, error) {
		boundary := in.Parameters["boundary"]
		if boundary == "" {
			return nil, errors.New("multipart body without a boundary")
		}
		repeated := func(name string) bool {
			if in.Schema == nil || in.Schema.Properties == nil {
				return false
			}
			p := in.Schema.Properties.GetOrZero(name)
			return p != nil && p.Schema() != nil && slices.Contains(p.Schema().Type, "array")
		}
		out := map[string]any{}
		mr := multipart.NewReader(in.Body, boundary)
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			if err != nil {
				return nil, err
			}
			data, err := io.ReadAll(part)
			if err != nil {
				return nil, err
			}
			name := part.FormName()
			var v any = string(data)
			if in.Encoding != nil {
				if enc := in.Encoding.GetOrZero(name); enc != nil && enc.ContentType == "application/json" {
					if err := json.Unmarshal(data, &v); err != nil {
						return nil, fmt.Errorf("part %q is not JSON: %w", name, err)
					}
				}
			}
			if repeated(name) {
				prev, _ := out[name].([]any)
				v = append(prev, v)
			} else if prev, ok := out[name]; ok {
				v = []any{prev, v}
			}
			out[name] = v
		}
	})
}

func TestOpenAPIDocument(t *testing.T) {
	doc, err := libopenapi.NewDocument(openAPIDoc)
	if err != nil {
		t.Fatal(err)
	}
	if v := doc.GetVersion(); v != "3.1.0" {
		t.Fatalf("openapi %q, want 3.1.0", v)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("%s", describe(e))
		}
		t.Fatal("openapi.json is not a valid OpenAPI 3.1 document")
	}
	openAPI(t) // the model builds and every schema compiles
}

// TestOpenAPIRoutes checks the document against the router: every route
// documented, every documented operation served.
func TestOpenAPIRoutes(t *testing.T) {
	model, _ := openAPI(t)
	documented := map[string]bool{}
	for path, item := range model.Paths.PathItems.FromOldest() {
		for method := range item.GetOperations().FromOldest() {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	served := map[string]bool{}
	walk := func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		served[method+" "+strings.TrimSuffix(route, "/")] = true
		return nil
	}
	if err := chi.Walk(New(Config{}).Handler().(chi.Routes), walk); err != nil {
		t.Fatal(err)
	}
	viaRoutes := chi.NewRouter()
	New(Config{}).Routes(viaRoutes)
	fromRoutes := map[string]bool{}
	if err := chi.Walk(viaRoutes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		fromRoutes[method+" "+strings.TrimSuffix(route, "/")] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for r := range served {
		if !documented[r] {
			t.Errorf("%s is served but not in openapi.json", r)
		}
		if !fromRoutes[r] {
			t.Errorf("%s is served by Handler but not registered by Routes", r)
		}
	}
	for r := range documented {
		if !served[r] {
			t.Errorf("openapi.json documents %s, which no route serves", r)
		}
	}
}

func TestOpenAPIServedWithoutToken(t *testing.T) {
	e := newEnv(t, nil)
	check := func(base string) {
		t.Helper()
		resp, err := e.hc.Get(base + "/api/v1/openapi.json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || !bytes.Equal(body, openAPIDoc) {
			t.Fatalf("%s: %d %q, %d bytes", base, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
	}
	check(e.srv.URL)
	// The same through Routes on a router of its own.
	r := chi.NewRouter()
	r.Route("/api/v1", New(Config{Store: e.store, AdminToken: testToken}).Routes)
	srv := httptest.NewServer(r)
	defer srv.Close()
	check(srv.URL)
	// And through Handler served at the root of its own server.
	bare := httptest.NewServer(http.StripPrefix("/api/v1", New(Config{Store: e.store, AdminToken: testToken}).Handler()))
	defer bare.Close()
	check(bare.URL)
	// Only the document is public.
	status, _, eb, _ := e.raw(t, "GET", "/api/v1/openapi.jsonx", "", "", nil)
	if status != 401 || eb.Error != "missing_token" {
		t.Fatalf("a neighbouring path without token: %d %+v", status, eb)
	}
}

// checkedTransport checks every exchange of a test against openapi.json:
// a request the document allows must get a documented status with a body
// matching its schema; one it refuses must be refused (4xx) with a
// documented error. Mismatches fail t.
type checkedTransport struct {
	t    testing.TB
	next http.RoundTripper
}

// checkedClient is an http.Client whose exchanges are checked against
// openapi.json.
func checkedClient(t testing.TB) *http.Client {
	openAPI(t)
	return &http.Client{Transport: &checkedTransport{t: t, next: http.DefaultTransport}}
}

func (c *checkedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		var err error
		reqBody, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	// The clone keeps ContentLength, so a streamed upload is still sent
	// chunked, as the client sends it.
	out := req.Clone(req.Context())
	if req.Body != nil && req.Body != http.NoBody {
		out.Body = io.NopCloser(bytes.NewReader(reqBody))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(reqBody)), nil }
	}
	resp, err := c.next.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	if msg := checkExchange(req, reqBody, resp, respBody); msg != "" {
		c.t.Errorf("openapi.json: %s %s → %d: %s\nresponse: %.600s", req.Method, req.URL.RequestURI(), resp.StatusCode, msg, respBody)
	}
	return resp, nil
}

// checkExchange returns what is wrong with one exchange, "" when nothing.
func checkExchange(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) string {
	model, v := oaModel, oaVal
	fresh := func() *http.Request {
		r := req.Clone(req.Context())
		r.Body = io.NopCloser(bytes.NewReader(reqBody))
		return r
	}
	withBody := func() *http.Response {
		r := *resp
		r.Body = io.NopCloser(bytes.NewReader(respBody))
		return &r
	}
	_, perrs, _ := paths.FindPath(fresh(), model, nil)
	if len(perrs) > 0 {
		// No such operation: the router's own answers.
		var eb ErrorBody
		if json.Unmarshal(respBody, &eb) != nil || eb.Message == "" {
			return "an unknown operation must get an error body"
		}
		want := map[int]string{401: "missing_token invalid_token", 404: "not_found", 405: "method_not_allowed"}[resp.StatusCode]
		if !slices.Contains(strings.Fields(want), eb.Error) {
			return fmt.Sprintf("an unknown operation (%s) got %s", describe(perrs[0]), eb.Error)
		}
		return ""
	}
	var msgs []string
	if ok, errs := v.ValidateHttpRequestSync(fresh()); !ok && resp.StatusCode < 400 {
		msgs = append(msgs, "the document refuses the request, yet the server accepted it:\n"+describeAll(errs))
	}
	if ok, errs := v.ValidateHttpResponse(fresh(), withBody()); !ok {
		msgs = append(msgs, "the response does not match the document:\n"+describeAll(errs))
	}
	return strings.Join(msgs, "\n")
}

func describe(e *oaerrors.ValidationError) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", e.Message, e.Reason)
	for _, f := range e.SchemaValidationErrors {
		fmt.Fprintf(&b, "\n    at %s (%s): %s", f.InstancePath, f.KeywordLocation, f.Reason)
	}
	return b.String()
}

func describeAll(errs []*oaerrors.ValidationError) string {
	var parts []string
	for _, e := range errs {
		parts = append(parts, "  "+describe(e))
	}
	return strings.Join(parts, "\n")
}

// The checker itself: exchanges the document forbids are caught.
func TestCheckExchange(t *testing.T) {
	openAPI(t)
	const base = "http://127.0.0.1:1/api/v1"
	app := `{"id":"com.example.app","created_at":"2026-01-02T03:04:05Z"}`
	cases := []struct {
		name, method, path, ct, reqBody string
		status                          int
		respBody, want                  string
	}{
		{"good", "GET", "/apps/com.example.app", "", "", 200, app, ""},
		{"extra response field", "GET", "/apps/com.example.app", "", "", 200, `{"id":"a.b","created_at":"2026-01-02T03:04:05Z","new":1}`, ""},
		{"required field missing", "GET", "/apps/com.example.app", "", "", 200, `{"id":"a.b"}`, "does not match"},
		{"wrong type", "GET", "/apps/com.example.app", "", "", 200, `{"id":5,"created_at":"2026-01-02T03:04:05Z"}`, "does not match"},
		{"not a date-time", "GET", "/apps/com.example.app", "", "", 200, `{"id":"a.b","created_at":"yesterday"}`, "does not match"},
		{"undocumented status", "GET", "/apps/com.example.app", "", "", 418, `{"error":"teapot","message":"m"}`, "does not match"},
		{"undocumented error code", "GET", "/apps/com.example.app", "", "", 404, `{"error":"channel_not_found","message":"m"}`, "does not match"},
		{"documented error", "GET", "/apps/com.example.app", "", "", 404, `{"error":"app_not_found","message":"m"}`, ""},
		{"error without message", "GET", "/apps/com.example.app", "", "", 404, `{"error":"app_not_found"}`, "does not match"},
		{"refused request accepted", "POST", "/apps", "application/json", `{"id":"com.a.b","nme":"x"}`, 201, app, "refuses the request"},
		{"refused request refused", "POST", "/apps", "application/json", `{"id":"com.a.b","nme":"x"}`, 400, `{"error":"invalid_json_body","message":"m"}`, ""},
		{"bad metadata part accepted", "POST", "/apps/com.example.app/bundles", "multipart", `{"version":"1.0"}`, 201, `{"app_id":"a","version":"1.0","checksum":"","created_at":"2026-01-02T03:04:05Z"}`, "refuses the request"},
		{"good metadata part", "POST", "/apps/com.example.app/bundles", "multipart", `{"version":"1.0.0","external_url":"https://cdn.example.com/a.zip","checksum":"` + strings.Repeat("a", 64) + `"}`, 201, `{"app_id":"a","version":"1.0.0","checksum":"","created_at":"2026-01-02T03:04:05Z"}`, ""},
		{"unknown path", "GET", "/nope", "", "", 404, `{"error":"not_found","message":"m"}`, ""},
		{"unknown path, odd answer", "GET", "/nope", "", "", 200, `{}`, "unknown operation"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body, ct := []byte(tc.reqBody), tc.ct
			if ct == "multipart" {
				var buf bytes.Buffer
				mw := multipart.NewWriter(&buf)
				w, _ := mw.CreateFormField("metadata")
				w.Write(body)
				mw.Close()
				body, ct = buf.Bytes(), mw.FormDataContentType()
			}
			req := httptest.NewRequest(tc.method, base+tc.path, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer x")
			if ct != "" {
				req.Header.Set("Content-Type", ct)
			}
			resp := &http.Response{StatusCode: tc.status, Header: http.Header{"Content-Type": {"application/json"}}, Request: req}
			got := checkExchange(req, body, resp, []byte(tc.respBody))
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
