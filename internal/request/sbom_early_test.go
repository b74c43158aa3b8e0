package request

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/sign"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// sbomGate is a registry that can hold the image's manifest until an SBOM
// manifest is stored (a push that waits for the image before attaching its
// SBOM then never gets there), and can refuse either kind of manifest.
type sbomGate struct {
	inner http.Handler
	gateRules

	once       sync.Once
	sbomStored chan struct{}
	mu         sync.Mutex
	imageFirst bool // the image's manifest went in before any SBOM's
}

type gateRules struct{ holdImage, refuseSBOM, refuseImage bool }

func (g *sbomGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, ref, isManifest := strings.Cut(r.URL.Path, "/manifests/")
	if r.Method != http.MethodPut || !isManifest {
		g.inner.ServeHTTP(w, r)
		return
	}
	isSBOM := strings.HasSuffix(ref, ".sbom")
	if (isSBOM && g.refuseSBOM) || (!isSBOM && g.refuseImage) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`{"errors":[{"code":"DENIED","message":"refused by the test"}]}`))
		return
	}
	if !isSBOM && g.holdImage {
		select {
		case <-g.sbomStored:
		case <-time.After(10 * time.Second): // a bound, so that the old order fails instead of hanging
			g.mu.Lock()
			g.imageFirst = true
			g.mu.Unlock()
		}
	}
	g.inner.ServeHTTP(w, r)
	if isSBOM {
		g.once.Do(func() { close(g.sbomStored) })
	}
}

// TestSBOMGoesUpWithTheImage: to a registry, the SBOM is pushed while the
// image is (its tag names the image's digest, known before); both are
// there afterwards, the log still reports the SBOM after the image, and a
// refused SBOM fails the build with the registry's reason.
func TestSBOMGoesUpWithTheImage(t *testing.T) {
	needsCompile(t)
	for _, tc := range []struct {
		name string
		gate gateRules
		says string // "" succeeds
	}{
		{name: "image and SBOM together", gate: gateRules{holdImage: true}},
		{name: "a refused SBOM fails the build", gate: gateRules{refuseSBOM: true}, says: "attaching the SBOM of"},
		{name: "a refused image fails the build", gate: gateRules{refuseImage: true}, says: "pushing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &sbomGate{inner: testutil.QuietRegistry(), gateRules: tc.gate, sbomStored: make(chan struct{})}
			srv := httptest.NewServer(g)
			t.Cleanup(srv.Close)
			reg := strings.TrimPrefix(srv.URL, "http://")

			env, _ := layoutEnv(t)
			var log bytes.Buffer
			env.Publisher, env.Repo, env.Signatures, env.Progress = &publish.ToRegistry{Repo: reg + "/app"}, reg+"/app", &sign.RegistryStore{}, &log
			out, err := Run(context.Background(), env, Build{Packages: []string{"./cmd/hello"}, Base: "scratch", Bare: true, SBOM: "spdx"})
			if tc.says != "" {
				if err == nil || !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), "DENIED") {
					t.Fatalf("Run: %v; want an error saying %q and the registry's DENIED", err, tc.says)
				}
				t.Log(err)
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("the error is not one line: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if g.imageFirst {
				t.Error("the image's manifest went in before any SBOM: the SBOM was not pushed with the image")
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
