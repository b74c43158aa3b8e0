package verify

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/kilnbuild/kiln/internal/provenance"
	"github.com/kilnbuild/kiln/internal/sbom"
	"github.com/kilnbuild/kiln/internal/sign"
)

// ErrIncomplete means d lacks a signature or an attestation a signed build
// attaches.
var ErrIncomplete = fmt.Errorf("not yet signed and attested")

// Complete returns nil when d already carries, in format f, everything a
// signed build attaches: a signature, an SPDX SBOM and a SLSA provenance,
// each verifying with v. A build of an unchanged image need not sign again.
func Complete(ctx context.Context, st sign.Store, repo string, d v1.Hash, v signature.Verifier, f sign.Format) error {
	want := map[string]bool{sign.SignPredicateType: true, sbom.PredicateType: true, provenance.PredicateType: true}
	if f == sign.FormatReferrers {
		stmts, _, err := bundleStatements(ctx, st, repo, d, v)
		if err != nil {
			return err
		}
		for _, s := range stmts {
			delete(want, s.PredicateType)
		}
	} else {
		if err := tagSignature(ctx, st, repo, d, v); err != nil {
			return fmt.Errorf("%w: %v", ErrIncomplete, err)
		}
		delete(want, sign.SignPredicateType)
		atts, err := tagAttestations(ctx, st, repo, d, v)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrIncomplete, err)
		}
		for t := range atts {
			delete(want, t)
		}
	}
	for t := range want {
		return fmt.Errorf("%s@%s: %w: no %s", repo, d, ErrIncomplete, t)
	}
	return nil
}
