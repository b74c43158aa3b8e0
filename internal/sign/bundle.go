package sign

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protojson"
)

// The OCI 1.1 referrers storage scheme of cosign v3: one referrer manifest
// per signature or attestation, holding a Sigstore bundle v0.3 whose DSSE
// envelope carries an in-toto statement about the image digest.
const (
	BundleMediaType           = "application/vnd.dev.sigstore.bundle.v0.3+json"
	EmptyConfigMediaType      = "application/vnd.oci.empty.v1+json"
	BundleContentAnnotation   = "dev.sigstore.bundle.content"
	BundlePredicateAnnotation = "dev.sigstore.bundle.predicateType"
	SignPredicateType         = "https://sigstore.dev/cosign/sign/v1"
	bundleContentDSSE         = "dsse-envelope"
	createdAnnotation         = "org.opencontainers.image.created"
)

// Format is how signatures and attestations are stored.
type Format string

const (
	// FormatTags is cosign's tag scheme: sha256-<hex>.sig and .att.
	FormatTags Format = "tags"
	// FormatReferrers is cosign v3's: Sigstore bundles as OCI 1.1 referrers
	// (the sha256-<hex> fallback tag where the registry has no referrers API).
	FormatReferrers Format = "referrers"
)

// ParseFormat validates a --signature-format value.
func ParseFormat(s string) (Format, error) {
	switch Format(s) {
	case "", FormatTags:
		return FormatTags, nil
	case FormatReferrers:
		return FormatReferrers, nil
	}
	return "", fmt.Errorf("unknown signature format %q: use tags or referrers", s)
}

// envelopeJSON is a DSSE envelope as sigstore's dsse package writes it.
type envelopeJSON struct {
	PayloadType string `json:"payloadType"`
	Payload     string `json:"payload"`
	Signatures  []struct {
		KeyID string `json:"keyid"`
		Sig   string `json:"sig"`
	} `json:"signatures"`
}

// bundleFromEnvelope wraps a DSSE envelope (JSON) in a Sigstore bundle
// v0.3 for a public key, identified by the hint cosign uses: the base64
// SHA-256 of the key's PKIX DER.
func bundleFromEnvelope(env []byte, sv signature.Verifier) ([]byte, error) {
	var e envelopeJSON
	if err := json.Unmarshal(env, &e); err != nil {
		return nil, err
	}
	payload, err := base64.StdEncoding.DecodeString(e.Payload)
	if err != nil {
		return nil, err
	}
	pe := &protodsse.Envelope{Payload: payload, PayloadType: e.PayloadType}
	for _, s := range e.Signatures {
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil {
			return nil, err
		}
		pe.Signatures = append(pe.Signatures, &protodsse.Signature{Sig: sig, Keyid: s.KeyID})
	}
	hint, err := KeyHint(sv)
	if err != nil {
		return nil, err
	}
	b := &protobundle.Bundle{
		MediaType: BundleMediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: hint}},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: pe},
	}
	return protojson.Marshal(b)
}

// EnvelopeFromBundle returns the DSSE envelope of a Sigstore bundle as the
// JSON that sigstore's dsse verifier reads.
func EnvelopeFromBundle(raw []byte) ([]byte, error) {
	var b protobundle.Bundle
	if err := protojson.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("not a Sigstore bundle: %w", err)
	}
	pe := b.GetDsseEnvelope()
	if pe == nil {
		return nil, fmt.Errorf("the Sigstore bundle holds no DSSE envelope")
	}
	e := envelopeJSON{PayloadType: pe.GetPayloadType(), Payload: base64.StdEncoding.EncodeToString(pe.GetPayload())}
	for _, s := range pe.GetSignatures() {
		e.Signatures = append(e.Signatures, struct {
			KeyID string `json:"keyid"`
			Sig   string `json:"sig"`
		}{s.GetKeyid(), base64.StdEncoding.EncodeToString(s.GetSig())})
	}
	return json.Marshal(e)
}

// KeyHint is the public key hint cosign writes into bundles.
func KeyHint(v signature.Verifier) (string, error) {
	pub, err := v.PublicKey()
	if err != nil {
		return "", err
	}
	der, err := cryptoutils.MarshalPublicKeyToDER(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// putBundle signs an in-toto statement about d as a DSSE envelope, wraps it
// in a Sigstore bundle and stores it as a referrer of d, as cosign v3 does
// for `cosign sign` (predicate type SignPredicateType) and `cosign attest`.
func (s *Signer) putBundle(ctx context.Context, st Store, repo string, d v1.Hash, predicateType string, predicate any) error {
	rs, ok := st.(ReferrerStore)
	if !ok {
		return fmt.Errorf("this destination cannot hold OCI referrers: use --signature-format tags")
	}
	env, err := s.envelope(repo, d, predicateType, predicate)
	if err != nil {
		return err
	}
	b, err := bundleFromEnvelope(env, s.sv)
	if err != nil {
		return err
	}
	return rs.PutReferrer(ctx, repo, d, BundleMediaType, b, map[string]string{
		BundleContentAnnotation:   bundleContentDSSE,
		BundlePredicateAnnotation: predicateType,
	})
}
