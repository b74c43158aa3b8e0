package attest

import (
	"fmt"

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

// Manifests are the manifests Result signs in res: the image or index,
// then, for an index, each platform's manifest.
func Manifests(res pipeline.Result) ([]v1.Hash, error) {
	digests := []string{res.Digest}
	if len(res.Images) > 1 {
		for _, img := range res.Images {
			digests = append(digests, img.Digest)
		}
	}
	hs := make([]v1.Hash, len(digests))
	for i, d := range digests {
		h, err := v1.NewHash(d)
		if err != nil {
			return nil, fmt.Errorf("%s@%s: %w", res.Repo, d, err)
		}
		hs[i] = h
	}
	return hs, nil
}

// Attachments lists, for each manifest Result signs in res, where format
// f puts its signature and attestations; nil when a digest does not parse
// (Result refuses such a result).
func Attachments(res pipeline.Result, f sign.Format) []Attachment {
	hs, err := Manifests(res)
	if err != nil {
		return nil
	}
	out := make([]Attachment, len(hs))
	for i, h := range hs {
		a := Attachment{Manifest: res.Repo + "@" + h.String(), Format: f}
		if f == sign.FormatReferrers {
			a.Signature, a.Attestations = a.Manifest, a.Manifest
		} else {
			a.Signature, a.Attestations = res.Repo+":"+sign.SignatureTag(h), res.Repo+":"+sign.AttestationTag(h)
		}
		out[i] = a
	}
	return out
}
