package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/kilnbuild/kiln/internal/sign"
)

// TestBundleStatementsMatchCosign: the in-toto statements kiln signs into
// Sigstore bundles name their subject as the real cosign's do. The same
// image goes to two repositories; cosign signs and attests one, kiln the
// other, both in the bundle format. For each predicate type, the subjects
// agree (with each one's repository as the name where cosign writes one).
func TestBundleStatementsMatchCosign(t *testing.T) {
	s := newSigning(t, nil)
	const provenance = "https://slsa.dev/provenance/v1"
	pred := filepath.Join(t.TempDir(), "predicate.json")
	if err := os.WriteFile(pred, []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	byCosign := s.build(t, "bycosign/hello")
	key := filepath.Join(s.dir, "cosign.key")
	offline := []string{"--key", key, "--tlog-upload=false", "--use-signing-config=false", "--yes"}
	for _, args := range [][]string{
		append([]string{"sign"}, offline...),
		append([]string{"attest", "--type", "slsaprovenance1", "--predicate", pred}, offline...),
	} {
		if code, out := cosign(t, s.cenv, append(args, byCosign)...); code != 0 {
			t.Fatalf("cosign %v: exit %d\n%s", args, code, out)
		}
	}
	byKiln := s.buildSigned(t, "bykiln/hello", "--signature-format", "referrers")
	if digestOf(t, byCosign) != digestOf(t, byKiln) {
		t.Fatalf("the two builds differ: %s, %s", byCosign, byKiln)
	}
	cosignSubjects := bundleSubjects(t, byCosign)
	kilnSubjects := bundleSubjects(t, byKiln)
	for _, typ := range []string{sign.SignPredicateType, provenance} {
		c, ok := cosignSubjects[typ]
		if !ok {
			t.Fatalf("cosign wrote no %s bundle: %v", typ, cosignSubjects)
		}
		if k := kilnSubjects[typ]; !reflect.DeepEqual(k, c) {
			t.Errorf("%s subjects: kiln %+v, cosign %+v", typ, k, c)
		}
	}
}

// bundleSubjects reads the statements in ref's Sigstore bundle referrers
// and returns their subjects by predicate type, each subject's name with
// the repository replaced by REPO.
func bundleSubjects(t *testing.T, ref string) map[string][]sign.Subject {
	t.Helper()
	refs, err := (&sign.RegistryStore{}).Referrers(context.Background(), repoOf(ref), digestOf(t, ref), sign.BundleMediaType)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]sign.Subject{}
	for _, r := range refs {
		env, err := sign.EnvelopeFromBundle(r.Blob)
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Payload string }
		if err := json.Unmarshal(env, &e); err != nil {
			t.Fatal(err)
		}
		body, err := base64.StdEncoding.DecodeString(e.Payload)
		if err != nil {
			t.Fatal(err)
		}
		var st sign.Statement
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatal(err)
		}
		for i := range st.Subject {
			if st.Subject[i].Name == repoOf(ref) {
				st.Subject[i].Name = "REPO"
			}
		}
		out[st.PredicateType] = st.Subject
	}
	return out
}
