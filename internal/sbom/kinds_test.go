package sbom_test

import (
	"bytes"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kilnbuild/kiln/internal/base"
	"github.com/kilnbuild/kiln/internal/sbom"
	"github.com/kilnbuild/kiln/internal/testutil"
)

func TestParseKind(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want sbom.Kind
		err  bool
	}{
		{"", sbom.KindNone, false},
		{"none", sbom.KindNone, false},
		{"spdx", sbom.KindSPDX, false},
		{"cyclonedx", sbom.KindCycloneDX, false},
		{"go.version-m", sbom.KindGoVersion, false},
		{"SPDX", "", true},
		{"cyclonedx-json", "", true},
		{"syft", "", true},
		{"spdx\n", "", true},
	} {
		got, err := sbom.ParseKind(tc.in)
		if tc.err {
			if !errors.Is(err, sbom.ErrUnknownKind) {
				t.Errorf("ParseKind(%q): %v, want ErrUnknownKind", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseKind(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestFileNames(t *testing.T) {
	for _, tc := range []struct {
		kind           sbom.Kind
		name, platform string
		want           string
	}{
		{sbom.KindSPDX, "hello", "linux/amd64", "hello-linux-amd64.spdx.json"},
		{sbom.KindCycloneDX, "hello", "linux/arm/v7", "hello-linux-arm-v7.cyclonedx.json"},
		{sbom.KindGoVersion, "hello", "linux/arm64", "hello-linux-arm64.go.version-m"},
		{sbom.KindSPDX, "hello", "index", "hello-index.spdx.json"},
	} {
		if got := tc.kind.FileName(tc.name, tc.platform); got != tc.want {
			t.Errorf("%s.FileName(%q, %q) = %q, want %q", tc.kind, tc.name, tc.platform, got, tc.want)
		}
	}
}

func indexInput() sbom.IndexInput {
	return sbom.IndexInput{
		Index: repo + "@" + imageDigest,
		Images: []sbom.IndexImage{
			{Digest: baseDigest, Platform: "linux/amd64"},
			{Digest: "sha256:3333333333333333333333333333333333333333333333333333333333333333", Platform: "linux/arm/v7"},
		},
		Created: time.Unix(1700000000, 0), Tool: kilnTool,
	}
}

func TestGenerateIndex(t *testing.T) {
	doc := sbom.GenerateIndex(indexInput())
	ids := checkDocument(t, doc)
	if len(ids) != 3 {
		t.Fatalf("%d packages, want the index and two images", len(ids))
	}
	rel := relations(doc)
	for _, id := range []string{"SPDXRef-Image-linux-amd64", "SPDXRef-Image-linux-arm-v7"} {
		if !rel["SPDXRef-Image CONTAINS "+id] {
			t.Errorf("the index does not contain %s: %v", id, rel)
		}
	}
}

// cdxRequired is what the CycloneDX 1.5 JSON schema requires of what kiln
// writes (bom-1.5.schema.json: the root, metadata, component, hash,
// license choice and dependency definitions), as patterns on values.
var (
	cdxSerial    = regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	cdxTypes     = []string{"application", "framework", "library", "container", "platform", "operating-system", "device", "device-driver", "firmware", "file", "machine-learning-model", "data"}
	cdxHashAlgs  = []string{"MD5", "SHA-1", "SHA-256", "SHA-384", "SHA-512", "SHA3-256", "SHA3-384", "SHA3-512", "BLAKE2b-256", "BLAKE2b-384", "BLAKE2b-512", "BLAKE3"}
	cdxHash      = regexp.MustCompile(`^([a-fA-F0-9]{32}|[a-fA-F0-9]{40}|[a-fA-F0-9]{64}|[a-fA-F0-9]{96}|[a-fA-F0-9]{128})$`)
	cdxTimestamp = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$`)
	cdxRefTypes  = []string{"vcs", "issue-tracker", "website", "advisories", "bom", "mailing-list", "social", "chat", "documentation", "support", "distribution", "distribution-intake", "license", "build-meta", "build-system", "release-notes", "security-contact", "model-card", "log", "configuration", "evidence", "formulation", "attestation", "threat-model", "adversary-model", "risk-assessment", "vulnerability-assertion", "exploitability-statement", "pentest-report", "static-analysis-report", "dynamic-analysis-report", "runtime-analysis-report", "component-analysis-report", "maturity-report", "certification-report", "codified-infrastructure", "quality-metrics", "poam", "other"}
)

// checkBOM checks raw against cdxRequired, reading it as plain JSON so
// that a field the Go types drop or misspell is found.
func checkBOM(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var bom map[string]any
	if err := json.Unmarshal(raw, &bom); err != nil {
		t.Fatal(err)
	}
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	if bom["bomFormat"] != "CycloneDX" || bom["specVersion"] != "1.5" {
		t.Errorf("bomFormat %v specVersion %v, want CycloneDX 1.5", bom["bomFormat"], bom["specVersion"])
	}
	if v, ok := bom["version"].(float64); !ok || v < 1 || v != float64(int(v)) {
		t.Errorf("version %v, want an integer ≥ 1", bom["version"])
	}
	if !cdxSerial.MatchString(str(bom, "serialNumber")) {
		t.Errorf("serialNumber %q is not a urn:uuid", bom["serialNumber"])
	}
	meta, _ := bom["metadata"].(map[string]any)
	if !cdxTimestamp.MatchString(str(meta, "timestamp")) {
		t.Errorf("metadata.timestamp %q is not a date-time", meta["timestamp"])
	}
	tools, _ := meta["tools"].(map[string]any)
	toolComps, _ := tools["components"].([]any)
	if len(toolComps) != 1 {
		t.Errorf("metadata.tools.components: %v, want kiln", tools)
	}
	refs := map[string]bool{}
	checkComponent := func(where string, v any) {
		c, ok := v.(map[string]any)
		if !ok {
			t.Errorf("%s is not an object", where)
			return
		}
		if !slices.Contains(cdxTypes, str(c, "type")) || str(c, "name") == "" {
			t.Errorf("%s: type %q name %q: both are required, type from the enum", where, c["type"], c["name"])
		}
		if r := str(c, "bom-ref"); r != "" {
			if refs[r] {
				t.Errorf("%s: bom-ref %q is not unique", where, r)
			}
			refs[r] = true
		}
		hashes, _ := c["hashes"].([]any)
		for _, h := range hashes {
			h, _ := h.(map[string]any)
			if !slices.Contains(cdxHashAlgs, str(h, "alg")) || !cdxHash.MatchString(str(h, "content")) {
				t.Errorf("%s: hash %v", where, h)
			}
		}
		lics, _ := c["licenses"].([]any)
		for _, l := range lics {
			l, _ := l.(map[string]any)
			if _, hasExpr := l["expression"]; len(l) != 1 || (!hasExpr && l["license"] == nil) {
				t.Errorf("%s: license %v: one of license or expression", where, l)
			}
		}
		if p := str(c, "purl"); p != "" && !regexp.MustCompile(`^pkg:[a-z]+/`).MatchString(p) {
			t.Errorf("%s: purl %q", where, p)
		}
		exts, _ := c["externalReferences"].([]any)
		for _, e := range exts {
			e, _ := e.(map[string]any)
			if !slices.Contains(cdxRefTypes, str(e, "type")) || str(e, "url") == "" {
				t.Errorf("%s: external reference %v", where, e)
			}
		}
		if s, ok := c["supplier"]; ok {
			if s, _ := s.(map[string]any); str(s, "name") == "" {
				t.Errorf("%s: supplier %v", where, s)
			}
		}
	}
	checkComponent("metadata.component", meta["component"])
	comps, ok := bom["components"].([]any)
	if !ok || len(comps) == 0 {
		t.Fatalf("components: %v", bom["components"])
	}
	for _, c := range comps {
		checkComponent("component", c)
	}
	deps, _ := bom["dependencies"].([]any)
	for _, d := range deps {
		d, _ := d.(map[string]any)
		if !refs[str(d, "ref")] {
			t.Errorf("dependency ref %q is no component's bom-ref", d["ref"])
		}
		on, _ := d["dependsOn"].([]any)
		seen := map[string]bool{}
		for _, o := range on {
			o, _ := o.(string)
			if !refs[o] || seen[o] {
				t.Errorf("%v dependsOn %q: unknown or repeated", d["ref"], o)
			}
			seen[o] = true
		}
	}
	return bom
}

func TestCycloneDX(t *testing.T) {
	in := staticInput(t)
	raw, err := sbom.Render(sbom.KindCycloneDX, in, "/ko-app/hello")
	if err != nil {
		t.Fatal(err)
	}
	bom := checkBOM(t, raw)
	again, _ := sbom.Render(sbom.KindCycloneDX, in, "/ko-app/hello")
	if !bytes.Equal(raw, again) {
		t.Error("two renders of the same input differ")
	}
	meta := bom["metadata"].(map[string]any)
	img := meta["component"].(map[string]any)
	if img["type"] != "container" || img["name"] != repo || img["version"] != imageDigest {
		t.Errorf("metadata.component %v, want the image", img)
	}
	if meta["timestamp"] != "2026-03-04T07:06:07Z" {
		t.Errorf("timestamp %v", meta["timestamp"])
	}
	byName := map[string]map[string]any{}
	for _, c := range bom["components"].([]any) {
		c := c.(map[string]any)
		byName[c["name"].(string)] = c
	}
	for _, tc := range []struct{ name, typ, purl, hash string }{
		{"example.com/hello", "application", "pkg:golang/example.com/hello", ""},
		{"github.com/x/y", "library", "pkg:golang/github.com/x/y@v1.2.3", hexXY},
		{"go", "library", "pkg:golang/stdlib@1.26.0", ""},
		{base.StaticName, "container", "", baseDigest[len("sha256:"):]},
	} {
		c := byName[tc.name]
		if c == nil {
			t.Errorf("no component %s", tc.name)
			continue
		}
		hash := ""
		if hs, ok := c["hashes"].([]any); ok {
			hash = hs[0].(map[string]any)["content"].(string)
		}
		purl, _ := c["purl"].(string)
		if c["type"] != tc.typ || purl != tc.purl || hash != tc.hash {
			t.Errorf("%s: type %v purl %q hash %q; want %s %q %q", tc.name, c["type"], purl, hash, tc.typ, tc.purl, tc.hash)
		}
	}
	// The same graph as the SPDX document: the image depends on the main
	// module and the base, the main module on its modules.
	deps := map[string][]any{}
	for _, d := range bom["dependencies"].([]any) {
		d := d.(map[string]any)
		deps[d["ref"].(string)] = d["dependsOn"].([]any)
	}
	if got := deps["SPDXRef-Image"]; len(got) != 2 {
		t.Errorf("the image depends on %v, want the main module and the base", got)
	}

	rawIdx, err := sbom.RenderIndex(sbom.KindCycloneDX, indexInput())
	if err != nil {
		t.Fatal(err)
	}
	idx := checkBOM(t, rawIdx)
	if n := len(idx["components"].([]any)); n != 2 {
		t.Errorf("the index BOM lists %d components, want its two images", n)
	}
	if idx["serialNumber"] == bom["serialNumber"] {
		t.Error("the image and the index share a serial number")
	}
}

func TestRenderSPDX(t *testing.T) {
	raw, err := sbom.Render(sbom.KindSPDX, staticInput(t), "/ko-app/hello")
	if err != nil {
		t.Fatal(err)
	}
	var doc sbom.Document
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	checkDocument(t, &doc)
	if out, _ := sbom.RenderIndex(sbom.KindGoVersion, indexInput()); out != nil {
		t.Errorf("go.version-m of an index: %q, want nothing (as ko)", out)
	}
	if _, err := sbom.Render(sbom.KindGoVersion, sbom.Input{}, "/ko-app/x"); err == nil {
		t.Error("go.version-m without build info: no error")
	}
}

// TestGoVersionM compares with the go command's own output for this test
// binary, with the binary's path replaced as ko replaces it.
func TestGoVersionM(t *testing.T) {
	goCmd := testutil.RequireTool(t, "go")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bi, err := buildinfo.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	want, err := exec.Command(goCmd, "version", "-m", exe).Output()
	if err != nil {
		t.Fatal(err)
	}
	want = bytes.Replace(want, []byte(exe), []byte("/ko-app/sbom.test"), 1)
	if got := sbom.GoVersionM("/ko-app/sbom.test", bi); !bytes.Equal(got, want) {
		t.Errorf("GoVersionM:\n%s\ngo version -m:\n%s", got, want)
	}
}

func TestAttachment(t *testing.T) {
	payload := []byte(`{"spdxVersion":"SPDX-2.3"}`)
	img, err := sbom.Attachment(sbom.KindSPDX, payload)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img, validate.Fast); err != nil { // the layer is no tar
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON || len(m.Layers) != 1 || m.Layers[0].MediaType != "text/spdx+json" {
		t.Errorf("manifest %+v", m)
	}
	layers, _ := img.Layers()
	rc, _ := layers[0].Compressed()
	got, _ := io.ReadAll(rc)
	if !bytes.Equal(got, payload) {
		t.Errorf("layer %q, want the SBOM as is", got)
	}
	h := v1.Hash{Algorithm: "sha256", Hex: imageDigest[len("sha256:"):]}
	if tag := sbom.Tag(h); tag != "sha256-"+h.Hex+".sbom" {
		t.Errorf("tag %q", tag)
	}
}
