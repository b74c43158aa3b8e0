package sign

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/kilnbuild/kiln/internal/checked"
)

// The legacy cosign storage scheme.
const (
	SimpleSigningMediaType  types.MediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	DSSEMediaType           types.MediaType = "application/vnd.dsse.envelope.v1+json"
	SignatureAnnotation                     = "dev.cosignproject.cosign/signature"
	PredicateTypeAnnotation                 = "predicateType"
	InTotoPayloadType                       = "application/vnd.in-toto+json"
	StatementType                           = "https://in-toto.io/Statement/v1"
)

// SignatureTag and AttestationTag name the images that hold an image's
// signatures and attestations: sha256-<hex>.sig and .att.
func SignatureTag(d v1.Hash) string   { return d.Algorithm + "-" + d.Hex + ".sig" }
func AttestationTag(d v1.Hash) string { return d.Algorithm + "-" + d.Hex + ".att" }

// Statement is an in-toto v1 statement.
type Statement struct {
	Type          string          `json:"_type"`
	Subject       []Subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// Subject is what a statement is about.
type Subject struct {
	Name   string            `json:"name,omitempty"`
	Digest map[string]string `json:"digest"`
}

// Signer signs image digests and attestations with one key.
type Signer struct {
	sv     signature.SignerVerifier
	format Format
}

// New wraps a signer (from keys.LoadSigner); it stores in FormatTags.
func New(sv signature.SignerVerifier) *Signer { return &Signer{sv: sv, format: FormatTags} }

// WithFormat returns a signer that stores signatures and attestations in f.
func (s *Signer) WithFormat(f Format) *Signer { return &Signer{sv: s.sv, format: f} }

// Sign adds a signature of repo@d to the image tagged sha256-<hex>.sig. A
// signature made earlier with the same key is replaced; others are kept.
func (s *Signer) Sign(ctx context.Context, st Store, repo string, d v1.Hash) error {
	if s.format == FormatReferrers {
		return s.putBundle(ctx, st, repo, d, SignPredicateType, struct{}{})
	}
	ref, err := name.NewDigest(repo + "@" + d.String())
	if err != nil {
		return err
	}
	body, err := payload.Cosign{Image: ref}.MarshalJSON()
	if err != nil {
		return err
	}
	sig, err := s.sv.SignMessage(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("signing %s: %w", ref, err)
	}
	keep := func(e Entry) bool {
		raw, err := base64.StdEncoding.DecodeString(e.Annotations[SignatureAnnotation])
		if err != nil {
			return true
		}
		p, err := checked.ReadLayer(e.Layer, MaxBlob)
		if err != nil {
			return true
		}
		return s.sv.VerifySignature(bytes.NewReader(raw), bytes.NewReader(p)) != nil
	}
	return s.add(ctx, st, repo, SignatureTag(d), keep, mutate.Addendum{
		Layer:       static.NewLayer(body, SimpleSigningMediaType),
		Annotations: map[string]string{SignatureAnnotation: base64.StdEncoding.EncodeToString(sig)},
	})
}

// Attest signs an in-toto statement about repo@d with predicate as a DSSE
// envelope and adds it to the image tagged sha256-<hex>.att, replacing an
// earlier attestation of the same predicate type.
func (s *Signer) Attest(ctx context.Context, st Store, repo string, d v1.Hash, predicateType string, predicate any) error {
	if s.format == FormatReferrers {
		return s.putBundle(ctx, st, repo, d, predicateType, predicate)
	}
	env, err := s.envelope(repo, d, predicateType, predicate)
	if err != nil {
		return err
	}
	keep := func(e Entry) bool { return e.Annotations[PredicateTypeAnnotation] != predicateType }
	return s.add(ctx, st, repo, AttestationTag(d), keep, mutate.Addendum{
		Layer: static.NewLayer(env, DSSEMediaType),
		Annotations: map[string]string{
			PredicateTypeAnnotation: predicateType,
			SignatureAnnotation:     "", // cosign requires the key, empty for DSSE
		},
	})
}

// envelope signs an in-toto statement about repo@d with predicate as a
// DSSE envelope: the one statement both storage formats carry. Its subject
// is named as cosign v3.1.3 names it (checked against the real CLI): an
// attestation's subject carries the repository as its name, in either
// format; the signature statement of the bundle format (predicate type
// SignPredicateType, `cosign sign`) carries only the digest. Bundle
// attestations once left the name out; cosign verified them all the same,
// but the signed bytes now are those cosign writes.
func (s *Signer) envelope(repo string, d v1.Hash, predicateType string, predicate any) ([]byte, error) {
	pred, err := json.Marshal(predicate)
	if err != nil {
		return nil, err
	}
	sub := Subject{Digest: map[string]string{d.Algorithm: d.Hex}}
	if predicateType != SignPredicateType {
		sub.Name = repo
	}
	stmt, err := json.Marshal(Statement{
		Type:          StatementType,
		Subject:       []Subject{sub},
		PredicateType: predicateType,
		Predicate:     pred,
	})
	if err != nil {
		return nil, err
	}
	env, err := dsse.WrapSigner(s.sv, InTotoPayloadType).SignMessage(bytes.NewReader(stmt))
	if err != nil {
		return nil, fmt.Errorf("signing %s for %s@%s: %w", predicateType, repo, d, err)
	}
	return env, nil
}

// add rebuilds the tagged image from the layers keep accepts plus add.
func (s *Signer) add(ctx context.Context, st Store, repo, tag string, keep func(Entry) bool, add mutate.Addendum) error {
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	var adds []mutate.Addendum
	old, err := st.Get(ctx, repo, tag)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return err
	default:
		es, err := Entries(old)
		if err != nil {
			return err
		}
		for _, e := range es {
			if keep(e) {
				adds = append(adds, mutate.Addendum{Layer: e.Layer, Annotations: e.Annotations})
			}
		}
	}
	adds = append(adds, add)
	img, err = mutate.Append(img, adds...)
	if err != nil {
		return err
	}
	return st.Put(ctx, repo, tag, img)
}

// Entry is one layer of a .sig or .att image with its manifest annotations.
type Entry struct {
	Layer       v1.Layer
	Annotations map[string]string
}

// Entries lists img's layers, each with the annotations of its descriptor.
func Entries(img v1.Image) ([]Entry, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	var out []Entry
	for i, l := range layers {
		if i < len(m.Layers) {
			out = append(out, Entry{Layer: l, Annotations: m.Layers[i].Annotations})
		}
	}
	return out, nil
}
