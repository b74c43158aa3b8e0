package registry_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BenchmarkLayerPush pushes an image of one new 24 MiB uncompressed layer,
// read from a file written just before (as kiln build's layer is, so its
// pages are still dirty), to an in-process registry: the edit loop's push
// with --compression none, from the first HEAD to the manifest's 201.
func BenchmarkLayerPush(b *testing.B) {
	f := newFixture(b, open())
	dir := b.TempDir()
	data := make([]byte, 24<<20)
	b.SetBytes(int64(len(data)))
	for i := range b.N {
		b.StopTimer()
		rand.NewChaCha8([32]byte{byte(i), byte(i >> 8), 1}).Read(data)
		l, err := newFileLayer(filepath.Join(dir, "layer"), data)
		if err != nil {
			b.Fatal(err)
		}
		img, err := mutate.AppendLayers(empty.Image, l)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := remote.Write(f.ref(b, "bench/push:latest"), img); err != nil {
			b.Fatal(err)
		}
	}
}

// fileLayer is an uncompressed layer read from a file, as kiln's are.
type fileLayer struct {
	path string
	h    v1.Hash
	size int64
}

func newFileLayer(path string, data []byte) (*fileLayer, error) {
	os.Remove(path)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return nil, err
	}
	s := sha256.Sum256(data)
	return &fileLayer{path: path, h: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}, size: int64(len(data))}, nil
}

func (l *fileLayer) Digest() (v1.Hash, error)             { return l.h, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)             { return l.h, nil }
func (l *fileLayer) Size() (int64, error)                 { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error)  { return types.OCIUncompressedLayer, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)   { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) { return os.Open(l.path) }
