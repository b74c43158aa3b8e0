package registry

import (
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/store"
)

// FuzzParsePath: any path parses without panicking, and every name it
// yields that the store accepts stays inside the store (no "..", no
// leading slash).
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{
		"/v2/", "/v2/_catalog", "/v2/a/b/manifests/latest", "/v2/a/blobs/uploads/",
		"/v2/a/blobs/uploads/123", "/v2/a/tags/list", "/v2/a/referrers/sha256:00",
		"/v2/../x/manifests/y", "/v2/a/manifests/b/manifests/c", "/v2//blobs/x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rt, ok := parsePath(p)
		if !ok || rt.name == "" {
			return
		}
		if store.ValidName(rt.name) == nil {
			if strings.Contains(rt.name, "..") || strings.HasPrefix(rt.name, "/") || strings.Contains(rt.name, "//") {
				t.Fatalf("valid name %q from %q escapes", rt.name, p)
			}
		}
	})
}
