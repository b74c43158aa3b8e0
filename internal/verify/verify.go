package verify

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/kilnbuild/kiln/internal/checked"
	"github.com/kilnbuild/kiln/internal/sign"
)

// Errors a caller can classify.
var (
	ErrUnsigned       = errors.New("no signature")
	ErrBadSignature   = errors.New("no signature verifies with the key")
	ErrNoAttestation  = errors.New("no attestation")
	ErrBadAttestation = errors.New("attestation does not verify")
)

// tagSignature checks that some signature in repo's sha256-<hex>.sig
// verifies with v and names exactly digest d.
func tagSignature(ctx context.Context, st sign.Store, repo string, d v1.Hash, v signature.Verifier) error {
	img, err := st.Get(ctx, repo, sign.SignatureTag(d))
	if errors.Is(err, sign.ErrNotFound) {
		return fmt.Errorf("%s@%s: %w (looked for the tag %s)", repo, d, ErrUnsigned, sign.SignatureTag(d))
	}
	if err != nil {
		return err
	}
	es, err := sign.Entries(img)
	if err != nil {
		return err
	}
	var reasons []string
	for _, e := range es {
		raw, err := base64.StdEncoding.DecodeString(e.Annotations[sign.SignatureAnnotation])
		if err != nil {
			reasons = append(reasons, "signature annotation is not base64")
			continue
		}
		body, err := read(e.Layer)
		if err != nil {
			return err
		}
		if err := v.VerifySignature(bytes.NewReader(raw), bytes.NewReader(body)); err != nil {
			reasons = append(reasons, "signature does not match the key")
			continue
		}
		var p payload.Cosign
		if err := json.Unmarshal(body, &p); err != nil {
			reasons = append(reasons, "payload is not a cosign signature payload")
			continue
		}
		if p.Image.DigestStr() != d.String() {
			reasons = append(reasons, "signed payload names "+p.Image.DigestStr())
			continue
		}
		return nil
	}
	return fmt.Errorf("%s@%s: %w (%d signatures: %s)", repo, d, ErrBadSignature, len(es), join(reasons))
}

// Attestation is a verified in-toto statement.
type Attestation struct {
	PredicateType string
	Statement     sign.Statement
}

// tagAttestations returns every attestation in repo's sha256-<hex>.att
// that verifies with v and whose subject is d, keyed by predicate type.
// Envelopes that fail are reported in the error only when none verifies.
func tagAttestations(ctx context.Context, st sign.Store, repo string, d v1.Hash, v signature.Verifier) (map[string]Attestation, error) {
	img, err := st.Get(ctx, repo, sign.AttestationTag(d))
	if errors.Is(err, sign.ErrNotFound) {
		return nil, fmt.Errorf("%s@%s: %w (looked for the tag %s)", repo, d, ErrNoAttestation, sign.AttestationTag(d))
	}
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	out := map[string]Attestation{}
	var reasons []string
	for _, l := range layers {
		env, err := read(l)
		if err != nil {
			return nil, err
		}
		s, reason := statementFromEnvelope(env, d, v)
		if reason != "" {
			reasons = append(reasons, reason)
			continue
		}
		out[s.PredicateType] = Attestation{PredicateType: s.PredicateType, Statement: s}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s@%s: %w (%s)", repo, d, ErrBadAttestation, join(reasons))
	}
	return out, nil
}

func hasSubject(s sign.Statement, d v1.Hash) bool {
	for _, sub := range s.Subject {
		if sub.Digest[d.Algorithm] == d.Hex {
			return true
		}
	}
	return false
}

// read reads a signature's or an attestation's blob whole; from a Store's
// image it is checked against its digest.
func read(l v1.Layer) ([]byte, error) {
	return checked.ReadLayer(l, sign.MaxBlob)
}

func join(reasons []string) string {
	if len(reasons) == 0 {
		return "none found"
	}
	out := reasons[0]
	for _, r := range reasons[1:] {
		out += "; " + r
	}
	return out
}
