package checked_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kilnbuild/kiln/internal/checked"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// fixture writes an index of two random images to an OCI layout and
// returns the layout with the index's descriptor.
func fixture(t *testing.T) (layout.Path, v1.Descriptor) {
	t.Helper()
	var adds []mutate.IndexAddendum
	for range 2 {
		img, err := random.Image(1024, 2)
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	p := testutil.WriteLayout(t, t.TempDir())
	if err := p.AppendIndex(idx); err != nil {
		t.Fatal(err)
	}
	d, err := partial.Descriptor(idx)
	if err != nil {
		t.Fatal(err)
	}
	return p, *d
}

func flip(b []byte) []byte { b[len(b)/2] ^= 1; return b }

// readAll reads the index, each image, its config and every layer, the way
// verify and compare do; the first error is returned.
func readAll(p layout.Path, d v1.Descriptor) error {
	idx, err := checked.Index(p, d)
	if err != nil {
		return err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, c := range im.Manifests {
		img, err := idx.Image(c.Digest)
		if err != nil {
			return err
		}
		layers, err := img.Layers()
		if err != nil {
			return err
		}
		for _, l := range layers {
			for _, open := range []func() (io.ReadCloser, error){l.Uncompressed, l.Compressed} {
				rc, err := open()
				if err != nil {
					return err
				}
				err = checked.Drain(rc)
				rc.Close()
				if err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func TestUntouchedContentReads(t *testing.T) {
	p, d := fixture(t)
	if err := readAll(p, d); err != nil {
		t.Fatal(err)
	}
	idx, err := checked.Index(p, d)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatal(err)
	}
}

// TestTamperedContentIsRefused is the table of ways to change what a
// digest names; each must be refused by name.
func TestTamperedContentIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, p layout.Path, idx *v1.IndexManifest, m *v1.Manifest)
		want   string
	}{
		{"a byte flipped in a layer", func(t *testing.T, p layout.Path, _ *v1.IndexManifest, m *v1.Manifest) {
			testutil.EditFile(t, testutil.BlobPath(string(p), m.Layers[0].Digest), flip)
		}, "its bytes hash to"},
		{"a layer one byte longer", func(t *testing.T, p layout.Path, _ *v1.IndexManifest, m *v1.Manifest) {
			testutil.EditFile(t, testutil.BlobPath(string(p), m.Layers[1].Digest), func(b []byte) []byte { return append(b, 0) })
		}, "bytes where its descriptor declares"},
		{"a layer truncated", func(t *testing.T, p layout.Path, _ *v1.IndexManifest, m *v1.Manifest) {
			testutil.EditFile(t, testutil.BlobPath(string(p), m.Layers[1].Digest), func(b []byte) []byte { return b[:len(b)-1] })
		}, "bytes where its descriptor declares"},
		{"a byte flipped in the config", func(t *testing.T, p layout.Path, _ *v1.IndexManifest, m *v1.Manifest) {
			testutil.EditFile(t, testutil.BlobPath(string(p), m.Config.Digest), flip)
		}, "config sha256:"},
		{"the manifest re-spaced", func(t *testing.T, p layout.Path, idx *v1.IndexManifest, _ *v1.Manifest) {
			testutil.EditFile(t, testutil.BlobPath(string(p), idx.Manifests[0].Digest), func(b []byte) []byte {
				var out bytes.Buffer
				json.Indent(&out, b, "", " ")
				return out.Bytes()
			})
		}, "manifest sha256:"},
		{"the manifest swapped for another", func(t *testing.T, p layout.Path, idx *v1.IndexManifest, _ *v1.Manifest) {
			other, _ := os.ReadFile(testutil.BlobPath(string(p), idx.Manifests[1].Digest))
			testutil.EditFile(t, testutil.BlobPath(string(p), idx.Manifests[0].Digest), func([]byte) []byte { return other })
		}, "its bytes hash to"},
		{"the index re-spaced", func(t *testing.T, p layout.Path, _ *v1.IndexManifest, _ *v1.Manifest) {
			h := indexDigest(t, p)
			testutil.EditFile(t, testutil.BlobPath(string(p), h), func(b []byte) []byte { return append(b, '\n') })
		}, "index sha256:"},
		{"a layer replaced by a huge sparse file", func(t *testing.T, p layout.Path, _ *v1.IndexManifest, m *v1.Manifest) {
			if err := os.Truncate(testutil.BlobPath(string(p), m.Layers[0].Digest), 1<<30); err != nil {
				t.Fatal(err)
			}
		}, "bytes where its descriptor declares"},
		{"the manifest replaced by a huge sparse file", func(t *testing.T, p layout.Path, idx *v1.IndexManifest, _ *v1.Manifest) {
			if err := os.Truncate(testutil.BlobPath(string(p), idx.Manifests[0].Digest), 1<<30); err != nil {
				t.Fatal(err)
			}
		}, "bytes where its descriptor declares"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, d := fixture(t)
			idx, err := checked.Index(p, d)
			if err != nil {
				t.Fatal(err)
			}
			im, _ := idx.IndexManifest()
			img, _ := idx.Image(im.Manifests[0].Digest)
			m, _ := img.Manifest()
			tc.tamper(t, p, im, m)
			err = readAll(p, d)
			if err == nil {
				t.Fatal("tampered content was read without an error")
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q: want one line containing %q", err, tc.want)
			}
		})
	}
}

func indexDigest(t *testing.T, p layout.Path) v1.Hash {
	t.Helper()
	_, im := testutil.LayoutIndex(t, string(p))
	return im.Manifests[0].Digest
}

func TestMismatchIsClassified(t *testing.T) {
	p, d := fixture(t)
	testutil.EditFile(t, testutil.BlobPath(string(p), d.Digest), flip)
	_, err := checked.Index(p, d)
	var me *checked.MismatchError
	if !errors.As(err, &me) || me.Want != d.Digest || me.Got.Hex == "" {
		t.Fatalf("err = %v, want a *MismatchError naming %s", err, d.Digest)
	}
}

// TestIndexChildrenAreManifests: an index whose child is a layer, or whose
// image's config is an index, is refused before anything is read from it.
func TestIndexChildrenAreManifests(t *testing.T) {
	p, d := fixture(t)
	idx, _ := checked.Index(p, d)
	im, _ := idx.IndexManifest()
	img, _ := idx.Image(im.Manifests[0].Digest)
	m, _ := img.Manifest()
	layer := m.Layers[0]
	bad := &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{layer}}
	raw, _ := json.Marshal(bad)
	h, size, _ := v1.SHA256(bytes.NewReader(raw))
	if err := p.WriteBlob(h, io.NopCloser(bytes.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	_, err := checked.Index(p, v1.Descriptor{Digest: h, Size: size, MediaType: types.OCIImageIndex})
	if err == nil || !strings.Contains(err.Error(), "not a manifest") {
		t.Fatalf("an index with a layer child: err = %v", err)
	}
	// A layer asked for as an image manifest.
	_, err = checked.Image(p, v1.Descriptor{Digest: layer.Digest, Size: layer.Size, MediaType: types.OCIManifestSchema1})
	if err == nil {
		t.Fatal("a layer was read as an image manifest")
	}
	// An index asked for as an image.
	if _, err := idx.Image(d.Digest); err == nil {
		t.Fatal("a digest that is no child was read")
	}
}

// TestHugeConfigIsNotRead: a manifest whose config declares more than
// MaxJSON is refused without reading the blob.
func TestHugeConfigIsNotRead(t *testing.T) {
	p, d := fixture(t)
	idx, _ := checked.Index(p, d)
	im, _ := idx.IndexManifest()
	img, _ := idx.Image(im.Manifests[0].Digest)
	m, _ := img.Manifest()
	m.Config.Size = 1 << 30
	raw, _ := json.Marshal(m)
	h, size, _ := v1.SHA256(bytes.NewReader(raw))
	if err := p.WriteBlob(h, io.NopCloser(bytes.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	_, err := checked.Image(p, v1.Descriptor{Digest: h, Size: size, MediaType: types.OCIManifestSchema1})
	if !errors.Is(err, checked.ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}
