package sbom

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/mod/module"

	"github.com/kilnbuild/kiln/internal/base"
)

// PredicateType is the in-toto predicate type cosign calls "spdxjson".
const PredicateType = "https://spdx.dev/Document"

// Input is what the SBOM describes.
type Input struct {
	Image      string           // repository@digest of the image
	Platform   string           // e.g. linux/amd64
	BuildInfo  *debug.BuildInfo // from the binary
	Base       string           // base reference as given
	BaseDigest string           // "" for scratch
	// BaseContents lists third-party parts of the base (the static base's
	// CA bundle and tzdata); empty for others.
	BaseContents []base.Content
	Created      time.Time
	Tool         string // "kiln-<version>"
}

// Generate makes the SPDX document: the image, the Go main module, every
// module in the binary's build info, the Go toolchain, and the base.
func Generate(in Input) *Document {
	doc := &Document{
		SPDXVersion:       "SPDX-2.3",
		DataLicense:       "CC0-1.0",
		SPDXID:            "SPDXRef-DOCUMENT",
		Name:              in.Image,
		DocumentNamespace: "https://kilnbuild.github.io/spdx/" + url.PathEscape(in.Image) + "/" + strings.ReplaceAll(in.Platform, "/", "-"),
		CreationInfo:      CreationInfo{Created: in.Created.UTC().Format(time.RFC3339), Creators: []string{"Tool: " + in.Tool}},
	}
	imageID := "SPDXRef-Image"
	repo, digest, _ := strings.Cut(in.Image, "@")
	doc.add(imagePackage(repo, digest, in.Platform, imageID, "platform "+in.Platform))
	doc.DocumentDescribes = []string{imageID}
	doc.relate("SPDXRef-DOCUMENT", "DESCRIBES", imageID)

	if bi := in.BuildInfo; bi != nil {
		mainID := doc.addModule(bi.Main, "APPLICATION")
		doc.relate(imageID, "CONTAINS", mainID)
		goID := "SPDXRef-Go-" + sanitize(bi.GoVersion)
		doc.add(Package{
			Name: "go", SPDXID: goID, VersionInfo: bi.GoVersion, Supplier: "Organization: Google LLC",
			DownloadLocation: "https://go.dev/dl/", LicenseConcluded: noAssertion, LicenseDeclared: "BSD-3-Clause",
			CopyrightText: noAssertion, Comment: "the Go toolchain and standard library compiled into the binary",
			ExternalRefs: []ExternalRef{{Category: "PACKAGE-MANAGER", Type: "purl", Locator: "pkg:golang/stdlib@" + url.PathEscape(strings.TrimPrefix(goRelease(bi.GoVersion), "go"))}},
		})
		doc.relate(mainID, "DEPENDS_ON", goID)
		for _, dep := range bi.Deps {
			id := doc.addModule(*dep, "LIBRARY")
			doc.relate(mainID, "DEPENDS_ON", id)
		}
	}

	if in.Base != "" && in.Base != base.ScratchName {
		baseID := "SPDXRef-Base"
		p := Package{
			Name: in.Base, SPDXID: baseID, VersionInfo: in.BaseDigest, DownloadLocation: noAssertion,
			LicenseConcluded: noAssertion, LicenseDeclared: noAssertion, CopyrightText: noAssertion,
			PrimaryPurpose: "CONTAINER", Comment: "base image",
		}
		if h, ok := strings.CutPrefix(in.BaseDigest, "sha256:"); ok {
			p.Checksums = []Checksum{{Algorithm: "SHA256", Value: h}}
		}
		if in.Base == base.StaticName {
			// No supplier: SPDX allows only "Person:" or "Organization:" there.
			p.Comment = "kiln's built-in static base, generated offline by " + in.Tool
		} else if in.BaseDigest != "" && !strings.HasPrefix(in.Base, "oci:") {
			// A registry reference as given: the purl names the repository
			// and the tag apart (a local oci: layout has no purl).
			repo, tag := splitRef(in.Base)
			p.ExternalRefs = []ExternalRef{{Category: "PACKAGE-MANAGER", Type: "purl", Locator: ociPurl(repo, in.BaseDigest, in.Platform, tag)}}
		}
		doc.add(p)
		doc.relate(imageID, "DESCENDANT_OF", baseID)
		for i, c := range in.BaseContents {
			id := fmt.Sprintf("SPDXRef-Base-%d-%s", i, sanitize(c.Name))
			doc.add(Package{
				Name: c.Name, SPDXID: id, VersionInfo: c.Version, Supplier: c.Supplier, DownloadLocation: noAssertion,
				LicenseConcluded: c.License, LicenseDeclared: c.License, CopyrightText: noAssertion,
				Comment: "at " + c.Path + " in the image; from " + c.Source,
			})
			doc.relate(baseID, "CONTAINS", id)
			if strings.HasPrefix(c.License, "LicenseRef-tzdata") {
				doc.ExtractedLicenses = append(doc.ExtractedLicenses, ExtractedLicense{
					LicenseID: c.License, Name: "tz database public domain dedication",
					Text: "The tz code and data are in the public domain.",
				})
			}
		}
	}
	return doc
}

func (d *Document) add(p Package) { d.Packages = append(d.Packages, p) }

// uniqueID returns id, or id with a "-N" suffix when a package has it
// already: sanitize is lossy ("a/b-c" and "a-b/c" both become "a-b-c").
func (d *Document) uniqueID(id string) string {
	taken := func(id string) bool {
		for _, p := range d.Packages {
			if p.SPDXID == id {
				return true
			}
		}
		return false
	}
	out := id
	for n := 2; taken(out); n++ {
		out = fmt.Sprintf("%s-%d", id, n)
	}
	return out
}

// goRelease is the release part of a build info Go version:
// "go1.26.0 X:nodwarf5" → "go1.26.0".
func goRelease(v string) string {
	v, _, _ = strings.Cut(v, " ")
	return v
}

func (d *Document) relate(a, typ, b string) {
	d.Relationships = append(d.Relationships, Relationship{Element: a, Type: typ, Related: b})
}

// addModule adds a Go module with its purl and, from its go.sum hash, a
// SHA256 checksum: the decoded "h1:" dirhash, a SHA-256 over the module's
// file list and file hashes.
func (d *Document) addModule(m debug.Module, purpose string) string {
	comment := ""
	switch r := m.Replace; {
	case r == nil:
	case r.Version == "":
		// Replaced by a local directory: keep the module path (a directory
		// is no purl) and claim no version or checksum for the code used.
		comment = "replaced by the directory " + r.Path
		m.Version, m.Sum = "", ""
	default:
		m.Path, m.Version, m.Sum = r.Path, r.Version, r.Sum
	}
	id := d.uniqueID("SPDXRef-Module-" + sanitize(m.Path) + "-" + sanitize(m.Version))
	p := Package{
		Name: m.Path, SPDXID: id, VersionInfo: m.Version, DownloadLocation: noAssertion,
		LicenseConcluded: noAssertion, LicenseDeclared: noAssertion, CopyrightText: noAssertion,
		PrimaryPurpose: purpose, Comment: comment,
		ExternalRefs: []ExternalRef{{Category: "PACKAGE-MANAGER", Type: "purl", Locator: goPurl(m.Path, m.Version)}},
	}
	if m.Version != "" && m.Version != "(devel)" {
		// The proxy's case-encoding ("!"+lower for upper case), not lower case.
		ep, perr := module.EscapePath(m.Path)
		ev, verr := module.EscapeVersion(m.Version)
		if perr == nil && verr == nil {
			p.DownloadLocation = "https://proxy.golang.org/" + ep + "/@v/" + ev + ".zip"
		}
	}
	if h, ok := strings.CutPrefix(m.Sum, "h1:"); ok {
		if raw, err := base64.StdEncoding.DecodeString(h); err == nil && len(raw) == sha256.Size {
			p.Checksums = []Checksum{{Algorithm: "SHA256", Value: hex.EncodeToString(raw)}}
			p.Comment = "checksum: the go.sum h1 dirhash " + m.Sum
		}
	}
	d.add(p)
	return id
}

func goPurl(path, version string) string {
	s := "pkg:golang/" + escapePath(path)
	if version != "" && version != "(devel)" {
		s += "@" + url.PathEscape(version)
	}
	return s
}

// splitRef splits a reference as given into repository and tag, dropping
// a digest: "cgr.dev/chainguard/static:latest@sha256:…" → "cgr.dev/chainguard/static", "latest".
func splitRef(ref string) (repo, tag string) {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i], ref[i+1:]
	}
	return ref, ""
}

func ociPurl(repo, digest, platform, tag string) string {
	name := repo
	if i := strings.LastIndex(repo, "/"); i >= 0 {
		name = repo[i+1:]
	}
	q := url.Values{}
	q.Set("repository_url", repo)
	if platform != "" {
		if _, arch, ok := strings.Cut(platform, "/"); ok {
			q.Set("arch", arch)
		}
	}
	if tag != "" {
		q.Set("tag", tag)
	}
	s := "pkg:oci/" + url.PathEscape(strings.ToLower(name))
	if digest != "" {
		s += "@" + url.PathEscape(digest)
	}
	return s + "?" + q.Encode()
}

func escapePath(p string) string {
	parts := strings.Split(strings.ToLower(p), "/")
	for i, part := range parts {
		parts[i] = url.PathEscape(part)
	}
	return strings.Join(parts, "/")
}

var unsafeID = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

// sanitize makes s usable in an SPDXID (letters, digits, '.', '-').
func sanitize(s string) string {
	return strings.Trim(unsafeID.ReplaceAllString(s, "-"), "-")
}
