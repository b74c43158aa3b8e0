package sbom

import (
	"net/url"
	"strings"
	"time"
)

// IndexInput is what an index's SBOM describes: the index and the image
// of each platform in it (each image has its own SBOM).
type IndexInput struct {
	Index   string // repository@digest of the index
	Images  []IndexImage
	Created time.Time
	Tool    string // "kiln-<version>"
}

// IndexImage is one platform's image in an index.
type IndexImage struct {
	Digest   string
	Platform string // e.g. linux/arm64
}

// GenerateIndex makes the SPDX document of an index: the index, which
// contains one image per platform.
func GenerateIndex(in IndexInput) *Document {
	repo, digest, _ := strings.Cut(in.Index, "@")
	doc := &Document{
		SPDXVersion: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT", Name: in.Index,
		DocumentNamespace: "https://kilnbuild.github.io/spdx/" + url.PathEscape(in.Index) + "/index",
		CreationInfo:      CreationInfo{Created: in.Created.UTC().Format(time.RFC3339), Creators: []string{"Tool: " + in.Tool}},
	}
	const indexID = "SPDXRef-Image"
	doc.add(imagePackage(repo, digest, "", indexID, "image index"))
	doc.DocumentDescribes = []string{indexID}
	doc.relate("SPDXRef-DOCUMENT", "DESCRIBES", indexID)
	for _, img := range in.Images {
		id := doc.uniqueID("SPDXRef-Image-" + sanitize(img.Platform))
		doc.add(imagePackage(repo, img.Digest, img.Platform, id, "platform "+img.Platform))
		doc.relate(indexID, "CONTAINS", id)
	}
	return doc
}

// imagePackage is the package of an image (or index) repo@digest.
func imagePackage(repo, digest, platform, id, comment string) Package {
	p := Package{
		Name: repo, SPDXID: id, VersionInfo: digest, DownloadLocation: noAssertion,
		LicenseConcluded: noAssertion, LicenseDeclared: noAssertion, CopyrightText: noAssertion,
		PrimaryPurpose: "CONTAINER", Comment: comment,
		ExternalRefs: []ExternalRef{{Category: "PACKAGE-MANAGER", Type: "purl", Locator: ociPurl(repo, digest, platform, "")}},
	}
	if h, ok := strings.CutPrefix(digest, "sha256:"); ok {
		p.Checksums = []Checksum{{Algorithm: "SHA256", Value: h}}
	}
	return p
}
