package checked_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/checked"
	"github.com/kilnbuild/kiln/internal/testutil"
)

func TestWalk(t *testing.T) {
	ctx := context.Background()
	p, d := fixture(t)
	idx, err := checked.Index(p, d)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := checked.Walk(ctx, idx, checked.WalkOptions{Jobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Manifests != 3 || rep.Layers != 4 || rep.Bytes == 0 || rep.Skipped != 0 {
		t.Errorf("full walk: %+v, want 3 manifests and 4 layers read", rep)
	}
	skip, err := checked.Walk(ctx, idx, checked.WalkOptions{SkipLayers: true})
	if err != nil {
		t.Fatal(err)
	}
	if skip.Manifests != 3 || skip.Layers != 0 || skip.Skipped != 4 || skip.SkipBytes != rep.Bytes {
		t.Errorf("walk skipping layers: %+v, want 4 layers of %d bytes skipped", skip, rep.Bytes)
	}

	im, _ := idx.IndexManifest()
	img, _ := idx.Image(im.Manifests[1].Digest)
	m, _ := img.Manifest()
	testutil.EditFile(t, testutil.BlobPath(string(p), m.Layers[1].Digest), flip)
	_, err = checked.Walk(ctx, idx, checked.WalkOptions{Jobs: 2})
	var me *checked.MismatchError
	if !errors.As(err, &me) || me.Want != m.Layers[1].Digest {
		t.Fatalf("walk of a changed layer: %v, want a *MismatchError naming %s", err, m.Layers[1].Digest)
	}
	if _, err := checked.Walk(ctx, idx, checked.WalkOptions{SkipLayers: true}); err != nil {
		t.Errorf("a walk skipping layers read one: %v", err)
	}
	// A platform's config changed is found with or without layers.
	testutil.EditFile(t, testutil.BlobPath(string(p), m.Config.Digest), flip)
	if _, err := checked.Walk(ctx, idx, checked.WalkOptions{SkipLayers: true}); !errors.As(err, &me) || me.Want != m.Config.Digest {
		t.Errorf("walk of a changed config: %v", err)
	}
}

func TestReadLayerRefusesWhatItCannotCheck(t *testing.T) {
	p, d := fixture(t)
	idx, _ := checked.Index(p, d)
	im, _ := idx.IndexManifest()
	img, _ := idx.Image(im.Manifests[0].Digest)
	layers, _ := img.Layers()
	if _, err := checked.ReadLayer(layers[0], 10); !errors.Is(err, checked.ErrTooLarge) {
		t.Errorf("a layer larger than the limit: %v, want ErrTooLarge", err)
	}
	b, err := checked.ReadLayer(layers[0], 1<<20)
	if size, _ := layers[0].Size(); err != nil || int64(len(b)) != size {
		t.Errorf("ReadLayer = %d bytes, %v; want %d", len(b), err, size)
	}
}

func TestLayoutIndexIsBounded(t *testing.T) {
	p, _ := fixture(t)
	if im, err := checked.LayoutIndex(string(p)); err != nil || len(im.Manifests) != 1 {
		t.Fatalf("LayoutIndex = %v, %v", im, err)
	}
	if err := os.Truncate(filepath.Join(string(p), "index.json"), 1<<30); err != nil {
		t.Fatal(err)
	}
	_, err := checked.LayoutIndex(string(p))
	if !errors.Is(err, checked.ErrTooLarge) || !strings.Contains(err.Error(), "index.json") {
		t.Errorf("a sparse gibibyte index.json: %v, want ErrTooLarge naming index.json", err)
	}
	if _, err := checked.LayoutIndex(t.TempDir()); !os.IsNotExist(err) {
		t.Errorf("no index.json: %v, want a not-exist error", err)
	}
}
