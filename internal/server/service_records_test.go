package server

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// TestServiceUnknownBuildIsNotFound: against the real records database,
// an ID no build has is a 404 with a JSON error on every route that
// names a build (the service once matched the database's "no such build"
// against a sentinel of its own, and answered 500).
func TestServiceUnknownBuildIsNotFound(t *testing.T) {
	url := serve(t, http.DefaultClient, "http", "127.0.0.1", "--data", t.TempDir())
	const id = "0123456789abcdef0123" // the records' ID form, never handed out
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/builds/" + id},
		{"GET", "/api/v1/builds/" + id + "/log"},
		{"POST", "/api/v1/builds/" + id + "/cancel"},
		{"POST", "/api/v1/builds/" + id + "/retry"},
	} {
		req, err := http.NewRequest(c.method, url+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var body struct {
			Error struct{ Code string } `json:"error"`
		}
		if resp.StatusCode != http.StatusNotFound || json.Unmarshal(raw, &body) != nil || body.Error.Code != "not_found" {
			t.Errorf("%s %s = %d %s, want 404 not_found", c.method, c.path, resp.StatusCode, raw)
		}
	}
}
