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
	"github.com/sigstore/sigstore/pkg/signature/dsse"

	"github.com/kilnbuild/kiln/internal/sign"
)

// bundleStatements returns the in-toto statements about d found in Sigstore
// bundle referrers of d whose DSSE envelope verifies with v, and why the
// others were rejected.
func bundleStatements(ctx context.Context, st sign.Store, repo string, d v1.Hash, v signature.Verifier) ([]sign.Statement, []string, error) {
	rs, ok := st.(sign.ReferrerStore)
	if !ok {
		return nil, nil, nil
	}
	refs, err := rs.Referrers(ctx, repo, d, sign.BundleMediaType)
	if err != nil {
		return nil, nil, err
	}
	var out []sign.Statement
	var reasons []string
	for _, r := range refs {
		env, err := sign.EnvelopeFromBundle(r.Blob)
		if err != nil {
			reasons = append(reasons, "bundle: "+err.Error())
			continue
		}
		s, reason := statementFromEnvelope(env, d, v)
		if reason != "" {
			reasons = append(reasons, "bundle: "+reason)
			continue
		}
		out = append(out, s)
	}
	return out, reasons, nil
}

// statementFromEnvelope verifies a DSSE envelope with v and returns its
// in-toto statement when it is about d; otherwise the reason it is not.
func statementFromEnvelope(env []byte, d v1.Hash, v signature.Verifier) (sign.Statement, string) {
	if err := dsse.WrapVerifier(v).VerifySignature(bytes.NewReader(env), nil); err != nil {
		return sign.Statement{}, "envelope signature does not match the key"
	}
	var e struct {
		PayloadType string `json:"payloadType"`
		Payload     string `json:"payload"`
	}
	if err := json.Unmarshal(env, &e); err != nil || e.PayloadType != sign.InTotoPayloadType {
		return sign.Statement{}, "not an in-toto envelope"
	}
	body, err := base64.StdEncoding.DecodeString(e.Payload)
	if err != nil {
		return sign.Statement{}, "payload is not base64"
	}
	var s sign.Statement
	if err := json.Unmarshal(body, &s); err != nil {
		return sign.Statement{}, "payload is not an in-toto statement"
	}
	if !hasSubject(s, d) {
		return sign.Statement{}, s.PredicateType + " is about another subject"
	}
	return s, ""
}

// Signature checks that d carries a signature by v: in cosign's tag scheme
// (sha256-<hex>.sig, whose payload must name exactly d) or as a Sigstore
// bundle referrer (a DSSE statement of type cosign/sign/v1 about d).
func Signature(ctx context.Context, st sign.Store, repo string, d v1.Hash, v signature.Verifier) error {
	tagErr := tagSignature(ctx, st, repo, d, v)
	if tagErr == nil {
		return nil
	}
	stmts, reasons, err := bundleStatements(ctx, st, repo, d, v)
	if err != nil {
		return err
	}
	for _, s := range stmts {
		if s.PredicateType == sign.SignPredicateType {
			return nil
		}
	}
	if len(reasons) == 0 || !errors.Is(tagErr, ErrUnsigned) {
		return tagErr
	}
	return fmt.Errorf("%s@%s: %w (no %s; %s)", repo, d, ErrBadSignature, sign.SignatureTag(d), join(reasons))
}

// Attestations returns every attestation about d signed by v, keyed by
// predicate type, from the .att tag and from Sigstore bundle referrers.
func Attestations(ctx context.Context, st sign.Store, repo string, d v1.Hash, v signature.Verifier) (map[string]Attestation, error) {
	out, tagErr := tagAttestations(ctx, st, repo, d, v)
	if out == nil {
		out = map[string]Attestation{}
	}
	stmts, reasons, err := bundleStatements(ctx, st, repo, d, v)
	if err != nil {
		return nil, err
	}
	for _, s := range stmts {
		if s.PredicateType != sign.SignPredicateType {
			out[s.PredicateType] = Attestation{PredicateType: s.PredicateType, Statement: s}
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	if len(reasons) == 0 || !errors.Is(tagErr, ErrNoAttestation) {
		return nil, tagErr
	}
	return nil, fmt.Errorf("%s@%s: %w (no %s; %s)", repo, d, ErrBadAttestation, sign.AttestationTag(d), join(reasons))
}
