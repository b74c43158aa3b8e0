package testutil

import (
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	specs "github.com/opencontainers/image-spec/specs-go/v1"
)

// RefNames reads an OCI image layout's index.json back with
// go-containerregistry and returns the index with its ref names (the
// org.opencontainers.image.ref.name annotation) mapped to digests. A
// ref name that appears twice fails the test.
func RefNames(t testing.TB, dir string) (v1.ImageIndex, map[string]v1.Hash) {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	ii, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
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
