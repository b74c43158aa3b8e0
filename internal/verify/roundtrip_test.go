package verify_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/kilnbuild/kiln/internal/sign"
	"github.com/kilnbuild/kiln/internal/verify"
)

// TestRoundTrips: what sign writes, verify accepts, in both storage formats
// and both stores. In the tag scheme, re-signing with one key replaces that
// key's signature and keeps another key's, and re-attesting a predicate
// type replaces it: every key still verifies and the newest predicate wins.
func TestRoundTrips(t *testing.T) {
	const typeA, typeB = "https://example.com/A/v1", "https://example.com/B/v1"
	for _, format := range []sign.Format{sign.FormatTags, sign.FormatReferrers} {
		for name, f := range fixtures(t) {
			t.Run(string(format)+"/"+name, func(t *testing.T) {
				sa, sb := f.sa.WithFormat(format), f.sb.WithFormat(format)
				must(t, sa.Sign(f.ctx, f.st, f.repo, f.d))
				must(t, sa.Sign(f.ctx, f.st, f.repo, f.d))
				must(t, sb.Sign(f.ctx, f.st, f.repo, f.d))
				for k, v := range map[string]signature.Verifier{"a": f.a, "b": f.b} {
					if err := verify.Signature(f.ctx, f.st, f.repo, f.d, v); err != nil {
						t.Errorf("key %s does not verify: %v", k, err)
					}
				}
				if err := verify.Signature(f.ctx, f.st, f.repo, f.d2, f.a); !errors.Is(err, verify.ErrUnsigned) {
					t.Errorf("the other image: err = %v, want ErrUnsigned", err)
				}

				preds := map[string]string{typeA: `{"n":2}`, typeB: `{"b":true}`}
				if format == sign.FormatTags {
					must(t, sa.Attest(f.ctx, f.st, f.repo, f.d, typeA, map[string]int{"n": 1}))
				}
				must(t, sa.Attest(f.ctx, f.st, f.repo, f.d, typeA, map[string]int{"n": 2}))
				must(t, sa.Attest(f.ctx, f.st, f.repo, f.d, typeB, json.RawMessage(`{"b":true}`)))
				atts, err := verify.Attestations(f.ctx, f.st, f.repo, f.d, f.a)
				if err != nil {
					t.Fatalf("verify.Attestations: %v", err)
				}
				if len(atts) != len(preds) {
					t.Fatalf("%d attestations, want %d: %v", len(atts), len(preds), atts)
				}
				wantSub := []sign.Subject{{Name: f.repo, Digest: map[string]string{"sha256": f.d.Hex}}}
				for typ, pred := range preds {
					a, ok := atts[typ]
					if !ok {
						t.Errorf("no %s attestation", typ)
						continue
					}
					if a.PredicateType != typ || a.Statement.PredicateType != typ || a.Statement.Type != sign.StatementType {
						t.Errorf("%s: attestation says %q / %q / %q", typ, a.PredicateType, a.Statement.PredicateType, a.Statement.Type)
					}
					if !reflect.DeepEqual(a.Statement.Subject, wantSub) {
						t.Errorf("%s: subject %+v, want %+v", typ, a.Statement.Subject, wantSub)
					}
					if string(a.Statement.Predicate) != pred {
						t.Errorf("%s: predicate %s, want %s", typ, a.Statement.Predicate, pred)
					}
				}
			})
		}
	}
}
