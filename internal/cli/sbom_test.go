package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kilnbuild/kiln/internal/testutil"
)

// attachedSBOM reads the SBOM attached to repo@d at ko's .sbom tag: its
// layer's media type and bytes; ok is false when there is none.
func attachedSBOM(t *testing.T, repo string, d v1.Hash) (types.MediaType, []byte, bool) {
	t.Helper()
	ref, err := name.ParseReference(repo + ":" + d.Algorithm + "-" + d.Hex + ".sbom")
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref)
	if err != nil {
		return "", nil, false
	}
	m, err := img.Manifest()
	if err != nil || len(m.Layers) != 1 {
		t.Fatalf("%s: manifest %+v, %v: want one layer", ref, m, err)
	}
	layers, _ := img.Layers()
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return m.Layers[0].MediaType, b, true
}

// TestBuildSBOM: --sbom attaches the unsigned SBOM of every manifest
// where ko does (cosign's sha256-<hex>.sbom tag), in each kind, and
// --sbom-dir writes the same bytes under ko's file names.
func TestBuildSBOM(t *testing.T) {
	needsCompile(t)
	dir := helloDir(t)
	reg := testutil.Registry(t)

	t.Run("spdx by default", func(t *testing.T) {
		repo := helloName(reg + "/spdx")
		ref, _ := koBuild(t, dir, []string{"KO_DOCKER_REPO=" + reg + "/spdx"})
		d, _ := name.NewDigest(ref)
		h, _ := v1.NewHash(d.DigestStr())
		mt, b, ok := attachedSBOM(t, repo, h)
		if !ok || mt != "text/spdx+json" {
			t.Fatalf("no SPDX SBOM attached (%q, %v)", mt, ok)
		}
		var doc struct {
			SPDXVersion string `json:"spdxVersion"`
			Name        string `json:"name"`
		}
		if err := json.Unmarshal(b, &doc); err != nil || doc.SPDXVersion != "SPDX-2.3" || doc.Name != repo+"@"+h.String() {
			t.Errorf("SBOM %+v, %v: want SPDX-2.3 naming %s@%s", doc, err, repo, h)
		}
	})
	t.Run("cyclonedx for an index, and sbom-dir", func(t *testing.T) {
		repo := helloName(reg + "/cdx")
		sboms := filepath.Join(t.TempDir(), "sboms")
		ref, _ := koBuild(t, dir, []string{"KO_DOCKER_REPO=" + reg + "/cdx"}, "--sbom", "cyclonedx", "--sbom-dir", sboms, "--platform", "linux/amd64,linux/arm64")
		d, _ := name.NewDigest(ref)
		idx, err := remote.Index(d)
		if err != nil {
			t.Fatal(err)
		}
		im, _ := idx.IndexManifest()
		want := map[string]v1.Hash{}
		top, _ := v1.NewHash(d.DigestStr())
		want["hello-index.cyclonedx.json"] = top
		for _, m := range im.Manifests {
			want["hello-"+m.Platform.OS+"-"+m.Platform.Architecture+".cyclonedx.json"] = m.Digest
		}
		for file, h := range want {
			mt, b, ok := attachedSBOM(t, repo, h)
			if !ok || mt != "application/vnd.cyclonedx+json" {
				t.Errorf("%s: no CycloneDX SBOM attached (%q)", h, mt)
				continue
			}
			var bom struct {
				BOMFormat, SpecVersion string
				Metadata               struct{ Component struct{ Version string } }
			}
			if err := json.Unmarshal(b, &bom); err != nil || bom.BOMFormat != "CycloneDX" || bom.SpecVersion != "1.5" || bom.Metadata.Component.Version != h.String() {
				t.Errorf("%s: BOM %+v, %v", h, bom, err)
			}
			onDisk, err := os.ReadFile(filepath.Join(sboms, file))
			if err != nil || !bytes.Equal(onDisk, b) {
				t.Errorf("--sbom-dir %s: %v; want the attached bytes", file, err)
			}
		}
		if entries, _ := os.ReadDir(sboms); len(entries) != len(want) {
			t.Errorf("--sbom-dir holds %d files, want %d", len(entries), len(want))
		}
	})
	t.Run("go.version-m", func(t *testing.T) {
		repo := helloName(reg + "/gvm")
		ref, _ := koBuild(t, dir, []string{"KO_DOCKER_REPO=" + reg + "/gvm"}, "--sbom", "go.version-m")
		d, _ := name.NewDigest(ref)
		h, _ := v1.NewHash(d.DigestStr())
		mt, b, ok := attachedSBOM(t, repo, h)
		if !ok || mt != "application/vnd.go.version-m" || !strings.HasPrefix(string(b), "/ko-app/hello: go1.") || !strings.Contains(string(b), "\tpath\texample.com/hello/cmd/hello\n") {
			t.Errorf("go.version-m SBOM %q %q, %v", mt, b, ok)
		}
	})
	t.Run("none", func(t *testing.T) {
		ref, _ := koBuild(t, dir, []string{"KO_DOCKER_REPO=" + reg + "/none"}, "--sbom", "none")
		d, _ := name.NewDigest(ref)
		h, _ := v1.NewHash(d.DigestStr())
		if _, _, ok := attachedSBOM(t, helloName(reg+"/none"), h); ok {
			t.Error("--sbom none attached an SBOM")
		}
	})
	t.Run("push=false writes sbom-dir only", func(t *testing.T) {
		sboms := filepath.Join(t.TempDir(), "sboms")
		koBuild(t, dir, []string{"KO_DOCKER_REPO=" + reg + "/nopush"}, "--push=false", "--sbom-dir", sboms)
		if _, err := os.Stat(filepath.Join(sboms, "hello-linux-amd64.spdx.json")); err != nil {
			t.Error(err)
		}
	})
}
