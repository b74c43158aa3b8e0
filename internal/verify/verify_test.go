package verify_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"

	"github.com/kilnbuild/kiln/internal/sign"
	"github.com/kilnbuild/kiln/internal/testutil"
	"github.com/kilnbuild/kiln/internal/verify"
)

// fixture is a store with two random images and two keys.
type fixture struct {
	ctx    context.Context
	st     sign.Store
	repo   string
	d, d2  v1.Hash // the image under test and another one
	a, b   signature.SignerVerifier
	sa, sb *sign.Signer
}

// fixtures returns one fixture in an in-process registry and one in an
// OCI layout.
func fixtures(t *testing.T) map[string]*fixture {
	t.Helper()
	out := map[string]*fixture{
		"registry": {st: &sign.RegistryStore{Keychain: authn.NewMultiKeychain()}, repo: testutil.Registry(t) + "/test/app"},
		"layout":   {st: &sign.LayoutStore{Dir: t.TempDir()}, repo: "kiln.local/app"},
	}
	for _, f := range out {
		f.ctx = context.Background()
		f.d, f.d2 = f.push(t, "one"), f.push(t, "two")
		f.a, f.b = newKey(t), newKey(t)
		f.sa, f.sb = sign.New(f.a), sign.New(f.b)
	}
	return out
}

func newKey(t *testing.T) signature.SignerVerifier {
	t.Helper()
	_, sv := testutil.ECDSAKey(t)
	return sv
}

func (f *fixture) push(t *testing.T, tag string) v1.Hash {
	t.Helper()
	img := testutil.RandomImage(t, 128, 1)
	if err := f.st.Put(context.Background(), f.repo, tag, img); err != nil {
		t.Fatal(err)
	}
	return testutil.Digest(t, img)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// rewrite replaces the image tagged tag with one whose layers edit made
// from the old layers' bytes and annotations.
func (f *fixture) rewrite(t *testing.T, tag string, edit func(body []byte, ann map[string]string) ([]byte, map[string]string)) {
	t.Helper()
	old, err := f.st.Get(f.ctx, f.repo, tag)
	must(t, err)
	m, err := old.Manifest()
	must(t, err)
	layers, err := old.Layers()
	must(t, err)
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	for i, l := range layers {
		rc, err := l.Compressed()
		must(t, err)
		body, err := io.ReadAll(rc)
		rc.Close()
		must(t, err)
		ann := map[string]string{}
		for k, v := range m.Layers[i].Annotations {
			ann[k] = v
		}
		nb, na := edit(body, ann)
		img, err = mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(nb, m.Layers[i].MediaType), Annotations: na})
		must(t, err)
	}
	must(t, f.st.Put(f.ctx, f.repo, tag, img))
}

// copyTag points to at the image tagged from.
func (f *fixture) copyTag(t *testing.T, from, to string) {
	t.Helper()
	img, err := f.st.Get(f.ctx, f.repo, from)
	must(t, err)
	must(t, f.st.Put(f.ctx, f.repo, to, img))
}

// addLayer appends a layer to the image tagged tag (creating it).
func (f *fixture) addLayer(t *testing.T, tag string, body []byte, mt types.MediaType, ann map[string]string) {
	t.Helper()
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	if old, err := f.st.Get(f.ctx, f.repo, tag); err == nil {
		img = old
	}
	img, err := mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(body, mt), Annotations: ann})
	must(t, err)
	must(t, f.st.Put(f.ctx, f.repo, tag, img))
}

// editEnvelope decodes each DSSE envelope, lets edit change it and
// re-encodes it.
func editEnvelope(t *testing.T, edit func(env map[string]any, payload []byte) []byte) func([]byte, map[string]string) ([]byte, map[string]string) {
	return func(body []byte, ann map[string]string) ([]byte, map[string]string) {
		var env map[string]any
		must(t, json.Unmarshal(body, &env))
		payload, err := base64.StdEncoding.DecodeString(env["payload"].(string))
		must(t, err)
		env["payload"] = base64.StdEncoding.EncodeToString(edit(env, payload))
		out, err := json.Marshal(env)
		must(t, err)
		return out, ann
	}
}

func flipOne(t *testing.T, b []byte, old, new string) []byte {
	t.Helper()
	if len(old) != len(new) || bytes.Count(b, []byte(old)) != 1 {
		t.Fatalf("cannot flip %q in %s", old, b)
	}
	out := bytes.Replace(b, []byte(old), []byte(new), 1)
	diff := 0
	for i := range b {
		if b[i] != out[i] {
			diff++
		}
	}
	if diff != 1 {
		t.Fatalf("flip changed %d bytes, want 1", diff)
	}
	return out
}

// lastFlipped changes the last hex digit of h.
func lastFlipped(h string) string {
	last := "0"
	if h[len(h)-1] == '0' {
		last = "1"
	}
	return h[:len(h)-1] + last
}

func TestSignatureVerifies(t *testing.T) {
	for name, f := range fixtures(t) {
		t.Run(name, func(t *testing.T) {
			must(t, f.sb.Sign(f.ctx, f.st, f.repo, f.d))
			must(t, f.sa.Sign(f.ctx, f.st, f.repo, f.d))
			// A broken signature beside good ones does not matter.
			f.addLayer(t, sign.SignatureTag(f.d), []byte("{}"), sign.SimpleSigningMediaType, map[string]string{sign.SignatureAnnotation: "bm9wZQ=="})
			for _, v := range []signature.Verifier{f.a, f.b} {
				if err := verify.Signature(f.ctx, f.st, f.repo, f.d, v); err != nil {
					t.Errorf("verify.Signature: %v", err)
				}
			}
			if err := verify.Signature(f.ctx, f.st, f.repo, f.d2, f.a); !errors.Is(err, verify.ErrUnsigned) {
				t.Errorf("the other image: err = %v, want ErrUnsigned", err)
			}
		})
	}
}

func TestAttestationsVerify(t *testing.T) {
	const typeA, typeB = "https://example.com/A", "https://example.com/B"
	for name, f := range fixtures(t) {
		t.Run(name, func(t *testing.T) {
			must(t, f.sa.Attest(f.ctx, f.st, f.repo, f.d, typeA, map[string]string{"k": "a"}))
			must(t, f.sb.Attest(f.ctx, f.st, f.repo, f.d, "https://example.com/by-b", 1))
			must(t, f.sa.Attest(f.ctx, f.st, f.repo, f.d, typeB, []int{1, 2}))
			atts, err := verify.Attestations(f.ctx, f.st, f.repo, f.d, f.a)
			if err != nil {
				t.Fatal(err)
			}
			if len(atts) != 2 {
				t.Fatalf("%d attestations, want 2 (b's is not a's): %v", len(atts), atts)
			}
			for typ, pred := range map[string]string{typeA: `{"k":"a"}`, typeB: `[1,2]`} {
				a := atts[typ]
				if a.PredicateType != typ || string(a.Statement.Predicate) != pred {
					t.Errorf("%s: got %q %s, want %s", typ, a.PredicateType, a.Statement.Predicate, pred)
				}
				if len(a.Statement.Subject) != 1 || a.Statement.Subject[0].Name != f.repo || a.Statement.Subject[0].Digest["sha256"] != f.d.Hex || len(a.Statement.Subject[0].Digest) != 1 {
					t.Errorf("%s: subject %+v, want %s@%s", typ, a.Statement.Subject, f.repo, f.d)
				}
				if a.Statement.Type != "https://in-toto.io/Statement/v1" {
					t.Errorf("%s: _type %q", typ, a.Statement.Type)
				}
			}
		})
	}
}

func TestTamper(t *testing.T) {
	const predType = "https://example.com/pred"
	signA := func(t *testing.T, f *fixture) { must(t, f.sa.Sign(f.ctx, f.st, f.repo, f.d)) }
	attestA := func(t *testing.T, f *fixture) {
		must(t, f.sa.Attest(f.ctx, f.st, f.repo, f.d, predType, map[string]int{"n": 1}))
	}
	for _, tc := range []struct {
		name    string
		setup   func(*testing.T, *fixture)
		att     bool   // check attestations, not the signature
		want    error  // errors.Is
		mention string // in the error
	}{
		{"unsigned", func(*testing.T, *fixture) {}, false, verify.ErrUnsigned, ".sig"},
		{"signed by another key", func(t *testing.T, f *fixture) {
			must(t, f.sb.Sign(f.ctx, f.st, f.repo, f.d))
		}, false, verify.ErrBadSignature, "does not match the key"},
		{"payload changed by one byte", func(t *testing.T, f *fixture) {
			signA(t, f)
			f.rewrite(t, sign.SignatureTag(f.d), func(b []byte, ann map[string]string) ([]byte, map[string]string) {
				return flipOne(t, b, `/app"`, `/apq"`), ann
			})
		}, false, verify.ErrBadSignature, "does not match the key"},
		{"payload digest changed by one byte", func(t *testing.T, f *fixture) {
			signA(t, f)
			f.rewrite(t, sign.SignatureTag(f.d), func(b []byte, ann map[string]string) ([]byte, map[string]string) {
				return flipOne(t, b, f.d.Hex, lastFlipped(f.d.Hex)), ann
			})
		}, false, verify.ErrBadSignature, "does not match the key"},
		{"signature annotation changed", func(t *testing.T, f *fixture) {
			signA(t, f)
			f.rewrite(t, sign.SignatureTag(f.d), func(b []byte, ann map[string]string) ([]byte, map[string]string) {
				raw, err := base64.StdEncoding.DecodeString(ann[sign.SignatureAnnotation])
				must(t, err)
				raw[len(raw)-1] ^= 0x01
				ann[sign.SignatureAnnotation] = base64.StdEncoding.EncodeToString(raw)
				return b, ann
			})
		}, false, verify.ErrBadSignature, "does not match the key"},
		{"signature annotation not base64", func(t *testing.T, f *fixture) {
			signA(t, f)
			f.rewrite(t, sign.SignatureTag(f.d), func(b []byte, ann map[string]string) ([]byte, map[string]string) {
				ann[sign.SignatureAnnotation] = "not base64!"
				return b, ann
			})
		}, false, verify.ErrBadSignature, "not base64"},
		{"signature annotation removed", func(t *testing.T, f *fixture) {
			signA(t, f)
			f.rewrite(t, sign.SignatureTag(f.d), func(b []byte, _ map[string]string) ([]byte, map[string]string) {
				return b, nil
			})
		}, false, verify.ErrBadSignature, "does not match the key"},
		{"signature moved to another digest", func(t *testing.T, f *fixture) {
			must(t, f.sa.Sign(f.ctx, f.st, f.repo, f.d2))
			f.copyTag(t, sign.SignatureTag(f.d2), sign.SignatureTag(f.d))
		}, false, verify.ErrBadSignature, "signed payload names"},
		{"signed payload of another type", func(t *testing.T, f *fixture) {
			body := []byte(`{"critical":{"identity":{"docker-reference":"x"},"image":{"docker-manifest-digest":"` + f.d.String() + `"},"type":"atomic container signature"},"optional":null}`)
			sig, err := f.a.SignMessage(bytes.NewReader(body))
			must(t, err)
			f.addLayer(t, sign.SignatureTag(f.d), body, sign.SimpleSigningMediaType, map[string]string{sign.SignatureAnnotation: base64.StdEncoding.EncodeToString(sig)})
		}, false, verify.ErrBadSignature, "not a cosign signature payload"},
		{"empty signature image", func(t *testing.T, f *fixture) {
			must(t, f.st.Put(f.ctx, f.repo, sign.SignatureTag(f.d), mutate.MediaType(empty.Image, types.OCIManifestSchema1)))
		}, false, verify.ErrBadSignature, "0 signatures"},

		{"no attestation", signA, true, verify.ErrNoAttestation, ".att"},
		{"attestation subject is another digest", func(t *testing.T, f *fixture) {
			must(t, f.sa.Attest(f.ctx, f.st, f.repo, f.d2, predType, 1))
			f.copyTag(t, sign.AttestationTag(f.d2), sign.AttestationTag(f.d))
		}, true, verify.ErrBadAttestation, "another subject"},
		{"envelope signed by another key", func(t *testing.T, f *fixture) {
			must(t, f.sb.Attest(f.ctx, f.st, f.repo, f.d, predType, 1))
		}, true, verify.ErrBadAttestation, "does not match the key"},
		{"DSSE payload byte flipped", func(t *testing.T, f *fixture) {
			attestA(t, f)
			f.rewrite(t, sign.AttestationTag(f.d), editEnvelope(t, func(_ map[string]any, p []byte) []byte {
				return flipOne(t, p, `"n":1`, `"n":2`)
			}))
		}, true, verify.ErrBadAttestation, "does not match the key"},
		{"DSSE subject digest flipped", func(t *testing.T, f *fixture) {
			attestA(t, f)
			f.rewrite(t, sign.AttestationTag(f.d), editEnvelope(t, func(_ map[string]any, p []byte) []byte {
				return flipOne(t, p, f.d.Hex, lastFlipped(f.d.Hex))
			}))
		}, true, verify.ErrBadAttestation, "does not match the key"},
		{"DSSE payload type changed", func(t *testing.T, f *fixture) {
			attestA(t, f)
			f.rewrite(t, sign.AttestationTag(f.d), editEnvelope(t, func(env map[string]any, p []byte) []byte {
				env["payloadType"] = "application/vnd.in-toto+jsom"
				return p
			}))
		}, true, verify.ErrBadAttestation, "does not match the key"},
		{"DSSE signature removed", func(t *testing.T, f *fixture) {
			attestA(t, f)
			f.rewrite(t, sign.AttestationTag(f.d), editEnvelope(t, func(env map[string]any, p []byte) []byte {
				env["signatures"] = []any{}
				return p
			}))
		}, true, verify.ErrBadAttestation, "does not match the key"},
		{"signed envelope that is not in-toto", func(t *testing.T, f *fixture) {
			env, err := dsse.WrapSigner(f.a, "text/plain").SignMessage(strings.NewReader("hello"))
			must(t, err)
			f.addLayer(t, sign.AttestationTag(f.d), env, sign.DSSEMediaType, map[string]string{sign.PredicateTypeAnnotation: predType, sign.SignatureAnnotation: ""})
		}, true, verify.ErrBadAttestation, "not an in-toto envelope"},
		{"signed in-toto envelope that is not a statement", func(t *testing.T, f *fixture) {
			env, err := dsse.WrapSigner(f.a, sign.InTotoPayloadType).SignMessage(strings.NewReader("[1,2]"))
			must(t, err)
			f.addLayer(t, sign.AttestationTag(f.d), env, sign.DSSEMediaType, map[string]string{sign.PredicateTypeAnnotation: predType, sign.SignatureAnnotation: ""})
		}, true, verify.ErrBadAttestation, "not an in-toto statement"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for name, f := range fixtures(t) {
				t.Run(name, func(t *testing.T) {
					tc.setup(t, f)
					var err error
					if tc.att {
						var atts map[string]verify.Attestation
						atts, err = verify.Attestations(f.ctx, f.st, f.repo, f.d, f.a)
						if atts != nil {
							t.Errorf("attestations came back with the error: %v", atts)
						}
					} else {
						err = verify.Signature(f.ctx, f.st, f.repo, f.d, f.a)
					}
					if !errors.Is(err, tc.want) {
						t.Fatalf("err = %v, want %v", err, tc.want)
					}
					msg := err.Error()
					if !strings.Contains(msg, tc.mention) || !strings.Contains(msg, f.d.String()) {
						t.Errorf("error %q does not mention %q and the digest", msg, tc.mention)
					}
					if strings.Contains(msg, "\n") {
						t.Errorf("error is not one line: %q", msg)
					}
				})
			}
		})
	}
}

// brokenStore fails to read.
type brokenStore struct{ sign.Store }

func (brokenStore) Get(context.Context, string, string) (v1.Image, error) {
	return nil, errors.New("disk on fire")
}

func TestStoreErrors(t *testing.T) {
	v := newKey(t)
	d := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}
	err := verify.Signature(context.Background(), brokenStore{}, "example.com/app", d, v)
	if err == nil || errors.Is(err, verify.ErrUnsigned) || errors.Is(err, verify.ErrBadSignature) || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("Signature: err = %v, want the store's error unclassified", err)
	}
	_, err = verify.Attestations(context.Background(), brokenStore{}, "example.com/app", d, v)
	if err == nil || errors.Is(err, verify.ErrNoAttestation) || errors.Is(err, verify.ErrBadAttestation) || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("Attestations: err = %v, want the store's error unclassified", err)
	}
}
