package registry_test

import (
	"context"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

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
