package registry_test

import (
	"context"
	"io"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kilnbuild/kiln/internal/testutil/regbench"
)

// BenchmarkSmallPush pushes 1000 blobs of 4 KiB, 8 at a time, to an
// in-process registry: the per-blob cost of upload, fsync and links.
func BenchmarkSmallPush(b *testing.B) {
	f := newFixture(b, open())
	c := regbench.NewClient(8)
	defer c.Close()
	repo, _ := name.NewRepository(f.host + "/bench/small")
	for i := 0; b.Loop(); i++ {
		blobs, err := regbench.Workload{Count: 1000, Size: 4096}.Blobs(uint64(i + 1))
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Push(context.Background(), repo, blobs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSmallPull pulls 1000 blobs of 4 KiB, 8 at a time, just pushed
// (so held by the journal) from an in-process registry.
func BenchmarkSmallPull(b *testing.B) {
	f := newFixture(b, open())
	c := regbench.NewClient(8)
	defer c.Close()
	repo, _ := name.NewRepository(f.host + "/bench/small")
	blobs, err := regbench.Workload{Count: 1000, Size: 4096}.Blobs(1)
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Push(context.Background(), repo, blobs); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := c.Pull(context.Background(), repo, blobs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBlobGet pulls one blob, held as a file in the store, over
// loopback with keep-alive: by size, the cost of the path from the file to
// the connection (sendfile, or reads and writes through a buffer).
func BenchmarkBlobGet(b *testing.B) {
	for _, size := range []int{4 << 10, 32 << 10, 64 << 10, 256 << 10, 768 << 10, 4 << 20} {
		b.Run(strconv.Itoa(size>>10)+"KiB", func(b *testing.B) {
			f := newFixture(b, open())
			data := make([]byte, size)
			rand.NewChaCha8([32]byte{byte(size)}).Read(data)
			layer := static.NewLayer(data, types.OCILayer)
			img, err := mutate.AppendLayers(empty.Image, layer)
			if err != nil {
				b.Fatal(err)
			}
			// A manifest needs its layers as files: none stays in the journal.
			if err := remote.Write(f.ref(b, "bench/get:x"), img); err != nil {
				b.Fatal(err)
			}
			url := f.srv.URL + "/v2/bench/get/blobs/" + digestOf(data)
			client := f.srv.Client()
			buf := make([]byte, 256<<10)
			b.SetBytes(int64(size))
			for b.Loop() {
				resp, err := client.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.CopyBuffer(io.Discard, resp.Body, buf)
				resp.Body.Close()
				if err != nil || n != int64(size) {
					b.Fatalf("read %d of %d: %v", n, size, err)
				}
			}
		})
	}
}
