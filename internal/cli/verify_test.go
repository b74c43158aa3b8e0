package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	specs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/kilnbuild/kiln/internal/keys"
	"github.com/kilnbuild/kiln/internal/sign"
	"github.com/kilnbuild/kiln/internal/store"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// signedLayout is a layout with signed images in it, tagged PREFIX+name:
// app:v1 (an image), other:v1 (another image, unsigned), multi:v1 (an
// index of three platforms), badindex:v1 (an index whose child is a
// layer) and hugecfg:v1 (an image whose config declares 1 GiB; its blob
// is not written). Each is signed by the key at pub.
type signedLayout struct {
	dir, pub string
	digest   map[string]v1.Hash // by name: the tagged manifest
	manifest map[string]*v1.Manifest
	hugeCfg  v1.Hash
}

// testKey makes a key pair (scrypt is slow: once per test).
func testKey(t testing.TB) (signature.SignerVerifier, string) {
	t.Helper()
	priv, pub, err := keys.WriteFiles(t.TempDir(), []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	sv, err := keys.LoadSigner(priv, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	return sv, pub
}

func newSignedLayout(t *testing.T, sv signature.SignerVerifier, pub, prefix string) *signedLayout {
	t.Helper()
	ctx := context.Background()
	s := &signedLayout{dir: t.TempDir(), pub: pub, digest: map[string]v1.Hash{}, manifest: map[string]*v1.Manifest{}}
	lay, err := store.Open(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	lay.DisableSyncUnsafe()
	st := &sign.LayoutStore{Dir: s.dir}
	signer := sign.New(sv)
	put := func(name string, a store.Artifact, signed ...v1.Hash) {
		var d v1.Descriptor
		var err error
		if raw, ok := a.(rawDoc); ok {
			d, err = raw.put(s.dir, prefix+name+":v1")
		} else {
			d, err = lay.Put(ctx, a, []string{prefix + name + ":v1"})
		}
		if err != nil {
			t.Fatal(err)
		}
		s.digest[name] = d.Digest
		if img, ok := a.(v1.Image); ok {
			s.manifest[name], _ = img.Manifest()
		}
		for _, h := range append(signed, d.Digest) {
			if name != "other" {
				if err := signer.Sign(ctx, st, prefix+name, h); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	randomImage := func() v1.Image {
		img, err := random.Image(4096, 2)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	app := randomImage()
	put("app", app)
	put("other", randomImage())

	var adds []mutate.IndexAddendum
	var children []v1.Hash
	for _, arch := range []string{"amd64", "arm64", "s390x"} {
		img := randomImage()
		h, _ := img.Digest()
		children = append(children, h)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	put("multi", mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...), children...)

	// The raw documents below are what an attacker would write: no ggcr
	// type would make them.
	layer := s.manifest["app"].Layers[0]
	put("badindex", rawArtifact(t, types.OCIImageIndex, &v1.IndexManifest{
		SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{layer},
	}))
	huge := *s.manifest["app"]
	s.hugeCfg, _, _ = v1.SHA256(strings.NewReader("a config of a gibibyte"))
	huge.Config = v1.Descriptor{MediaType: types.OCIConfigJSON, Size: 1 << 30, Digest: s.hugeCfg}
	put("hugecfg", rawArtifact(t, types.OCIManifestSchema1, &huge))
	return s
}

// rawArtifact is a manifest or index whose children the layout has.
type rawDoc struct {
	raw []byte
	mt  types.MediaType
}

func rawArtifact(t *testing.T, mt types.MediaType, doc any) store.Artifact {
	t.Helper()
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return rawDoc{raw, mt}
}

func (r rawDoc) Digest() (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(r.raw))
	return h, err
}
func (r rawDoc) MediaType() (types.MediaType, error) { return r.mt, nil }
func (r rawDoc) Size() (int64, error)                { return int64(len(r.raw)), nil }
func (r rawDoc) RawManifest() ([]byte, error)        { return r.raw, nil }

// put writes the document as a blob of the layout at dir and tags it.
func (r rawDoc) put(dir, refName string) (v1.Descriptor, error) {
	h, _ := r.Digest()
	p := layout.Path(dir)
	if err := p.WriteBlob(h, io.NopCloser(bytes.NewReader(r.raw))); err != nil {
		return v1.Descriptor{}, err
	}
	d := v1.Descriptor{MediaType: r.mt, Size: int64(len(r.raw)), Digest: h,
		Annotations: map[string]string{specs.AnnotationRefName: refName}}
	return d, p.AppendDescriptor(d)
}

// copy gives a test its own copy of the layout.
func (s *signedLayout) copy(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.Walk(s.dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.dir, path)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func flipMiddle(b []byte) []byte { b[len(b)/2] ^= 0x20; return b }

// TestVerifyChecksContent: kiln verify of an oci: layout and of the local
// store reads the manifest, the config and every layer it verifies, and a
// blob whose bytes are not those of its digest fails it, in one line that
// names the blob and both digests. Before, each tampered case exited 0.
func TestVerifyChecksContent(t *testing.T) {
	type fixture = signedLayout
	tests := []struct {
		name   string
		image  string // the name verified; app unless set
		flags  []string
		tamper func(t *testing.T, s *fixture, dir string)
		want   []string // in the one line on stderr; none: exit 0
		stdout string   // in stdout on success
	}{
		{name: "untampered", stdout: "2 layers"},
		{name: "untampered index", image: "multi", stdout: "4 manifests and their configs and 6 layers"},
		{name: "layer byte flipped", tamper: func(t *testing.T, s *fixture, dir string) {
			testutil.EditFile(t, testutil.BlobPath(dir, s.manifest["app"].Layers[1].Digest), flipMiddle)
		}, want: []string{"layer sha256:", "its bytes hash to sha256:"}},
		{name: "config byte flipped", tamper: func(t *testing.T, s *fixture, dir string) {
			testutil.EditFile(t, testutil.BlobPath(dir, s.manifest["app"].Config.Digest), flipMiddle)
		}, want: []string{"config sha256:", "its bytes hash to sha256:"}},
		{name: "manifest re-spaced", tamper: func(t *testing.T, s *fixture, dir string) {
			testutil.EditFile(t, testutil.BlobPath(dir, s.digest["app"]), func(b []byte) []byte {
				var out bytes.Buffer
				json.Indent(&out, b, "", "  ")
				return out.Bytes()
			})
		}, want: []string{"manifest sha256:", "bytes where its descriptor declares"}},
		{name: "manifest swapped for another binary's", tamper: func(t *testing.T, s *fixture, dir string) {
			other, err := os.ReadFile(testutil.BlobPath(dir, s.digest["other"]))
			if err != nil {
				t.Fatal(err)
			}
			testutil.EditFile(t, testutil.BlobPath(dir, s.digest["app"]), func([]byte) []byte { return other })
		}, want: []string{"manifest sha256:", "hash to sha256:"}},
		{name: "gzip layer truncated", tamper: func(t *testing.T, s *fixture, dir string) {
			testutil.EditFile(t, testutil.BlobPath(dir, s.manifest["app"].Layers[0].Digest), func(b []byte) []byte { return b[:len(b)/2] })
		}, want: []string{"layer sha256:", "bytes where its descriptor declares"}},
		{name: "index: a platform's layer byte flipped", image: "multi", tamper: func(t *testing.T, s *fixture, dir string) {
			idx, _ := os.ReadFile(testutil.BlobPath(dir, s.digest["multi"]))
			im, _ := v1.ParseIndexManifest(bytes.NewReader(idx))
			raw, _ := os.ReadFile(testutil.BlobPath(dir, im.Manifests[2].Digest))
			m, _ := v1.ParseManifest(bytes.NewReader(raw))
			testutil.EditFile(t, testutil.BlobPath(dir, m.Layers[0].Digest), flipMiddle)
		}, want: []string{"layer sha256:", "its bytes hash to sha256:"}},
		{name: "index: a platform's manifest re-spaced", image: "multi", tamper: func(t *testing.T, s *fixture, dir string) {
			idx, _ := os.ReadFile(testutil.BlobPath(dir, s.digest["multi"]))
			im, _ := v1.ParseIndexManifest(bytes.NewReader(idx))
			testutil.EditFile(t, testutil.BlobPath(dir, im.Manifests[1].Digest), func(b []byte) []byte { return append(b, '\n') })
		}, want: []string{"manifest sha256:", "bytes where its descriptor declares"}},
		{name: "index whose child is a layer", image: "badindex", want: []string{"is a", "not a manifest"}},
		{name: "config of a sparse gibibyte", image: "hugecfg", tamper: func(t *testing.T, s *fixture, dir string) {
			f, err := os.Create(testutil.BlobPath(dir, s.hugeCfg))
			if err != nil {
				t.Fatal(err)
			}
			f.Truncate(1 << 30)
			f.Close()
		}, want: []string{"config sha256:", "1073741824 bytes", "larger than the budget"}},
		{name: "index.json of a sparse gibibyte", tamper: func(t *testing.T, s *fixture, dir string) {
			if err := os.Truncate(filepath.Join(dir, "index.json"), 1<<30); err != nil {
				t.Fatal(err)
			}
		}, want: []string{"index.json", "larger than the budget"}},
		{name: "--skip-layers passes a layer-tampered image and says so", flags: []string{"--skip-layers"}, tamper: func(t *testing.T, s *fixture, dir string) {
			testutil.EditFile(t, testutil.BlobPath(dir, s.manifest["app"].Layers[1].Digest), flipMiddle)
		}, stdout: "KiB) skipped (--skip-layers): their bytes were not checked against their digests"},
		{name: "--skip-layers still checks the config", flags: []string{"--skip-layers"}, tamper: func(t *testing.T, s *fixture, dir string) {
			testutil.EditFile(t, testutil.BlobPath(dir, s.manifest["app"].Config.Digest), flipMiddle)
		}, want: []string{"config sha256:", "its bytes hash to sha256:"}},
	}
	sv, pub := testKey(t)
	for _, form := range []struct {
		name, prefix string
		ref          func(dir, image string) []string // verify's arguments
	}{
		{"oci layout", "", func(dir, image string) []string { return []string{"oci:" + dir + ":" + image + ":v1"} }},
		{"local store", "kiln.local/", func(dir, image string) []string {
			return []string{"--store", dir, "kiln.local/" + image + ":v1"}
		}},
	} {
		t.Run(form.name, func(t *testing.T) {
			s := newSignedLayout(t, sv, pub, form.prefix)
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					dir := s.copy(t)
					if tc.tamper != nil {
						tc.tamper(t, s, dir)
					}
					image := tc.image
					if image == "" {
						image = "app"
					}
					args := append(append([]string{"verify", "--key", s.pub}, tc.flags...), form.ref(dir, image)...)
					code, stdout, stderr := kiln(t, t.TempDir(), testEnv(t), args...)
					if len(tc.want) == 0 {
						if code != 0 {
							t.Fatalf("exit %d, want 0\n%s", code, stderr)
						}
						if !strings.Contains(stdout, tc.stdout) || !strings.Contains(stdout, "signature: ") {
							t.Errorf("stdout lacks %q and a signature line:\n%s", tc.stdout, stdout)
						}
						return
					}
					if code != 1 {
						t.Fatalf("exit %d, want 1 (stdout %q, stderr %q)", code, stdout, stderr)
					}
					line := strings.TrimSuffix(stderr, "\n")
					if strings.Contains(line, "\n") || !strings.HasPrefix(line, "kiln: ") {
						t.Errorf("stderr is not one kiln: line:\n%s", stderr)
					}
					for _, w := range tc.want {
						if !strings.Contains(line, w) {
							t.Errorf("stderr %q lacks %q", line, w)
						}
					}
					if strings.Contains(stdout, "signature: ") {
						t.Errorf("a signature was reported good for tampered content:\n%s", stdout)
					}
				})
			}
		})
	}
}

// TestVerifyLayoutPathWithColon: IMAGE follows internal/imageref's grammar,
// so an oci: layout whose directory holds ':' is found (the old split at
// the first ':' looked for a directory named by the part before it).
func TestVerifyLayoutPathWithColon(t *testing.T) {
	sv, pub := testKey(t)
	s := newSignedLayout(t, sv, pub, "")
	dir := filepath.Join(t.TempDir(), "lay:out")
	if err := os.Rename(s.copy(t), dir); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := kiln(t, t.TempDir(), testEnv(t), "verify", "--key", s.pub, "oci:"+dir+":app:v1")
	if code != 0 || !strings.Contains(stdout, "signature: ") {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
}
