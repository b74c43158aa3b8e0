package sbom_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/base"
	"github.com/kilnbuild/kiln/internal/sbom"
)

const (
	imageDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	baseDigest  = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	repo        = "registry.example.com/team/hello"

	// sumXY is the h1 hash of bytes 0x00…0x1f; sumFork of 0x20…0x3f.
	sumXY      = "h1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	hexXY      = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	sumFork    = "h1:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
	hexFork    = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
	sumUnused  = "h1://////////////////////////////////////////8="
	goVersion  = "go1.26.0"
	kilnTool   = "kiln-v1.2.3"
	tzLicense  = "LicenseRef-tzdata-public-domain"
	buildInfoS = "path\texample.com/hello/cmd/hello\n" +
		"mod\texample.com/hello\t(devel)\t\n" +
		"dep\tgithub.com/x/y\tv1.2.3\t" + sumXY + "\n" +
		"dep\tgithub.com/a/b\tv0.1.0\t" + sumUnused + "\n" +
		"=>\tgithub.com/fork/b\tv0.1.1\t" + sumFork + "\n" +
		"build\t-compiler=gc\n" +
		"build\tGOOS=linux\n"
)

func buildInfo(t *testing.T, s string) *debug.BuildInfo {
	t.Helper()
	bi, err := debug.ParseBuildInfo(s)
	if err != nil {
		t.Fatal(err)
	}
	bi.GoVersion = goVersion // ParseBuildInfo leaves the go line to the caller
	return bi
}

func staticInput(t *testing.T) sbom.Input {
	return sbom.Input{
		Image:        repo + "@" + imageDigest,
		Platform:     "linux/arm64",
		BuildInfo:    buildInfo(t, buildInfoS),
		Base:         base.StaticName,
		BaseDigest:   baseDigest,
		BaseContents: base.StaticContents(runtime.GOROOT()),
		Created:      time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("X", -7200)),
		Tool:         kilnTool,
	}
}

var idPattern = regexp.MustCompile(`^SPDXRef-[A-Za-z0-9.-]+$`)

// checkDocument checks the rules every document must keep and returns its
// packages by SPDXID.
func checkDocument(t *testing.T, doc *sbom.Document) map[string]sbom.Package {
	t.Helper()
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.SPDXID != "SPDXRef-DOCUMENT" {
		t.Errorf("header %q %q %q", doc.SPDXVersion, doc.DataLicense, doc.SPDXID)
	}
	ids := map[string]sbom.Package{}
	for _, p := range doc.Packages {
		if !idPattern.MatchString(p.SPDXID) {
			t.Errorf("SPDXID %q is not valid", p.SPDXID)
		}
		if _, dup := ids[p.SPDXID]; dup {
			t.Errorf("SPDXID %q is used twice", p.SPDXID)
		}
		ids[p.SPDXID] = p
		if p.Name == "" || p.DownloadLocation == "" || p.LicenseConcluded == "" || p.LicenseDeclared == "" || p.CopyrightText == "" {
			t.Errorf("%s lacks a required field: %+v", p.SPDXID, p)
		}
		if p.Supplier != "" && p.Supplier != "NOASSERTION" && !strings.HasPrefix(p.Supplier, "Person: ") && !strings.HasPrefix(p.Supplier, "Organization: ") {
			t.Errorf("%s: supplier %q must be Person:, Organization: or NOASSERTION", p.SPDXID, p.Supplier)
		}
		for _, c := range p.Checksums {
			if c.Algorithm != "SHA256" || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(c.Value) {
				t.Errorf("%s: checksum %+v", p.SPDXID, c)
			}
		}
	}
	for _, r := range doc.Relationships {
		for _, id := range []string{r.Element, r.Related} {
			if _, ok := ids[id]; !ok && id != doc.SPDXID {
				t.Errorf("relationship %+v refers to %q, which is not in the document", r, id)
			}
		}
	}
	declared := map[string]bool{}
	for _, l := range doc.ExtractedLicenses {
		if declared[l.LicenseID] {
			t.Errorf("%s is declared twice", l.LicenseID)
		}
		declared[l.LicenseID] = true
		if l.Name == "" || l.Text == "" {
			t.Errorf("%s lacks a name or text", l.LicenseID)
		}
	}
	for _, p := range doc.Packages {
		for _, lic := range []string{p.LicenseConcluded, p.LicenseDeclared} {
			if strings.HasPrefix(lic, "LicenseRef-") && !declared[lic] {
				t.Errorf("%s uses %s, not in hasExtractedLicensingInfos", p.SPDXID, lic)
			}
		}
	}
	if len(doc.DocumentDescribes) != 1 || doc.DocumentDescribes[0] != "SPDXRef-Image" {
		t.Errorf("documentDescribes %v", doc.DocumentDescribes)
	}
	describes := 0
	for _, r := range doc.Relationships {
		if r.Type == "DESCRIBES" {
			describes++
			if r.Element != "SPDXRef-DOCUMENT" || r.Related != "SPDXRef-Image" {
				t.Errorf("DESCRIBES %+v, want the document describing the image", r)
			}
		}
	}
	if describes != 1 {
		t.Errorf("%d DESCRIBES relationships, want 1", describes)
	}

	// JSON round trip.
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var back sbom.Document
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, doc) {
		t.Errorf("JSON round trip changed the document")
	}
	return ids
}

func byName(doc *sbom.Document) map[string]sbom.Package {
	out := map[string]sbom.Package{}
	for _, p := range doc.Packages {
		out[p.Name] = p
	}
	return out
}

func purl(p sbom.Package) string {
	for _, r := range p.ExternalRefs {
		if r.Category == "PACKAGE-MANAGER" && r.Type == "purl" {
			return r.Locator
		}
	}
	return ""
}

func relations(doc *sbom.Document) map[string]bool {
	out := map[string]bool{}
	for _, r := range doc.Relationships {
		out[r.Element+" "+r.Type+" "+r.Related] = true
	}
	return out
}

func checksum(p sbom.Package) string {
	if len(p.Checksums) != 1 {
		return ""
	}
	return p.Checksums[0].Value
}

// tzdata reads the DATA= line of the toolchain's lib/time/update.bash
// (e.g. 2025c).
func tzdata(t *testing.T) string {
	t.Helper()
	f, err := os.Open(filepath.Join(runtime.GOROOT(), "lib", "time", "update.bash"))
	if err != nil {
		t.Fatalf("no update.bash in GOROOT: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "DATA="); ok {
			if !regexp.MustCompile(`^20[0-9]{2}[a-z]$`).MatchString(v) {
				t.Fatalf("DATA=%s is not a tzdata release", v)
			}
			return v
		}
	}
	t.Fatal("no DATA= line in update.bash")
	return ""
}

// fallbackVersion is the version of the CA bundle module in this binary,
// "1" when the build info does not list it (test binaries list no deps).
func fallbackVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "golang.org/x/crypto/x509roots/fallback" {
				return d.Version
			}
		}
	}
	return "1"
}

func TestGenerateStatic(t *testing.T) {
	doc := sbom.Generate(staticInput(t))
	ids := checkDocument(t, doc)

	if doc.Name != repo+"@"+imageDigest {
		t.Errorf("name %q", doc.Name)
	}
	if want := "https://kilnbuild.github.io/spdx/registry.example.com%2Fteam%2Fhello@" + imageDigest + "/linux-arm64"; doc.DocumentNamespace != want {
		t.Errorf("namespace %q, want %q", doc.DocumentNamespace, want)
	}
	if want := (sbom.CreationInfo{Created: "2026-03-04T07:06:07Z", Creators: []string{"Tool: kiln-v1.2.3"}}); !reflect.DeepEqual(doc.CreationInfo, want) {
		t.Errorf("creationInfo %+v, want %+v", doc.CreationInfo, want)
	}

	img := ids["SPDXRef-Image"]
	if img.Name != repo || img.VersionInfo != imageDigest || img.PrimaryPurpose != "CONTAINER" || checksum(img) != strings.TrimPrefix(imageDigest, "sha256:") {
		t.Errorf("image package %+v", img)
	}
	if got, want := purl(img), "pkg:oci/hello@"+imageDigest+"?arch=arm64&repository_url=registry.example.com%2Fteam%2Fhello"; got != want {
		t.Errorf("image purl %q, want %q", got, want)
	}

	pkgs := byName(doc)
	for _, tc := range []struct {
		name, version, purl, download, sum, purpose string
	}{
		{"example.com/hello", "(devel)", "pkg:golang/example.com/hello", "NOASSERTION", "", "APPLICATION"},
		{"github.com/x/y", "v1.2.3", "pkg:golang/github.com/x/y@v1.2.3", "https://proxy.golang.org/github.com/x/y/@v/v1.2.3.zip", hexXY, "LIBRARY"},
		{"github.com/fork/b", "v0.1.1", "pkg:golang/github.com/fork/b@v0.1.1", "https://proxy.golang.org/github.com/fork/b/@v/v0.1.1.zip", hexFork, "LIBRARY"},
	} {
		p, ok := pkgs[tc.name]
		if !ok {
			t.Errorf("no package %s", tc.name)
			continue
		}
		if p.VersionInfo != tc.version || purl(p) != tc.purl || p.DownloadLocation != tc.download || checksum(p) != tc.sum || p.PrimaryPurpose != tc.purpose {
			t.Errorf("%s: version %q purl %q download %q checksum %q purpose %q\nwant %q %q %q %q %q",
				tc.name, p.VersionInfo, purl(p), p.DownloadLocation, checksum(p), p.PrimaryPurpose,
				tc.version, tc.purl, tc.download, tc.sum, tc.purpose)
		}
	}
	if _, ok := pkgs["github.com/a/b"]; ok {
		t.Error("the replaced module is listed under its own path")
	}
	for _, p := range doc.Packages {
		if strings.Contains(purl(p), "github.com/a/b") || checksum(p) == "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff" {
			t.Errorf("%s carries the replaced module's purl or sum", p.SPDXID)
		}
	}

	goPkg := pkgs["go"]
	if goPkg.VersionInfo != goVersion || purl(goPkg) != "pkg:golang/stdlib@1.26.0" || goPkg.LicenseDeclared != "BSD-3-Clause" || goPkg.SPDXID != "SPDXRef-Go-go1.26.0" {
		t.Errorf("go package %+v", goPkg)
	}

	b := ids["SPDXRef-Base"]
	if b.Name != "static" || b.VersionInfo != baseDigest || checksum(b) != strings.TrimPrefix(baseDigest, "sha256:") || len(b.ExternalRefs) != 0 {
		t.Errorf("base package %+v", b)
	}
	if !strings.Contains(b.Comment, kilnTool) {
		t.Errorf("base comment %q does not name the tool", b.Comment)
	}

	ca, tz := pkgs["ca-certificates"], pkgs["tzdata"]
	if ca.VersionInfo != fallbackVersion() || ca.LicenseDeclared != "MPL-2.0" || ca.LicenseConcluded != "MPL-2.0" || ca.Supplier != "Organization: Mozilla" {
		t.Errorf("ca-certificates %+v", ca)
	}
	if !strings.Contains(ca.Comment, "/etc/ssl/certs/ca-certificates.crt") {
		t.Errorf("ca-certificates comment %q", ca.Comment)
	}
	if tz.VersionInfo != tzdata(t) || tz.LicenseDeclared != tzLicense || tz.Supplier != "Organization: IANA" {
		t.Errorf("tzdata %+v", tz)
	}
	if len(doc.ExtractedLicenses) != 1 || doc.ExtractedLicenses[0].LicenseID != tzLicense {
		t.Errorf("hasExtractedLicensingInfos %+v, want %s", doc.ExtractedLicenses, tzLicense)
	}

	rel := relations(doc)
	for _, want := range []string{
		"SPDXRef-DOCUMENT DESCRIBES SPDXRef-Image",
		"SPDXRef-Image CONTAINS " + pkgs["example.com/hello"].SPDXID,
		pkgs["example.com/hello"].SPDXID + " DEPENDS_ON " + goPkg.SPDXID,
		pkgs["example.com/hello"].SPDXID + " DEPENDS_ON " + pkgs["github.com/x/y"].SPDXID,
		pkgs["example.com/hello"].SPDXID + " DEPENDS_ON " + pkgs["github.com/fork/b"].SPDXID,
		"SPDXRef-Image DESCENDANT_OF SPDXRef-Base",
		"SPDXRef-Base CONTAINS " + ca.SPDXID,
		"SPDXRef-Base CONTAINS " + tz.SPDXID,
	} {
		if !rel[want] {
			t.Errorf("no relationship %q", want)
		}
	}
	if len(doc.Relationships) != 8 || len(doc.Packages) != 8 {
		t.Errorf("%d relationships and %d packages, want 8 and 8", len(doc.Relationships), len(doc.Packages))
	}
}

func TestGenerateJSONFields(t *testing.T) {
	raw, err := json.Marshal(sbom.Generate(staticInput(t)))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT"} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
	for _, k := range []string{"name", "documentNamespace", "creationInfo", "documentDescribes", "packages", "relationships", "hasExtractedLicensingInfos"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %s in the JSON", k)
		}
	}
	p := m["packages"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "SPDXID", "versionInfo", "downloadLocation", "filesAnalyzed", "checksums", "licenseConcluded", "licenseDeclared", "copyrightText", "externalRefs", "primaryPackagePurpose"} {
		if _, ok := p[k]; !ok {
			t.Errorf("no %s in the image package's JSON", k)
		}
	}
	if p["filesAnalyzed"] != false {
		t.Errorf("filesAnalyzed = %v, want false", p["filesAnalyzed"])
	}
	ref := p["externalRefs"].([]any)[0].(map[string]any)
	if ref["referenceCategory"] != "PACKAGE-MANAGER" || ref["referenceType"] != "purl" {
		t.Errorf("external ref %v", ref)
	}
	rel := m["relationships"].([]any)[0].(map[string]any)
	if rel["spdxElementId"] != "SPDXRef-DOCUMENT" || rel["relationshipType"] != "DESCRIBES" || rel["relatedSpdxElement"] != "SPDXRef-Image" {
		t.Errorf("first relationship %v", rel)
	}
	lic := m["hasExtractedLicensingInfos"].([]any)[0].(map[string]any)
	if lic["licenseId"] != tzLicense || lic["extractedText"] == "" || lic["name"] == "" {
		t.Errorf("extracted licence %v", lic)
	}
}

func TestGenerateBases(t *testing.T) {
	for _, tc := range []struct {
		name      string
		base      string
		digest    string
		wantBase  bool
		wantPurl  string
		wantLicID bool
	}{
		{"registry base with tag", "cgr.dev/chainguard/static:latest", baseDigest, true,
			"pkg:oci/static@" + baseDigest + "?arch=arm64&repository_url=cgr.dev%2Fchainguard%2Fstatic&tag=latest", false},
		{"registry base with port and digest", "localhost:5000/base@" + baseDigest, baseDigest, true,
			"pkg:oci/base@" + baseDigest + "?arch=arm64&repository_url=localhost%3A5000%2Fbase", false},
		{"registry base by name only", "gcr.io/distroless/static", baseDigest, true,
			"pkg:oci/static@" + baseDigest + "?arch=arm64&repository_url=gcr.io%2Fdistroless%2Fstatic", false},
		{"oci layout base", "oci:/tmp/layout:base", baseDigest, true, "", false},
		{"scratch", base.ScratchName, "", false, "", false},
		{"no base", "", "", false, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := staticInput(t)
			in.Base, in.BaseDigest, in.BaseContents = tc.base, tc.digest, nil
			doc := sbom.Generate(in)
			ids := checkDocument(t, doc)
			b, ok := ids["SPDXRef-Base"]
			if ok != tc.wantBase {
				t.Fatalf("base package present = %v, want %v", ok, tc.wantBase)
			}
			rel := relations(doc)
			if rel["SPDXRef-Image DESCENDANT_OF SPDXRef-Base"] != tc.wantBase {
				t.Errorf("DESCENDANT_OF present = %v, want %v", !tc.wantBase, tc.wantBase)
			}
			if len(doc.ExtractedLicenses) != 0 {
				t.Errorf("extracted licences %v without base contents", doc.ExtractedLicenses)
			}
			if !ok {
				if len(doc.Packages) != 5 {
					t.Errorf("%d packages, want 5 (image, main, go, two deps)", len(doc.Packages))
				}
				return
			}
			if b.Name != tc.base || b.VersionInfo != tc.digest || checksum(b) != strings.TrimPrefix(tc.digest, "sha256:") || b.PrimaryPurpose != "CONTAINER" {
				t.Errorf("base package %+v", b)
			}
			if got := purl(b); got != tc.wantPurl {
				t.Errorf("base purl %q, want %q", got, tc.wantPurl)
			}
		})
	}
}

func TestGenerateNoBuildInfo(t *testing.T) {
	in := staticInput(t)
	in.BuildInfo = nil
	doc := sbom.Generate(in)
	checkDocument(t, doc)
	for _, p := range doc.Packages {
		if strings.HasPrefix(p.SPDXID, "SPDXRef-Module-") || p.Name == "go" {
			t.Errorf("package %s without build info", p.SPDXID)
		}
	}
}

// TestGenerateModules covers module shapes beyond the basic fixture.
func TestGenerateModules(t *testing.T) {
	for _, tc := range []struct {
		name  string
		deps  string // dep (and =>) lines
		check func(t *testing.T, pkgs map[string]sbom.Package)
	}{
		{"upper case path uses the proxy's case encoding", "dep\tgithub.com/BurntSushi/toml\tv1.4.0\t" + sumXY + "\n",
			func(t *testing.T, pkgs map[string]sbom.Package) {
				p := pkgs["github.com/BurntSushi/toml"]
				if want := "https://proxy.golang.org/github.com/!burnt!sushi/toml/@v/v1.4.0.zip"; p.DownloadLocation != want {
					t.Errorf("download %q, want %q", p.DownloadLocation, want)
				}
				if want := "pkg:golang/github.com/burntsushi/toml@v1.4.0"; purl(p) != want {
					t.Errorf("purl %q, want %q", purl(p), want)
				}
			}},
		{"replaced by a local directory", "dep\tgithub.com/a/b\tv0.1.0\t" + sumXY + "\n=>\t../b\t\t\n",
			func(t *testing.T, pkgs map[string]sbom.Package) {
				if _, ok := pkgs["../b"]; ok {
					t.Error("a directory is listed as a module")
				}
				p, ok := pkgs["github.com/a/b"]
				if !ok {
					t.Fatal("the module replaced by a directory is missing")
				}
				if purl(p) != "pkg:golang/github.com/a/b" || p.VersionInfo != "" || len(p.Checksums) != 0 || p.DownloadLocation != "NOASSERTION" {
					t.Errorf("directory-replaced module %+v: no version, checksum or download may be claimed", p)
				}
				if !strings.Contains(p.Comment, "../b") {
					t.Errorf("comment %q does not name the directory", p.Comment)
				}
			}},
		{"colliding sanitized names stay unique", "dep\tgithub.com/a-b/c\tv1.0.0\t\ndep\tgithub.com/a/b-c\tv1.0.0\t\n",
			func(t *testing.T, pkgs map[string]sbom.Package) {
				x, y := pkgs["github.com/a-b/c"], pkgs["github.com/a/b-c"]
				if x.SPDXID == "" || y.SPDXID == "" || x.SPDXID == y.SPDXID {
					t.Errorf("SPDXIDs %q and %q", x.SPDXID, y.SPDXID)
				}
			}},
		{"sum that is not h1", "dep\tgithub.com/x/y\tv1.2.3\th2:abc\n",
			func(t *testing.T, pkgs map[string]sbom.Package) {
				if p := pkgs["github.com/x/y"]; len(p.Checksums) != 0 {
					t.Errorf("checksums %v from a non-h1 sum", p.Checksums)
				}
			}},
		{"h1 sum of the wrong length", "dep\tgithub.com/x/y\tv1.2.3\th1:AAEC\n",
			func(t *testing.T, pkgs map[string]sbom.Package) {
				if p := pkgs["github.com/x/y"]; len(p.Checksums) != 0 {
					t.Errorf("checksums %v from a short sum", p.Checksums)
				}
			}},
		{"incompatible version", "dep\tgithub.com/x/y\tv2.0.0+incompatible\t\n",
			func(t *testing.T, pkgs map[string]sbom.Package) {
				p := pkgs["github.com/x/y"]
				if want := "https://proxy.golang.org/github.com/x/y/@v/v2.0.0+incompatible.zip"; p.DownloadLocation != want {
					t.Errorf("download %q, want %q", p.DownloadLocation, want)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := staticInput(t)
			in.BuildInfo = buildInfo(t, "path\texample.com/hello\nmod\texample.com/hello\t(devel)\t\n"+tc.deps)
			doc := sbom.Generate(in)
			checkDocument(t, doc)
			tc.check(t, byName(doc))
		})
	}
}

func TestGenerateGoExperiment(t *testing.T) {
	in := staticInput(t)
	in.BuildInfo.GoVersion = "go1.26.0 X:nodwarf5"
	doc := sbom.Generate(in)
	checkDocument(t, doc)
	p := byName(doc)["go"]
	if purl(p) != "pkg:golang/stdlib@1.26.0" {
		t.Errorf("go purl %q, want pkg:golang/stdlib@1.26.0", purl(p))
	}
	if p.VersionInfo != "go1.26.0 X:nodwarf5" {
		t.Errorf("go version %q", p.VersionInfo)
	}
}

func TestPredicateType(t *testing.T) {
	if sbom.PredicateType != "https://spdx.dev/Document" {
		t.Errorf("PredicateType = %q", sbom.PredicateType)
	}
}
