package testutil

import (
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// RandomImage is random.Image: layers layers of size bytes each, failing
// the test on error.
func RandomImage(t testing.TB, size, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// RandomIndex is random.Index: count images of layers layers of size
// bytes each, failing the test on error.
func RandomIndex(t testing.TB, size, layers, count int64) v1.ImageIndex {
	t.Helper()
	idx, err := random.Index(size, layers, count)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// Digest is the digest of an image, an index or a layer, failing the test
// on error.
func Digest(t testing.TB, a interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := a.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}
