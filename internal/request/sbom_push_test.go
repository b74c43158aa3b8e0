package request

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/sign"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// refusing is a registry that refuses the image's manifest or the SBOM's.
type refusing struct {
	inner               http.Handler
	sbomOnly, imageOnly bool
}

func (g refusing) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, ref, isManifest := strings.Cut(r.URL.Path, "/manifests/")
	isSBOM := strings.HasSuffix(ref, ".sbom")
	if r.Method == http.MethodPut && isManifest && ((isSBOM && g.sbomOnly) || (!isSBOM && g.imageOnly)) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`{"errors":[{"code":"DENIED","message":"refused by the test"}]}`))
		return
	}
	g.inner.ServeHTTP(w, r)
}

// TestSBOMPush: to a registry, the image and its SBOM are both there
// after a build, the log reports the SBOM after the image, and a refused
// push of either fails the build with one line that gives the registry's
// reason.
func TestSBOMPush(t *testing.T) {
	needsCompile(t)
	for _, tc := range []struct {
		name string
		reg  refusing
		says string // "" succeeds
	}{
		{name: "image and SBOM", reg: refusing{}},
		{name: "a refused SBOM fails the build", reg: refusing{sbomOnly: true}, says: "attaching the SBOM of"},
		{name: "a refused image fails the build", reg: refusing{imageOnly: true}, says: "pushing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.reg.inner = testutil.QuietRegistry()
			srv := httptest.NewServer(tc.reg)
			t.Cleanup(srv.Close)
			reg := strings.TrimPrefix(srv.URL, "http://")

			env, _ := layoutEnv(t)
			var log bytes.Buffer
			env.Publisher, env.Repo, env.Signatures, env.Progress = &publish.ToRegistry{Repo: reg + "/app"}, reg+"/app", &sign.RegistryStore{}, &log
			out, err := Run(context.Background(), env, Build{Packages: []string{"./cmd/hello"}, Base: "scratch", Bare: true, SBOM: "spdx"})
			if tc.says != "" {
				if err == nil || !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), "DENIED") || strings.Contains(err.Error(), "\n") {
					t.Fatalf("Run: %q; want one line saying %q and the registry's DENIED", err, tc.says)
				}
				return
			}
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			h, _ := v1.NewHash(out[0].Digest)
			for _, ref := range []string{reg + "/app@" + h.String(), reg + "/app:" + h.Algorithm + "-" + h.Hex + ".sbom"} {
				r, err := name.ParseReference(ref)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := remote.Image(r); err != nil {
					t.Errorf("%s: %v", ref, err)
				}
			}
			pub, att := strings.Index(log.String(), ": published "), strings.Index(log.String(), "attached the spdx SBOM")
			if pub < 0 || att < pub {
				t.Errorf("the log does not report the SBOM after the image:\n%s", log.String())
			}
		})
	}
}
