package sign_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/kilnbuild/kiln/internal/sign"
)

// TestBundleSubjects: the in-toto statements in Sigstore bundles name their
// subject as cosign v3.1.3 writes them (checked against the real CLI): an
// attestation's subject carries the repository as its name, as in the tag
// scheme; a signature's (cosign/sign/v1) carries only the digest.
func TestBundleSubjects(t *testing.T) {
	ctx := context.Background()
	const typ = "https://example.com/A/v1"
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			d := pushRandom(t, tg, "latest")
			s := newKey(t).signer.WithFormat(sign.FormatReferrers)
			if err := s.Sign(ctx, tg.st, tg.repo, d); err != nil {
				t.Fatal(err)
			}
			if err := s.Attest(ctx, tg.st, tg.repo, d, typ, map[string]int{"n": 1}); err != nil {
				t.Fatal(err)
			}
			refs, err := tg.st.(sign.ReferrerStore).Referrers(ctx, tg.repo, d, sign.BundleMediaType)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string][]sign.Subject{
				sign.SignPredicateType: {{Digest: map[string]string{"sha256": d.Hex}}},
				typ:                    {{Name: tg.repo, Digest: map[string]string{"sha256": d.Hex}}},
			}
			got := map[string][]sign.Subject{}
			for _, r := range refs {
				st := statementOf(t, r.Blob)
				got[st.PredicateType] = st.Subject
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("subjects\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// statementOf reads the in-toto statement of a bundle, unverified.
func statementOf(t *testing.T, bundle []byte) sign.Statement {
	t.Helper()
	env, err := sign.EnvelopeFromBundle(bundle)
	if err != nil {
		t.Fatal(err)
	}
	var e struct{ Payload []byte } // base64 in JSON
	var st sign.Statement
	if err := json.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(e.Payload, &st); err != nil {
		t.Fatal(err)
	}
	return st
}
