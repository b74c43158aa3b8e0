package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kilnbuild/kiln/internal/cli"
	"github.com/kilnbuild/kiln/internal/keys"
	"github.com/kilnbuild/kiln/internal/provenance"
	kilnregistry "github.com/kilnbuild/kiln/internal/registry"
	"github.com/kilnbuild/kiln/internal/sign"
	"github.com/kilnbuild/kiln/internal/store"
	"github.com/kilnbuild/kiln/internal/testutil"
	"github.com/kilnbuild/kiln/internal/verify"
)

const password = "correct horse battery staple"

// signing is one world for these tests: an in-process registry, a copy of
// the hello module with a kiln key pair in it, and the environments kiln and
// cosign run with.
type signing struct {
	reg  string   // host:port of the registry
	dir  string   // the module; cosign.key and cosign.pub live here
	env  []string // kiln's; KILN_CACHE is shared by every build of the test
	cenv []string // cosign's: a private HOME, the password, no COSIGN_EXPERIMENTAL
}

func newSigning(t *testing.T, h http.Handler) *signing {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: not in -short")
	}
	testutil.RequireTool(t, "cosign")
	if h == nil {
		h = newRegistry()
	}
	s := &signing{reg: testutil.Serve(t, h), dir: t.TempDir()}
	testutil.WriteFiles(t, s.dir, testutil.HelloModule)
	s.env = append(os.Environ(), "KILN_STORE="+t.TempDir(), "KILN_CACHE="+t.TempDir(), "KO_DOCKER_REPO=",
		"KO_CONFIG_PATH=", "KO_DEFAULTBASEIMAGE=", "SOURCE_DATE_EPOCH=", "GOPROXY=off", "GOFLAGS=", "COSIGN_PASSWORD="+password)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "COSIGN_") && !strings.HasPrefix(kv, "HOME=") {
			s.cenv = append(s.cenv, kv)
		}
	}
	s.cenv = append(s.cenv, "HOME="+t.TempDir(), "COSIGN_PASSWORD="+password)
	if code, _, stderr := kilnExit(t, s.dir, s.env, "keygen"); code != 0 {
		t.Fatalf("kiln keygen: exit %d\n%s", code, stderr)
	}
	return s
}

func newRegistry() http.Handler {
	return testutil.QuietRegistry(registry.WithReferrersSupport(true))
}

// newKilnRegistry is kiln's own registry over a fresh store, open to
// anonymous pushes as on loopback.
func newKilnRegistry(t *testing.T) http.Handler {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := kilnregistry.New(st.Repositories(), kilnregistry.Options{Access: kilnregistry.Access{AnonymousWrite: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg
}

// withoutReferrers hides the OCI referrers API, as older registries do,
// counting the requests it turned away.
func withoutReferrers(h http.Handler, hidden *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := strings.Split(strings.Trim(r.URL.Path, "/"), "/"); len(p) >= 4 && p[0] == "v2" && p[len(p)-2] == "referrers" {
			hidden.Add(1)
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// kilnExit runs kiln and returns its exit code and output.
func kilnExit(t *testing.T, dir string, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli.Run(context.Background(), cli.Invocation{Args: args, Env: env, Dir: dir, Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

// cosign runs the real cosign CLI and returns its exit code and output.
func cosign(t *testing.T, env []string, args ...string) (exit int, out string) {
	t.Helper()
	cmd := exec.Command("cosign", args...)
	cmd.Env = env
	cmd.Dir = t.TempDir()
	b, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(b)
	}
	if err != nil {
		t.Fatalf("cosign %v: %v", args, err)
	}
	return 0, string(b)
}

// build builds and pushes ./cmd/hello to REGISTRY/repo and returns
// REGISTRY/repo@sha256:…; extra flags go before the package.
func (s *signing) build(t *testing.T, repo string, extra ...string) string {
	t.Helper()
	args := append([]string{"build", "--platform", "linux/amd64", "--bare", "--output", s.reg + "/" + repo}, extra...)
	code, stdout, stderr := kilnExit(t, s.dir, s.env, append(args, "./cmd/hello")...)
	if code != 0 {
		t.Fatalf("kiln %v: exit %d\n%s", args, code, stderr)
	}
	return strings.TrimSpace(stdout)
}

// buildSigned builds, signs and attests with the kiln key in s.dir.
func (s *signing) buildSigned(t *testing.T, repo string, extra ...string) string {
	t.Helper()
	return s.build(t, repo, append([]string{"--sign", "--key", filepath.Join(s.dir, "cosign.key")}, extra...)...)
}

// cosignVerify runs cosign verify with s.dir's public key.
func (s *signing) cosignVerify(t *testing.T, image string) (int, string) {
	t.Helper()
	return cosign(t, s.cenv, "verify", "--key", filepath.Join(s.dir, "cosign.pub"), "--insecure-ignore-tlog", image)
}

// cosignVerifyAttestation runs cosign verify-attestation for one predicate type.
func (s *signing) cosignVerifyAttestation(t *testing.T, typ, image string) (int, string) {
	t.Helper()
	return cosign(t, s.cenv, "verify-attestation", "--key", filepath.Join(s.dir, "cosign.pub"), "--insecure-ignore-tlog", "--type", typ, image)
}

// kilnVerify runs kiln verify with s.dir's public key.
func (s *signing) kilnVerify(t *testing.T, image string, flags ...string) (int, string, string) {
	t.Helper()
	return kilnExit(t, s.dir, s.env, append(append([]string{"verify", "--key", "cosign.pub"}, flags...), image)...)
}

func digestOf(t *testing.T, ref string) v1.Hash {
	t.Helper()
	_, d, ok := strings.Cut(ref, "@")
	h, err := v1.NewHash(d)
	if !ok || err != nil {
		t.Fatalf("%q is not REF@DIGEST: %v", ref, err)
	}
	return h
}

func repoOf(ref string) string { r, _, _ := strings.Cut(ref, "@"); return r }

func pull(t *testing.T, ref string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatalf("pulling %s: %v", ref, err)
	}
	return img
}

func push(t *testing.T, ref string, img v1.Image) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func sigTag(repo string, d v1.Hash) string { return repo + ":sha256-" + d.Hex + ".sig" }
func attTag(repo string, d v1.Hash) string { return repo + ":sha256-" + d.Hex + ".att" }

// hasBundle reports whether a sigstore bundle refers to ref's digest.
func hasBundle(t *testing.T, ref string) bool {
	t.Helper()
	d, err := name.NewDigest(ref)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Referrers(d)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	// The referrers list's artifactType is the registry's reading (ggcr's
	// test registry takes the config media type); the manifest says.
	for _, r := range m.Manifests {
		img, err := remote.Image(d.Context().Digest(r.Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		mf, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if mf.ArtifactType == "application/vnd.dev.sigstore.bundle.v0.3+json" {
			return true
		}
	}
	return false
}

func wantLine(t *testing.T, out, prefix, contains string) {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) && strings.Contains(l, contains) {
			return
		}
	}
	t.Errorf("no line starting %q containing %q in:\n%s", prefix, contains, out)
}

// TestCosignVerifiesKilnSignatures: what kiln build --sign pushes, the real
// cosign verifies: the signature and both attestations, with and without the
// registry's referrers API. kiln verify agrees.
func TestCosignVerifiesKilnSignatures(t *testing.T) {
	type world struct {
		format    string
		referrers bool
		kiln      bool // kiln's own registry instead of go-containerregistry's
	}
	var worlds []world
	for _, format := range []string{"tags", "referrers"} {
		worlds = append(worlds, world{format, true, false}, world{format, false, false}, world{format, true, true})
	}
	for _, w := range worlds {
		format, referrers := w.format, w.referrers
		name := format + " format, " + map[bool]string{true: "referrers API", false: "no referrers API"}[referrers]
		if w.kiln {
			name += ", kiln's registry"
		}
		t.Run(name, func(t *testing.T) {
			var hidden atomic.Int32
			h := newRegistry()
			if w.kiln {
				h = newKilnRegistry(t)
			}
			if !referrers {
				h = withoutReferrers(h, &hidden)
			}
			s := newSigning(t, h)
			ref := s.buildSigned(t, "kiln/hello", "--signature-format", format)
			if code, out := s.cosignVerify(t, ref); code != 0 {
				t.Errorf("cosign verify: exit %d\n%s", code, out)
			}
			for _, typ := range []string{"slsaprovenance1", "spdxjson"} {
				if code, out := s.cosignVerifyAttestation(t, typ, ref); code != 0 {
					t.Errorf("cosign verify-attestation --type %s: exit %d\n%s", typ, code, out)
				}
			}
			code, stdout, stderr := s.kilnVerify(t, repoOf(ref), "--attestations")
			if code != 0 {
				t.Fatalf("kiln verify --attestations: exit %d\n%s", code, stderr)
			}
			wantLine(t, stdout, "signature:", digestOf(t, ref).String())
			wantLine(t, stdout, "sbom:", "SPDX")
			wantLine(t, stdout, "provenance:", "package example.com/hello/cmd/hello")

			d := digestOf(t, ref)
			_, sigErr := remote.Head(mustRef(t, sigTag(repoOf(ref), d)))
			_, fallbackErr := remote.Head(mustRef(t, repoOf(ref)+":sha256-"+d.Hex))
			switch {
			case format == "tags" && sigErr != nil:
				t.Errorf("tags format: no %s: %v", sigTag(repoOf(ref), d), sigErr)
			case format == "referrers" && sigErr == nil:
				t.Error("referrers format wrote a .sig tag")
			case format == "referrers" && !hasBundle(t, ref):
				t.Error("referrers format: no Sigstore bundle refers to the image")
			case format == "referrers" && referrers && fallbackErr == nil:
				t.Error("referrers format on a registry with the referrers API wrote the fallback tag")
			case format == "referrers" && !referrers && fallbackErr != nil:
				t.Errorf("referrers format without the referrers API: no fallback tag: %v", fallbackErr)
			}
			if !referrers && hidden.Load() == 0 {
				t.Error("nobody asked for referrers: the registry without them proved nothing")
			}
		})
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestCosignKeysInterop: kiln signs with a key cosign generated; cosign signs
// with a key kiln generated; a wrong password stops kiln before it pushes.
func TestCosignKeysInterop(t *testing.T) {
	s := newSigning(t, nil)

	t.Run("cosign key, kiln signs", func(t *testing.T) {
		keyDir := t.TempDir()
		if code, out := cosign(t, s.cenv, "generate-key-pair", "--output-key-prefix", filepath.Join(keyDir, "cosign")); code != 0 {
			t.Fatalf("cosign generate-key-pair: exit %d\n%s", code, out)
		}
		ref := s.build(t, "cosignkey/hello", "--sign", "--key", filepath.Join(keyDir, "cosign.key"))
		code, out := cosign(t, s.cenv, "verify", "--key", filepath.Join(keyDir, "cosign.pub"), "--insecure-ignore-tlog", ref)
		if code != 0 {
			t.Errorf("cosign verify: exit %d\n%s", code, out)
		}
		if code, _, stderr := kilnExit(t, s.dir, s.env, "verify", "--key", filepath.Join(keyDir, "cosign.pub"), "--attestations", ref); code != 0 {
			t.Errorf("kiln verify with cosign's public key: exit %d\n%s", code, stderr)
		}
	})

	// cosign v3 signs into a new-format bundle (an OCI referrer) by default;
	// --new-bundle-format=false writes the legacy .sig image. kiln reads both.
	// Offline, with a key and no transparency log, cosign v3.1.3 needs
	// --tlog-upload=false together with --use-signing-config=false.
	for _, tc := range []struct {
		name, repo string
		flags      []string
		legacy     bool
	}{
		{"kiln key, cosign signs a bundle", "kilnkey/bundle", nil, false},
		{"kiln key, cosign signs legacy", "kilnkey/legacy", []string{"--new-bundle-format=false"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := s.build(t, tc.repo)
			args := append([]string{"sign", "--key", filepath.Join(s.dir, "cosign.key"), "--tlog-upload=false", "--use-signing-config=false", "--yes"}, tc.flags...)
			if code, out := cosign(t, s.cenv, append(args, ref)...); code != 0 {
				t.Fatalf("cosign %v: exit %d\n%s", args, code, out)
			}
			if code, out := s.cosignVerify(t, ref); code != 0 {
				t.Errorf("cosign verify: exit %d\n%s", code, out)
			}
			if got := hasBundle(t, ref); got == tc.legacy {
				t.Errorf("cosign wrote a sigstore bundle referrer: %v, want %v", got, !tc.legacy)
			}
			if code, _, stderr := s.kilnVerify(t, ref); code != 0 {
				t.Errorf("kiln verify of cosign's signature: exit %d\n%s", code, stderr)
			}
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		env := append(append([]string{}, s.env...), "COSIGN_PASSWORD=not the password")
		args := []string{"build", "--platform", "linux/amd64", "--bare", "--output", s.reg + "/wrongpw", "--sign", "--key", "cosign.key", "./cmd/hello"}
		code, stdout, stderr := kilnExit(t, s.dir, env, args...)
		if code != 1 {
			t.Fatalf("exit %d, want 1\n%s", code, stderr)
		}
		// The key is decrypted beside the compile, so progress lines may come
		// first; the error is the last line, and alone of its kind.
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		last := lines[len(lines)-1]
		if stdout != "" || !strings.Contains(last, "wrong password") || strings.Count(stderr, "password") != 1 {
			t.Errorf("want a last stderr line about the password, got stdout %q stderr %q", stdout, stderr)
		}
		reg, err := name.NewRegistry(s.reg)
		if err != nil {
			t.Fatal(err)
		}
		repos, err := remote.Catalog(context.Background(), reg)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range repos {
			if strings.HasPrefix(r, "wrongpw") {
				t.Errorf("a failed signing build pushed %s", r)
			}
		}
	})
}

// flipByte returns l with one byte changed: the first byte of the contents
// of its first non-empty regular file. The tar stream is otherwise the same.
func flipByte(t *testing.T, l v1.Layer) v1.Layer {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(raw)
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no regular file in the layer: %v", err)
		}
		if h.Typeflag == tar.TypeReg && h.Size > 0 {
			break
		}
	}
	raw[len(raw)-r.Len()] ^= 1 // tar.Reader stops right at the contents
	mt, err := l.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	nl, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }, tarball.WithMediaType(mt))
	if err != nil {
		t.Fatal(err)
	}
	return nl
}

// replaceLayer returns img with its layer i replaced by l; the config's
// diff_ids follow, the rest of config and manifest stay.
func replaceLayer(t *testing.T, img v1.Image, i int, l v1.Layer) v1.Image {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	layers[i] = l
	bare := cf.DeepCopy()
	bare.RootFS.DiffIDs, bare.History = nil, nil
	out, err := mutate.ConfigFile(mutate.MediaType(empty.Image, m.MediaType), bare)
	if err != nil {
		t.Fatal(err)
	}
	if out, err = mutate.AppendLayers(out, layers...); err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	if cf.RootFS.DiffIDs[i], err = l.DiffID(); err != nil {
		t.Fatal(err)
	}
	if out, err = mutate.ConfigFile(out, cf); err != nil {
		t.Fatal(err)
	}
	return mutate.Annotations(mutate.ConfigMediaType(out, m.Config.MediaType), m.Annotations).(v1.Image)
}

// TestCosignTamperMatrix: every tampering with a signed image, its
// signature or its attestations makes both cosign and kiln verify fail.
// Each case starts from a freshly built and signed image in its own
// repository; "untampered" checks that starting point.
func TestCosignTamperMatrix(t *testing.T) {
	s := newSigning(t, nil)
	otherKey := t.TempDir()
	if code, _, stderr := kilnExit(t, otherKey, s.env, "keygen"); code != 0 {
		t.Fatalf("kiln keygen: exit %d\n%s", code, stderr)
	}
	// unsigned makes image B: A with an annotation, under the tag b.
	unsigned := func(t *testing.T, repo string, a v1.Hash) v1.Hash {
		return push(t, repo+":b", mutate.Annotations(pull(t, repo+"@"+a.String()), map[string]string{"e2e": "B"}).(v1.Image))
	}
	kilnSign := func(t *testing.T, dir, ref string) {
		if code, _, stderr := kilnExit(t, dir, s.env, "sign", "--key", "cosign.key", ref); code != 0 {
			t.Fatalf("kiln sign %s: exit %d\n%s", ref, code, stderr)
		}
	}

	tests := []struct {
		name        string
		attestation bool // check attestations rather than the signature
		// tamper changes the registry and returns the reference to verify.
		tamper     func(t *testing.T, repo string, a v1.Hash) string
		kilnWant   string // in kiln's error; "" for success
		cosignWant string // in cosign's error
	}{
		{name: "untampered", tamper: func(t *testing.T, repo string, a v1.Hash) string {
			return repo + "@" + a.String()
		}},
		{name: "untampered attestations", attestation: true, tamper: func(t *testing.T, repo string, a v1.Hash) string {
			return repo + "@" + a.String()
		}},
		{name: "layer byte", kilnWant: "no signature (looked for", cosignWant: "no signatures found", tamper: func(t *testing.T, repo string, a v1.Hash) string {
			img := pull(t, repo+"@"+a.String())
			layers, err := img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			push(t, repo+":latest", replaceLayer(t, img, len(layers)-1, flipByte(t, layers[len(layers)-1])))
			return repo + ":latest"
		}},
		{name: "config", kilnWant: "no signature (looked for", cosignWant: "no signatures found", tamper: func(t *testing.T, repo string, a v1.Hash) string {
			img := pull(t, repo+"@"+a.String())
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			cf = cf.DeepCopy()
			cf.Config.Env = append(cf.Config.Env, "TAMPERED=1")
			img, err = mutate.ConfigFile(img, cf)
			if err != nil {
				t.Fatal(err)
			}
			push(t, repo+":latest", img)
			return repo + ":latest"
		}},
		{name: "manifest", kilnWant: "no signature (looked for", cosignWant: "no signatures found", tamper: func(t *testing.T, repo string, a v1.Hash) string {
			img := mutate.Annotations(pull(t, repo+"@"+a.String()), map[string]string{"e2e": "tampered"}).(v1.Image)
			push(t, repo+":latest", img)
			return repo + ":latest"
		}},
		{name: "signature payload", kilnWant: "signature does not match the key", cosignWant: "invalid signature", tamper: func(t *testing.T, repo string, a v1.Hash) string {
			sig := pull(t, sigTag(repo, a))
			m, err := sig.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			layers, err := sig.Layers()
			if err != nil || len(layers) != 1 {
				t.Fatalf("%s: %d layers, %v", sigTag(repo, a), len(layers), err)
			}
			body := testutil.ReadAll(t, layers[0].Compressed)
			// One byte: the last hex digit of the signed digest.
			i := bytes.Index(body, []byte(a.Hex)) + len(a.Hex) - 1
			if body[i] == '0' {
				body[i] = '1'
			} else {
				body[i] = '0'
			}
			forged, err := mutate.Append(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON),
				mutate.Addendum{Layer: static.NewLayer(body, m.Layers[0].MediaType), Annotations: m.Layers[0].Annotations})
			if err != nil {
				t.Fatal(err)
			}
			push(t, sigTag(repo, a), forged)
			return repo + "@" + a.String()
		}},
		{name: "signature by another key", kilnWant: "signature does not match the key", cosignWant: "invalid signature", tamper: func(t *testing.T, repo string, a v1.Hash) string {
			copyRepo := repo + "-copy"
			push(t, copyRepo+":latest", pull(t, repo+"@"+a.String()))
			kilnSign(t, otherKey, copyRepo+"@"+a.String())
			push(t, sigTag(repo, a), pull(t, sigTag(copyRepo, a)))
			return repo + "@" + a.String()
		}},
		{name: "signature moved to another digest", kilnWant: "signed payload names sha256:", cosignWant: "invalid or missing digest in claim", tamper: func(t *testing.T, repo string, a v1.Hash) string {
			b := unsigned(t, repo, a)
			push(t, sigTag(repo, b), pull(t, sigTag(repo, a)))
			return repo + "@" + b.String()
		}},
		{name: "attestation for another subject", attestation: true, kilnWant: "is about another subject", cosignWant: "no matching subject digest", tamper: func(t *testing.T, repo string, a v1.Hash) string {
			b := unsigned(t, repo, a)
			kilnSign(t, s.dir, repo+"@"+b.String()) // B's signature is good: only the attestations lie
			push(t, attTag(repo, b), pull(t, attTag(repo, a)))
			return repo + "@" + b.String()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ref := s.buildSigned(t, "tamper/"+strings.ReplaceAll(tc.name, " ", "-"))
			image := tc.tamper(t, repoOf(ref), digestOf(t, ref))
			ok := tc.kilnWant == ""

			checkCosign := func(what string, code int, out string) {
				if ok && code != 0 {
					t.Errorf("%s %s: exit %d, want 0\n%s", what, image, code, out)
				}
				if !ok && (code == 0 || !strings.Contains(out, tc.cosignWant)) {
					t.Errorf("%s %s: exit %d, want a failure with %q\n%s", what, image, code, tc.cosignWant, out)
				}
			}
			var kilnCode int
			var kilnErr string
			if tc.attestation {
				for _, typ := range []string{"slsaprovenance1", "spdxjson"} {
					code, out := s.cosignVerifyAttestation(t, typ, image)
					checkCosign("cosign verify-attestation --type "+typ, code, out)
				}
				kilnCode, _, kilnErr = s.kilnVerify(t, image, "--attestations")
			} else {
				code, out := s.cosignVerify(t, image)
				checkCosign("cosign verify", code, out)
				kilnCode, _, kilnErr = s.kilnVerify(t, image)
			}
			switch {
			case ok && kilnCode != 0:
				t.Errorf("kiln verify %s: exit %d, want 0\n%s", image, kilnCode, kilnErr)
			case !ok && (kilnCode != 1 || !strings.Contains(kilnErr, tc.kilnWant)):
				t.Errorf("kiln verify %s: exit %d, want 1 with %q\n%s", image, kilnCode, tc.kilnWant, kilnErr)
			}
		})
	}
}

// git runs git in dir with a fixed identity and dates, and no user config.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=kiln e2e", "GIT_AUTHOR_EMAIL=e2e@example.com", "GIT_AUTHOR_DATE=2024-01-01T00:00:00Z",
		"GIT_COMMITTER_NAME=kiln e2e", "GIT_COMMITTER_EMAIL=e2e@example.com", "GIT_COMMITTER_DATE=2024-01-01T00:00:00Z")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestKilnVerifyRebuild: kiln verify --rebuild reproduces an image from the
// commit its provenance records, and refuses a provenance that lies about
// the commit or records uncommitted changes.
func TestKilnVerifyRebuild(t *testing.T) {
	s := newSigning(t, nil)
	testutil.RequireTool(t, "git")
	testutil.WriteFiles(t, s.dir, map[string]string{".gitignore": "cosign.key\ncosign.pub\n"})
	git(t, s.dir, "init", "-q")
	git(t, s.dir, "add", "-A")
	git(t, s.dir, "commit", "-q", "-m", "one")

	ref := s.buildSigned(t, "rebuild/hello")
	code, stdout, stderr := s.kilnVerify(t, ref, "--rebuild")
	if code != 0 {
		t.Fatalf("kiln verify --rebuild: exit %d\n%s", code, stderr)
	}
	wantLine(t, stdout, "rebuild:", "reproduces "+digestOf(t, ref).String())

	t.Run("provenance names another commit", func(t *testing.T) {
		testutil.WriteFiles(t, s.dir, map[string]string{"cmd/hello/main.go": strings.Replace(testutil.HelloModule["cmd/hello/main.go"], `"dev"`, `"two"`, 1)})
		git(t, s.dir, "commit", "-q", "-a", "-m", "two")
		two := git(t, s.dir, "rev-parse", "HEAD")

		// The lie is signed with the right key: the statement is about this
		// image, only the recorded commit is wrong.
		ctx := context.Background()
		repo, d := repoOf(ref), digestOf(t, ref)
		pub, err := keys.LoadVerifier(filepath.Join(s.dir, "cosign.pub"))
		if err != nil {
			t.Fatal(err)
		}
		atts, err := verify.Attestations(ctx, &sign.RegistryStore{}, repo, d, pub)
		if err != nil {
			t.Fatal(err)
		}
		var pred provenance.Predicate
		if err := json.Unmarshal(atts[provenance.PredicateType].Statement.Predicate, &pred); err != nil {
			t.Fatal(err)
		}
		for _, dep := range pred.BuildDefinition.ResolvedDependencies {
			if dep.Name == provenance.DepSource {
				dep.Digest["gitCommit"] = two
			}
		}
		sv, err := keys.LoadSigner(filepath.Join(s.dir, "cosign.key"), []byte(password))
		if err != nil {
			t.Fatal(err)
		}
		if err := sign.New(sv).Attest(ctx, &sign.RegistryStore{}, repo, d, provenance.PredicateType, pred); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := s.kilnVerify(t, ref, "--attestations")
		if code != 0 {
			t.Fatalf("kiln verify --attestations of the forged provenance: exit %d\n%s", code, stderr)
		}
		wantLine(t, stdout, "provenance:", two)
		if code, out := s.cosignVerifyAttestation(t, "slsaprovenance1", ref); code != 0 {
			t.Errorf("cosign verify-attestation of the forged provenance: exit %d\n%s", code, out)
		}

		code, stdout, stderr = s.kilnVerify(t, ref, "--rebuild")
		if code != 1 || !strings.Contains(stderr, "does not come from the recorded source") {
			t.Errorf("kiln verify --rebuild of a lying provenance: exit %d, want 1 saying the rebuild does not reproduce it\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
	})

	t.Run("dirty tree", func(t *testing.T) {
		testutil.WriteFiles(t, s.dir, map[string]string{"lib/lib.go": "package lib\n\n// uncommitted\n"})
		dirty := s.buildSigned(t, "rebuild/dirty")
		code, stdout, stderr := s.kilnVerify(t, dirty, "--rebuild")
		if code != 1 || !strings.Contains(stderr, "uncommitted") {
			t.Errorf("kiln verify --rebuild of a dirty build: exit %d, want 1 about uncommitted changes\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
	})
}

// TestUnchangedRebuildIsNotSignedAgain: a rebuild of unchanged source gives
// the same digest, whose signature and attestations by the same key are
// already there: kiln leaves them as they are. Another key signs anew.
func TestUnchangedRebuildIsNotSignedAgain(t *testing.T) {
	s := newSigning(t, nil)
	build := func(key string) (string, string) {
		t.Helper()
		args := []string{"build", "--platform", "linux/amd64,linux/arm64", "--bare", "--output", s.reg + "/kiln/again", "--sign", "--key", key, "./cmd/hello"}
		code, stdout, stderr := kilnExit(t, s.dir, s.env, args...)
		if code != 0 {
			t.Fatalf("kiln %v: exit %d\n%s", args, code, stderr)
		}
		return strings.TrimSpace(stdout), stderr
	}
	key := filepath.Join(s.dir, "cosign.key")
	ref, stderr := build(key)
	if strings.Contains(stderr, "already signed") {
		t.Fatalf("the first build claims the image was signed already:\n%s", stderr)
	}
	d := digestOf(t, ref)
	sigBefore, err := remote.Head(mustRef(t, sigTag(repoOf(ref), d)))
	if err != nil {
		t.Fatal(err)
	}

	again, stderr := build(key)
	if again != ref {
		t.Fatalf("the rebuild gave %s, not %s", again, ref)
	}
	if !strings.Contains(stderr, "already signed and attested with this key") {
		t.Fatalf("the rebuild signed again:\n%s", stderr)
	}
	sigAfter, err := remote.Head(mustRef(t, sigTag(repoOf(ref), d)))
	if err != nil {
		t.Fatal(err)
	}
	if sigAfter.Digest != sigBefore.Digest {
		t.Fatal("the rebuild rewrote the signatures")
	}
	if code, out := s.cosignVerify(t, ref); code != 0 {
		t.Fatalf("cosign verify after the rebuild: exit %d\n%s", code, out)
	}

	// A second key has not signed: it must sign, not skip.
	other := t.TempDir()
	if code, _, stderr := kilnExit(t, other, s.env, "keygen"); code != 0 {
		t.Fatalf("kiln keygen: %s", stderr)
	}
	if _, stderr := build(filepath.Join(other, "cosign.key")); strings.Contains(stderr, "already signed") {
		t.Fatalf("a new key skipped signing:\n%s", stderr)
	}
	if code, out := cosign(t, s.cenv, "verify", "--key", filepath.Join(other, "cosign.pub"), "--insecure-ignore-tlog", ref); code != 0 {
		t.Fatalf("cosign verify with the second key: exit %d\n%s", code, out)
	}
}

// changing is a registry that can be told to answer a GET of one manifest
// or one blob with other bytes than those it holds, as a compromised
// registry or a cache in the way would.
type changing struct {
	h        http.Handler
	mu       sync.Mutex
	manifest v1.Hash // a GET of this manifest (by tag or digest) is re-spaced
	blob     v1.Hash // a GET of this blob has one byte flipped
}

func (c *changing) set(manifest, blob v1.Hash) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.manifest, c.blob = manifest, blob
}

func (c *changing) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	manifest, blob := c.manifest, c.blob
	c.mu.Unlock()
	isManifest := strings.Contains(r.URL.Path, "/manifests/")
	isBlob := blob.Hex != "" && strings.HasSuffix(r.URL.Path, "/blobs/"+blob.String())
	if r.Method != http.MethodGet || !(isManifest && manifest.Hex != "" || isBlob) {
		c.h.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	switch {
	case isBlob && len(body) > 0:
		body[len(body)/2] ^= 1
	case isManifest:
		if h, _, _ := v1.SHA256(bytes.NewReader(body)); h == manifest {
			body = append(body, '\n')
		}
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Del("Content-Length")
	w.WriteHeader(rec.Code)
	w.Write(body)
}

// TestCosignAndKilnRefuseChangedContent: one signed image, changed in the
// ways that matter. Where the real cosign reads the changed bytes (a
// manifest re-pushed under the signed tag, or served changed for the tag)
// it fails, and kiln verify agrees. cosign reads neither the manifest of a
// digest it is given nor any layer, so a registry that serves other bytes
// for them passes cosign; kiln verify, which hashes the manifest, the
// config and every layer (--skip-layers: not the layers), fails.
func TestCosignAndKilnRefuseChangedContent(t *testing.T) {
	reg := &changing{h: newRegistry()}
	s := newSigning(t, reg)
	ref := s.buildSigned(t, "change/hello")
	repo, signed := repoOf(ref), digestOf(t, ref)
	img := pull(t, ref)
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	lastLayer := m.Layers[len(m.Layers)-1].Digest
	restore := func(t *testing.T) {
		reg.set(v1.Hash{}, v1.Hash{})
		push(t, repo+":latest", img)
	}

	for _, tc := range []struct {
		name string
		// change changes the registry and returns the reference to verify.
		change     func(t *testing.T) string
		cosignWant string // "" for success
		kilnWant   string // "" for success
		skipWant   string // kiln verify --skip-layers; "" for success
	}{
		{name: "untampered", change: func(t *testing.T) string { return repo + ":latest" }},
		{name: "manifest re-spaced and re-pushed under the signed tag", change: func(t *testing.T) string {
			respaced := append(append([]byte(nil), raw...), '\n')
			r, err := name.ParseReference(repo + ":latest")
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Put(r, rawImage{respaced, m.MediaType}); err != nil {
				t.Fatal(err)
			}
			return repo + ":latest"
		}, cosignWant: "no signatures found", kilnWant: "no signature (looked for", skipWant: "no signature (looked for"},
		{name: "a layer changed and re-pushed under the signed tag", change: func(t *testing.T) string {
			layers, _ := img.Layers()
			push(t, repo+":latest", replaceLayer(t, img, len(layers)-1, flipByte(t, layers[len(layers)-1])))
			return repo + ":latest"
		}, cosignWant: "no signatures found", kilnWant: "no signature (looked for", skipWant: "no signature (looked for"},
		{name: "the registry serves the signed digest's manifest re-spaced", change: func(t *testing.T) string {
			reg.set(signed, v1.Hash{})
			return repo + "@" + signed.String()
		}, kilnWant: "does not match requested digest", skipWant: "does not match requested digest"},
		{name: "the registry serves the signed tag's manifest re-spaced", change: func(t *testing.T) string {
			reg.set(signed, v1.Hash{})
			return repo + ":latest"
		}, cosignWant: "no signatures found", kilnWant: "no signature (looked for", skipWant: "no signature (looked for"},
		{name: "the registry serves a layer with a byte changed", change: func(t *testing.T) string {
			reg.set(v1.Hash{}, lastLayer)
			return repo + "@" + signed.String()
		}, kilnWant: lastLayer.String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer restore(t)
			image := tc.change(t)
			code, out := s.cosignVerify(t, image)
			if tc.cosignWant == "" && code != 0 || tc.cosignWant != "" && (code == 0 || !strings.Contains(out, tc.cosignWant)) {
				t.Errorf("cosign verify %s: exit %d, want %q (\"\": success)\n%s", image, code, tc.cosignWant, out)
			}
			for _, k := range []struct {
				flags []string
				want  string
			}{{nil, tc.kilnWant}, {[]string{"--skip-layers"}, tc.skipWant}} {
				code, stdout, stderr := s.kilnVerify(t, image, k.flags...)
				if k.want == "" && code != 0 || k.want != "" && (code != 1 || !strings.Contains(stderr, k.want)) {
					t.Errorf("kiln verify %v %s: exit %d, want %q (\"\": success)\n%s%s", k.flags, image, code, k.want, stdout, stderr)
				}
				if k.want != "" && strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
					t.Errorf("kiln verify %v: the error is not one line:\n%s", k.flags, stderr)
				}
			}
		})
	}
}

// rawImage is a manifest to PUT as it is.
type rawImage struct {
	raw []byte
	mt  types.MediaType
}

func (r rawImage) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawImage) MediaType() (types.MediaType, error) { return r.mt, nil }
