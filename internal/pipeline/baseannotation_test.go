package pipeline

import (
	"context"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/image"
	"github.com/kilnbuild/kiln/internal/layer"
	"github.com/kilnbuild/kiln/internal/platform"
	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// TestBaseDigestAnnotation: from an index base, each image names the
// platform image it was built on as its base digest, and the index of a
// multi-platform build names the base index, as ko v0.19.1 does; from a
// single-image base, the image names that image. An annotation the config
// sets wins.
func TestBaseDigestAnnotation(t *testing.T) {
	bases := map[string]v1.Image{"amd64": platformImage(t, amd64), "arm64": platformImage(t, arm64)}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range []v1.Platform{amd64, arm64} {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: bases[p.Architecture], Descriptor: v1.Descriptor{Platform: &p}})
	}
	indexDir, imageDir := t.TempDir(), t.TempDir()
	for dir, add := range map[string]func(layout.Path) error{
		indexDir: func(l layout.Path) error { return l.AppendIndex(idx) },
		imageDir: func(l layout.Path) error { return l.AppendImage(bases["amd64"]) },
	} {
		lay, err := layout.Write(dir, empty.Index)
		if err != nil {
			t.Fatal(err)
		}
		if err := add(lay); err != nil {
			t.Fatal(err)
		}
	}
	digest := func(a interface{ Digest() (v1.Hash, error) }) string { return testutil.Digest(t, a).String() }
	for _, tc := range []struct {
		name      string
		base      string
		plats     []v1.Platform
		configSet string            // the config's own base digest annotation
		wantIndex string            // the built index's, "" for a single image
		wantImage map[string]string // by platform
	}{
		{name: "index base, one platform", base: "oci:" + indexDir, plats: []v1.Platform{arm64},
			wantImage: map[string]string{"linux/arm64": digest(bases["arm64"])}},
		{name: "index base, two platforms", base: "oci:" + indexDir, plats: []v1.Platform{amd64, arm64}, wantIndex: digest(idx),
			wantImage: map[string]string{"linux/amd64": digest(bases["amd64"]), "linux/arm64": digest(bases["arm64"])}},
		{name: "image base", base: "oci:" + imageDir, plats: []v1.Platform{amd64},
			wantImage: map[string]string{"linux/amd64": digest(bases["amd64"])}},
		{name: "config's annotation wins", base: "oci:" + indexDir, plats: []v1.Platform{arm64}, configSet: "sha256:set",
			wantImage: map[string]string{"linux/arm64": "sha256:set"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			testutil.WriteFiles(t, dir, map[string]string{"go.mod": "module example.com/big\n\ngo 1.22\n", "cmd/big/.keep": ""})
			cfg := &config.Config{DefaultBaseImage: tc.base}
			if tc.configSet != "" {
				cfg.Kiln.Defaults.Annotations = map[string]string{image.AnnotationBaseDigest: tc.configSet}
			}
			res, err := Run(context.Background(), Options{
				Dir: dir, Config: cfg,
				Builder:   &gobuild.Builder{Runner: newFakeGo(t, dir, 1<<10)},
				Naming:    Naming{Repo: LocalRepo},
				Publisher: &publish.ToLayout{Dir: t.TempDir()},
				Compress:  &layer.Compression{Algorithm: layer.None}, // the layers are not what is tested
				Platforms: platform.Spec{Platforms: tc.plats},
			}, []string{"./cmd/big"})
			if err != nil {
				t.Fatal(err)
			}
			images := map[string]v1.Image{}
			switch a := res[0].Artifact.(type) {
			case v1.ImageIndex:
				m, err := a.IndexManifest()
				if err != nil {
					t.Fatal(err)
				}
				if got := m.Annotations[image.AnnotationBaseDigest]; got != tc.wantIndex {
					t.Errorf("index base digest %q, want %q", got, tc.wantIndex)
				}
				for _, d := range m.Manifests {
					images[platform.String(*d.Platform)] = must(a.Image(d.Digest))
				}
			case v1.Image:
				if tc.wantIndex != "" {
					t.Fatal("built an image, want an index")
				}
				images[platform.String(tc.plats[0])] = a
			}
			for p, want := range tc.wantImage {
				m, err := images[p].Manifest()
				if err != nil {
					t.Fatal(err)
				}
				if got := m.Annotations[image.AnnotationBaseDigest]; got != want {
					t.Errorf("%s: base digest %q, want %q", p, got, want)
				}
			}
		})
	}
}
