package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestCosignDownloadsKoStyleSBOM: the unsigned SBOM kiln build attaches
// (without --sign) is where a ko user's tooling looks: the real cosign's
// `download sbom` finds it on kiln's own registry, for an image and, for
// an index, both at the index and with --platform.
func TestCosignDownloadsKoStyleSBOM(t *testing.T) {
	s := newSigning(t, newKilnRegistry(t))
	ref := s.build(t, "sbom", "--sbom", "cyclonedx")
	code, out := cosign(t, s.cenv, "download", "sbom", ref)
	if code != 0 || !strings.Contains(out, "Found SBOM of media type: application/vnd.cyclonedx+json") {
		t.Fatalf("cosign download sbom %s: exit %d\n%s", ref, code, out)
	}
	bom := out[strings.Index(out, "{"):]
	var doc struct {
		BOMFormat   string `json:"bomFormat"`
		SpecVersion string `json:"specVersion"`
		Metadata    struct {
			Component struct{ Version string } `json:"component"`
		} `json:"metadata"`
	}
	if err := json.NewDecoder(strings.NewReader(bom)).Decode(&doc); err != nil || doc.BOMFormat != "CycloneDX" || doc.SpecVersion != "1.5" || doc.Metadata.Component.Version != digestOf(t, ref).String() {
		t.Errorf("downloaded BOM %+v, %v: want CycloneDX 1.5 of %s", doc, err, ref)
	}

	idx := s.build(t, "sbom-index", "--platform", "linux/amd64,linux/arm64")
	for _, args := range [][]string{{idx}, {"--platform", "linux/arm64", idx}} {
		code, out := cosign(t, s.cenv, append([]string{"download", "sbom"}, args...)...)
		if code != 0 || !strings.Contains(out, "Found SBOM of media type: text/spdx+json") || !strings.Contains(out, `"spdxVersion": "SPDX-2.3"`) {
			t.Errorf("cosign download sbom %v: exit %d\n%s", args, code, out)
		}
		if len(args) > 1 && !strings.Contains(out, "platform linux/arm64") {
			t.Errorf("cosign download sbom %v: not the arm64 image's SBOM:\n%s", args, out)
		}
	}

	none := s.build(t, "sbom-none", "--sbom", "none")
	if code, out := cosign(t, s.cenv, "download", "sbom", none); code == 0 {
		t.Errorf("--sbom none: cosign found an SBOM:\n%s", out)
	}
}
