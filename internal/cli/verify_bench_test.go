package cli

import (
	"context"
	"crypto/rand"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kilnbuild/kiln/internal/sign"
	"github.com/kilnbuild/kiln/internal/store"
)

// BenchmarkVerify: kiln verify of a signed three-platform image in a local
// layout shaped like a kiln build of a Go service (per platform one 3 MiB
// binary layer on a shared 200 KiB base layer), reading every layer (full)
// and reading manifests and configs only (skip-layers, what verify cost
// before it checked content).
func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	lay, err := store.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	lay.DisableSyncUnsafe()
	random := func(n int) []byte {
		p := make([]byte, n)
		io.ReadFull(rand.Reader, p)
		return p
	}
	baseLayer := static.NewLayer(random(200<<10), types.OCILayer)
	var adds []mutate.IndexAddendum
	var children []v1.Hash
	for _, arch := range []string{"amd64", "arm64", "s390x"} {
		img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), baseLayer, static.NewLayer(random(3<<20), types.OCILayer))
		if err != nil {
			b.Fatal(err)
		}
		cf, _ := img.ConfigFile()
		cf.OS, cf.Architecture = "linux", arch
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			b.Fatal(err)
		}
		h, _ := img.Digest()
		children = append(children, h)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: cf.Platform()}})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	d, err := lay.Put(ctx, idx, []string{"kiln.local/app:v1"})
	if err != nil {
		b.Fatal(err)
	}
	sv, pub := testKey(b)
	signer := sign.New(sv)
	for _, h := range append(children, d.Digest) {
		if err := signer.Sign(ctx, &sign.LayoutStore{Dir: dir}, "kiln.local/app", h); err != nil {
			b.Fatal(err)
		}
	}
	env := []string{"HOME=" + b.TempDir()}
	for _, bc := range []struct {
		name  string
		flags []string
	}{{"full", nil}, {"skip-layers", []string{"--skip-layers"}}} {
		b.Run(bc.name, func(b *testing.B) {
			args := append(append([]string{"verify", "--key", pub, "--store", dir}, bc.flags...), "kiln.local/app:v1")
			for b.Loop() {
				if code, _, stderr := kiln(b, dir, env, args...); code != 0 {
					b.Fatalf("exit %d: %s", code, stderr)
				}
			}
		})
	}
}
