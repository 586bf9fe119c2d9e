package admin

import (
	_ "embed"
	"net/http"

	"github.com/go-chi/chi/v5"
)

// openAPIDoc is the OpenAPI 3.1 document of the admin API, served as is.
// It is edited by hand: the package's tests check it against the routes
// and against every request and answer they exchange.
//
//go:embed openapi.json
var openAPIDoc []byte

// openAPIPath is where, under the API root, the document is served.
const openAPIPath = "/openapi.json"

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(openAPIDoc)
}

// exceptOpenAPI applies mw to every request but one for the document, so
// the document needs no token while unknown paths still do.
func exceptOpenAPI(mw func(http.Handler) http.Handler) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		guarded := mw(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if routePath(r) == openAPIPath {
				next.ServeHTTP(w, r)
				return
			}
			guarded.ServeHTTP(w, r)
		})
	}
}

// routePath is the path chi routes r by: relative to where the router is
// mounted, else the request's own.
func routePath(r *http.Request) string {
	if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.RoutePath != "" {
		return rctx.RoutePath
	}
	if r.URL.RawPath != "" {
		return r.URL.RawPath
	}
	return r.URL.Path
}
