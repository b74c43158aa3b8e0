package sign_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/kilnbuild/kiln/internal/sign"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// target is a store and a repository in it.
type target struct {
	name string
	st   sign.Store
	repo string
}

// targets are an in-process registry and an OCI layout.
func targets(t *testing.T) []target {
	t.Helper()
	host := testutil.Registry(t)
	return []target{
		{"registry", &sign.RegistryStore{Keychain: authn.NewMultiKeychain()}, host + "/test/app"},
		{"layout", &sign.LayoutStore{Dir: t.TempDir()}, "kiln.local/app"},
	}
}

// pushRandom stores a random image as repo:tag and returns its digest.
func pushRandom(t *testing.T, tg target, tag string) v1.Hash {
	t.Helper()
	img := testutil.RandomImage(t, 256, 1)
	if err := tg.st.Put(context.Background(), tg.repo, tag, img); err != nil {
		t.Fatal(err)
	}
	return testutil.Digest(t, img)
}

type key struct {
	signer *sign.Signer
	sv     signature.SignerVerifier
	pub    *ecdsa.PublicKey
}

func newKey(t *testing.T) key {
	t.Helper()
	k, sv := testutil.ECDSAKey(t)
	return key{signer: sign.New(sv), sv: sv, pub: &k.PublicKey}
}

// entry is one layer of a .sig or .att image.
type entry struct {
	mediaType   types.MediaType
	annotations map[string]string
	body        []byte
}

func entries(t *testing.T, tg target, tag string) []entry {
	t.Helper()
	img, err := tg.st.Get(context.Background(), tg.repo, tag)
	if err != nil {
		t.Fatalf("reading %s: %v", tag, err)
	}
	// Fast: validate counts config diff_ids only for tar layers, but
	// cosign's .sig and .att images (mutate.Append on empty.Image, as
	// here) list one per layer. Layer digests are checked below.
	if err := validate.Image(img, validate.Fast); err != nil {
		t.Errorf("%s is not a valid image: %v", tag, err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("%s: manifest %s with config %s, want an OCI manifest and config", tag, m.MediaType, m.Config.MediaType)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != len(m.Layers) {
		t.Fatalf("%d layers, %d descriptors", len(layers), len(m.Layers))
	}
	var out []entry
	for i, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if h, n, _ := v1.SHA256(bytes.NewReader(body)); h != m.Layers[i].Digest || n != m.Layers[i].Size {
			t.Errorf("layer %d: %s (%d bytes), manifest says %s (%d bytes)", i, h, n, m.Layers[i].Digest, m.Layers[i].Size)
		}
		out = append(out, entry{m.Layers[i].MediaType, m.Layers[i].Annotations, body})
	}
	return out
}

func cosignPayload(repo string, d v1.Hash) string {
	return fmt.Sprintf(`{"critical":{"identity":{"docker-reference":%q},"image":{"docker-manifest-digest":%q},"type":"cosign container image signature"},"optional":null}`, repo, d)
}

// checkSignature checks that e is a simple-signing layer whose annotation
// is base64 of an ASN.1 ECDSA signature by pub over SHA-256 of the payload.
func checkSignature(t *testing.T, e entry, pub *ecdsa.PublicKey) {
	t.Helper()
	if e.mediaType != "application/vnd.dev.cosign.simplesigning.v1+json" {
		t.Errorf("media type %q", e.mediaType)
	}
	if len(e.annotations) != 1 {
		t.Errorf("annotations %v, want only the signature", e.annotations)
	}
	raw, err := base64.StdEncoding.DecodeString(e.annotations["dev.cosignproject.cosign/signature"])
	if err != nil {
		t.Fatalf("signature annotation is not base64: %v", err)
	}
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(raw, &rs); err != nil || len(rest) != 0 {
		t.Fatalf("signature is not one ASN.1 (r, s) sequence: %v, %d bytes left", err, len(rest))
	}
	h := sha256.Sum256(e.body)
	if !ecdsa.VerifyASN1(pub, h[:], raw) {
		t.Error("signature does not verify over SHA-256 of the payload")
	}
}

func TestTags(t *testing.T) {
	h := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	if got, want := sign.SignatureTag(h), "sha256-"+strings.Repeat("ab", 32)+".sig"; got != want {
		t.Errorf("SignatureTag = %s, want %s", got, want)
	}
	if got, want := sign.AttestationTag(h), "sha256-"+strings.Repeat("ab", 32)+".att"; got != want {
		t.Errorf("AttestationTag = %s, want %s", got, want)
	}
}

func TestSign(t *testing.T) {
	ctx := context.Background()
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			d := pushRandom(t, tg, "latest")
			a := newKey(t)
			if err := a.signer.Sign(ctx, tg.st, tg.repo, d); err != nil {
				t.Fatalf("Sign: %v", err)
			}
			es := entries(t, tg, sign.SignatureTag(d))
			if len(es) != 1 {
				t.Fatalf("%d signature layers, want 1", len(es))
			}
			checkSignature(t, es[0], a.pub)
			if got, want := string(es[0].body), cosignPayload(tg.repo, d); got != want {
				t.Errorf("payload\n got %s\nwant %s", got, want)
			}
			// The image itself is untouched.
			img, err := tg.st.Get(ctx, tg.repo, "latest")
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := img.Digest(); got != d {
				t.Errorf("latest is %s after signing, want %s", got, d)
			}
		})
	}
}

// TestSignReplacesOwnKeepsOthers: a second signature by the same key
// replaces the first; a signature by another key is added beside it.
func TestSignReplacesOwnKeepsOthers(t *testing.T) {
	ctx := context.Background()
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			d := pushRandom(t, tg, "latest")
			a, b := newKey(t), newKey(t)
			sigOf := func(e entry) string { return e.annotations[sign.SignatureAnnotation] }

			if err := a.signer.Sign(ctx, tg.st, tg.repo, d); err != nil {
				t.Fatal(err)
			}
			first := entries(t, tg, sign.SignatureTag(d))
			if err := a.signer.Sign(ctx, tg.st, tg.repo, d); err != nil {
				t.Fatal(err)
			}
			es := entries(t, tg, sign.SignatureTag(d))
			if len(es) != 1 {
				t.Fatalf("re-signing with the same key: %d layers, want 1", len(es))
			}
			if sigOf(es[0]) == sigOf(first[0]) {
				t.Error("re-signing kept the old signature (ECDSA signatures are randomised)")
			}
			checkSignature(t, es[0], a.pub)

			if err := b.signer.Sign(ctx, tg.st, tg.repo, d); err != nil {
				t.Fatal(err)
			}
			es = entries(t, tg, sign.SignatureTag(d))
			if len(es) != 2 {
				t.Fatalf("signing with a second key: %d layers, want 2", len(es))
			}
			checkSignature(t, es[0], a.pub)
			checkSignature(t, es[1], b.pub)
			for _, e := range es {
				if got, want := string(e.body), cosignPayload(tg.repo, d); got != want {
					t.Errorf("payload %s, want %s", got, want)
				}
			}

			// Re-signing with a keeps b's signature, now first.
			keptB := sigOf(es[1])
			if err := a.signer.Sign(ctx, tg.st, tg.repo, d); err != nil {
				t.Fatal(err)
			}
			es = entries(t, tg, sign.SignatureTag(d))
			if len(es) != 2 {
				t.Fatalf("re-signing with a: %d layers, want 2", len(es))
			}
			if sigOf(es[0]) != keptB {
				t.Error("b's signature was not kept as it was")
			}
			checkSignature(t, es[1], a.pub)
		})
	}
}

// TestSignDigestsApart: signatures of two digests live under two tags.
func TestSignDigestsApart(t *testing.T) {
	ctx := context.Background()
	tg := targets(t)[0]
	d1, d2 := pushRandom(t, tg, "one"), pushRandom(t, tg, "two")
	a := newKey(t)
	for _, d := range []v1.Hash{d1, d2} {
		if err := a.signer.Sign(ctx, tg.st, tg.repo, d); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []v1.Hash{d1, d2} {
		es := entries(t, tg, sign.SignatureTag(d))
		if len(es) != 1 || string(es[0].body) != cosignPayload(tg.repo, d) {
			t.Errorf("%s: %d layers, want one signing it", d, len(es))
		}
	}
}

type envelope struct {
	PayloadType string `json:"payloadType"`
	Payload     string `json:"payload"`
	Signatures  []struct {
		KeyID string `json:"keyid"`
		Sig   string `json:"sig"`
	} `json:"signatures"`
}

// pae is DSSE's pre-authentication encoding.
func pae(typ string, body []byte) []byte {
	return fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(typ), typ, len(body), body)
}

// checkAttestation checks e is a DSSE layer signed by pub over an in-toto
// statement and returns the statement's JSON.
func checkAttestation(t *testing.T, e entry, pub *ecdsa.PublicKey, predicateType string) []byte {
	t.Helper()
	if e.mediaType != "application/vnd.dsse.envelope.v1+json" {
		t.Errorf("media type %q", e.mediaType)
	}
	want := map[string]string{"predicateType": predicateType, "dev.cosignproject.cosign/signature": ""}
	if !reflect.DeepEqual(e.annotations, want) {
		t.Errorf("annotations %v, want %v", e.annotations, want)
	}
	var env envelope
	if err := json.Unmarshal(e.body, &env); err != nil {
		t.Fatalf("layer is not a DSSE envelope: %v", err)
	}
	if env.PayloadType != "application/vnd.in-toto+json" {
		t.Errorf("payloadType %q", env.PayloadType)
	}
	body, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if len(env.Signatures) != 1 {
		t.Fatalf("%d signatures, want 1", len(env.Signatures))
	}
	sig, err := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(pae(env.PayloadType, body))
	if !ecdsa.VerifyASN1(pub, h[:], sig) {
		t.Error("envelope signature does not verify over the PAE")
	}
	return body
}

func statementJSON(repo string, d v1.Hash, predicateType, predicate string) string {
	return fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":%q,"digest":{"sha256":%q}}],"predicateType":%q,"predicate":%s}`, repo, d.Hex, predicateType, predicate)
}

func TestAttest(t *testing.T) {
	ctx := context.Background()
	const typeA, typeB = "https://example.com/A/v1", "https://example.com/B/v1"
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			d := pushRandom(t, tg, "latest")
			k := newKey(t)
			if err := k.signer.Attest(ctx, tg.st, tg.repo, d, typeA, map[string]int{"n": 1}); err != nil {
				t.Fatalf("Attest: %v", err)
			}
			es := entries(t, tg, sign.AttestationTag(d))
			if len(es) != 1 {
				t.Fatalf("%d layers, want 1", len(es))
			}
			if got, want := string(checkAttestation(t, es[0], k.pub, typeA)), statementJSON(tg.repo, d, typeA, `{"n":1}`); got != want {
				t.Errorf("statement\n got %s\nwant %s", got, want)
			}

			// The same predicate type replaces; another is added.
			if err := k.signer.Attest(ctx, tg.st, tg.repo, d, typeA, map[string]int{"n": 2}); err != nil {
				t.Fatal(err)
			}
			es = entries(t, tg, sign.AttestationTag(d))
			if len(es) != 1 {
				t.Fatalf("re-attesting %s: %d layers, want 1", typeA, len(es))
			}
			if got, want := string(checkAttestation(t, es[0], k.pub, typeA)), statementJSON(tg.repo, d, typeA, `{"n":2}`); got != want {
				t.Errorf("statement\n got %s\nwant %s", got, want)
			}
			if err := k.signer.Attest(ctx, tg.st, tg.repo, d, typeB, json.RawMessage(`{"b":true}`)); err != nil {
				t.Fatal(err)
			}
			es = entries(t, tg, sign.AttestationTag(d))
			if len(es) != 2 {
				t.Fatalf("attesting %s: %d layers, want 2", typeB, len(es))
			}
			checkAttestation(t, es[0], k.pub, typeA)
			if got, want := string(checkAttestation(t, es[1], k.pub, typeB)), statementJSON(tg.repo, d, typeB, `{"b":true}`); got != want {
				t.Errorf("statement\n got %s\nwant %s", got, want)
			}

			// Attesting leaves the signatures alone.
			if _, err := tg.st.Get(ctx, tg.repo, sign.SignatureTag(d)); !errors.Is(err, sign.ErrNotFound) {
				t.Errorf("attesting made a .sig image: %v", err)
			}
		})
	}
}

func TestAttestBadPredicate(t *testing.T) {
	tg := targets(t)[1]
	d := pushRandom(t, tg, "latest")
	if err := newKey(t).signer.Attest(context.Background(), tg.st, tg.repo, d, "t", func() {}); err == nil {
		t.Fatal("Attest of an unmarshalable predicate succeeded")
	}
	if _, err := tg.st.Get(context.Background(), tg.repo, sign.AttestationTag(d)); !errors.Is(err, sign.ErrNotFound) {
		t.Errorf("a failed Attest wrote the .att image: %v", err)
	}
}

func TestSignBadRepo(t *testing.T) {
	tg := targets(t)[1]
	d := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
	if err := newKey(t).signer.Sign(context.Background(), tg.st, "Not A Repo", d); err == nil {
		t.Fatal("Sign with an invalid repository succeeded")
	}
}

// failingSigner fails to sign.
type failingSigner struct{ signature.SignerVerifier }

func (failingSigner) SignMessage(io.Reader, ...signature.SignOption) ([]byte, error) {
	return nil, errors.New("hsm unplugged")
}

func TestSignerErrors(t *testing.T) {
	ctx := context.Background()
	tg := targets(t)[1]
	d := pushRandom(t, tg, "latest")
	s := sign.New(failingSigner{newKey(t).sv})
	if err := s.Sign(ctx, tg.st, tg.repo, d); err == nil || !strings.Contains(err.Error(), "hsm unplugged") || !strings.Contains(err.Error(), d.String()) {
		t.Errorf("Sign: err = %v, want the signer's error naming the digest", err)
	}
	if err := s.Attest(ctx, tg.st, tg.repo, d, "https://example.com/t", 1); err == nil || !strings.Contains(err.Error(), "hsm unplugged") {
		t.Errorf("Attest: err = %v, want the signer's error", err)
	}
	for _, tag := range []string{sign.SignatureTag(d), sign.AttestationTag(d)} {
		if _, err := tg.st.Get(ctx, tg.repo, tag); !errors.Is(err, sign.ErrNotFound) {
			t.Errorf("%s written after a failure: %v", tag, err)
		}
	}
}

// brokenStore fails to read.
type brokenStore struct {
	sign.Store
	puts int
}

func (*brokenStore) Get(context.Context, string, string) (v1.Image, error) {
	return nil, errors.New("disk on fire")
}

func (b *brokenStore) Put(context.Context, string, string, v1.Image) error {
	b.puts++
	return nil
}

func TestStoreReadError(t *testing.T) {
	st := &brokenStore{}
	d := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("1", 64)}
	k := newKey(t)
	if err := k.signer.Sign(context.Background(), st, "example.com/app", d); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("Sign: err = %v, want the store's error", err)
	}
	if err := k.signer.Attest(context.Background(), st, "example.com/app", d, "t", 1); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("Attest: err = %v, want the store's error", err)
	}
	if st.puts != 0 {
		t.Errorf("%d writes after a failed read, want 0", st.puts)
	}
}

func TestStores(t *testing.T) {
	ctx := context.Background()
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			_, err := tg.st.Get(ctx, tg.repo, "missing")
			if !errors.Is(err, sign.ErrNotFound) {
				t.Errorf("Get(missing): err = %v, want ErrNotFound", err)
			}
			img, err := random.Image(100, 2)
			if err != nil {
				t.Fatal(err)
			}
			if err := tg.st.Put(ctx, tg.repo, "v1", img); err != nil {
				t.Fatal(err)
			}
			got, err := tg.st.Get(ctx, tg.repo, "v1")
			if err != nil {
				t.Fatal(err)
			}
			gd, _ := got.Digest()
			wd, _ := img.Digest()
			if gd != wd {
				t.Errorf("Get returned %s, want %s", gd, wd)
			}
			if err := validate.Image(got); err != nil {
				t.Error(err)
			}
			// Another repository does not see the tag.
			if _, err := tg.st.Get(ctx, tg.repo+"-other", "v1"); !errors.Is(err, sign.ErrNotFound) {
				t.Errorf("Get(other repo): err = %v, want ErrNotFound", err)
			}
			// A replaced tag reads back the new image.
			img2, err := random.Image(100, 1)
			if err != nil {
				t.Fatal(err)
			}
			if err := tg.st.Put(ctx, tg.repo, "v1", img2); err != nil {
				t.Fatal(err)
			}
			got, err = tg.st.Get(ctx, tg.repo, "v1")
			if err != nil {
				t.Fatal(err)
			}
			gd, _ = got.Digest()
			wd, _ = img2.Digest()
			if gd != wd {
				t.Errorf("after re-tagging, Get returned %s, want %s", gd, wd)
			}
		})
	}
}

func TestRegistryErrors(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(testutil.QuietRegistry())
	host := strings.TrimPrefix(srv.URL, "http://")
	srv.Close() // nothing listens any more
	r := &sign.RegistryStore{Keychain: authn.NewMultiKeychain()}
	_, err := r.Get(ctx, host+"/app", "t")
	if err == nil || errors.Is(err, sign.ErrNotFound) {
		t.Errorf("Get from a dead registry: err = %v, want a non-NotFound error", err)
	}
	img, _ := random.Image(10, 1)
	if err := r.Put(ctx, host+"/app", "t", img); err == nil || !strings.Contains(err.Error(), "pushing") {
		t.Errorf("Put to a dead registry: err = %v, want a pushing error", err)
	}
	if _, err := r.Get(ctx, "UPPER/case", "t"); err == nil {
		t.Error("Get with an invalid repository succeeded")
	}
	if err := r.Put(ctx, "UPPER/case", "t", img); err == nil {
		t.Error("Put with an invalid repository succeeded")
	}
}

func TestPAEHelper(t *testing.T) {
	// Guard the test's own PAE against the spec's example layout.
	if got := string(pae("t", []byte("ab"))); got != "DSSEv1 1 t 2 ab" {
		t.Errorf("pae = %q", got)
	}
}
