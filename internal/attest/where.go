package attest

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/pipeline"
	"github.com/kilnbuild/kiln/internal/sign"
)

// Attachment says where Result put one manifest's signature and
// attestations, for a build's record.
type Attachment struct {
	Manifest string      `json:"manifest"` // REPO@sha256:... that was signed
	Format   sign.Format `json:"format"`
	// Signature and Attestations are the tags that hold them
	// (REPO:sha256-<hex>.sig and .att); with FormatReferrers both are
	// Manifest, whose OCI 1.1 referrers hold them.
	Signature    string `json:"signature"`
	Attestations string `json:"attestations"`
}

// Attachments lists, for each manifest Result signs in res (the image or
// index, and each platform's manifest of an index), where format f puts
// its signature and attestations. Digests that do not parse are skipped:
// Result refuses them.
func Attachments(res pipeline.Result, f sign.Format) []Attachment {
	digests := []string{res.Digest}
	if len(res.Images) > 1 {
		for _, img := range res.Images {
			digests = append(digests, img.Digest)
		}
	}
	var out []Attachment
	for _, d := range digests {
		h, err := v1.NewHash(d)
		if err != nil {
			continue
		}
		a := Attachment{Manifest: res.Repo + "@" + h.String(), Format: f}
		if f == sign.FormatReferrers {
			a.Signature, a.Attestations = a.Manifest, a.Manifest
		} else {
			a.Signature, a.Attestations = res.Repo+":"+sign.SignatureTag(h), res.Repo+":"+sign.AttestationTag(h)
		}
		out = append(out, a)
	}
	return out
}
