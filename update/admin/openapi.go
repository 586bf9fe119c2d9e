package admin

import (
	_ "embed"
	"net/http"
)

// openAPIDoc is the OpenAPI 3.1 document of the admin API, served as is.
// It is edited by hand: the package's tests check it against the routes
// and against every request and answer they exchange.
//
//go:embed openapi.json
var openAPIDoc []byte

// openAPIPath is where, under the API root, the document is served.
const openAPIPath = "/openapi.json"

func (a *API) serveOpenAPI(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(openAPIDoc)
	return nil
}
