package httpapi

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestOpenAPI_matchesRoutes: every registered route is in openapi.json,
// and every operation there is a registered route.
func TestOpenAPI_matchesRoutes(t *testing.T) {
	f := newFixture(t)
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	var described []string
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if method == "parameters" {
				continue
			}
			var o struct {
				OperationID string                     `json:"operationId"`
				Responses   map[string]json.RawMessage `json:"responses"`
			}
			if err := json.Unmarshal(op, &o); err != nil || o.OperationID == "" || o.Responses["200"] == nil {
				t.Errorf("%s %s: operation without an id or a 200 answer (%v)", method, path, err)
			}
			described = append(described, strings.ToUpper(method)+" "+path)
		}
	}
	routes := f.h.Routes()
	slices.Sort(described)
	slices.Sort(routes)
	if !slices.Equal(described, routes) {
		for _, r := range routes {
			if !slices.Contains(described, r) {
				t.Errorf("route %s is not in openapi.json", r)
			}
		}
		for _, d := range described {
			if !slices.Contains(routes, d) {
				t.Errorf("openapi.json describes %s, which is not a route", d)
			}
		}
	}
	if len(routes) < 20 {
		t.Fatalf("only %d routes", len(routes))
	}
}
