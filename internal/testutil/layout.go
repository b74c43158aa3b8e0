package testutil

import (
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	specs "github.com/opencontainers/image-spec/specs-go/v1"
)

// LayoutIndex reads the index.json of the OCI image layout at dir back
// with go-containerregistry: the index and what it lists.
func LayoutIndex(t testing.TB, dir string) (v1.ImageIndex, *v1.IndexManifest) {
	t.Helper()
	var ii v1.ImageIndex
	var im *v1.IndexManifest
	p, err := layout.FromPath(dir)
	if err == nil {
		ii, err = p.ImageIndex()
	}
	if err == nil {
		im, err = ii.IndexManifest()
	}
	if err != nil {
		t.Fatalf("reading the OCI layout at %s: %v", dir, err)
	}
	return ii, im
}

// RefNames is LayoutIndex with the index's ref names (the
// org.opencontainers.image.ref.name annotation) mapped to digests. A ref
// name that appears twice fails the test.
func RefNames(t testing.TB, dir string) (v1.ImageIndex, map[string]v1.Hash) {
	t.Helper()
	ii, im := LayoutIndex(t, dir)
	out := map[string]v1.Hash{}
	for _, d := range im.Manifests {
		n := d.Annotations[specs.AnnotationRefName]
		if _, dup := out[n]; dup {
			t.Errorf("ref name %q appears twice in %s/index.json", n, dir)
		}
		out[n] = d.Digest
	}
	return ii, out
}

// WriteLayout writes an OCI image layout at dir (created if need be) with
// imgs appended in order, and returns it. Append an index to it, or
// images with annotations, with go-containerregistry's layout.Path.
func WriteLayout(t testing.TB, dir string, imgs ...v1.Image) layout.Path {
	t.Helper()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		if err := p.AppendImage(img); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// BlobPath is the file in which the OCI image layout at dir keeps the blob
// h.
func BlobPath(dir string, h v1.Hash) string {
	return filepath.Join(dir, "blobs", h.Algorithm, h.Hex)
}

// EditFile replaces the file at path with edit of its bytes: the way a
// test tampers with a fixture on disk.
func EditFile(t testing.TB, path string, edit func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, edit(b), 0o644); err != nil {
		t.Fatal(err)
	}
}
