package image_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	kbase "github.com/kilnbuild/kiln/internal/base"
	"github.com/kilnbuild/kiln/internal/image"
	"github.com/kilnbuild/kiln/internal/testutil"
)

var created = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// base is a random two-layer image (Docker media types) with cfg's config.
func base(t testing.TB, c v1.Config) v1.Image {
	t.Helper()
	img, err := random.Image(256, 2)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config = c
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Author, cf.Container, cf.DockerVersion = "someone", "abc123", "24.0"
	cf.Created = v1.Time{Time: time.Unix(1, 0)}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func addedLayers(t testing.TB) []image.Layer {
	t.Helper()
	var out []image.Layer
	for i, comment := range []string{"kodata", "binary"} {
		l, err := random.Layer(128, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, image.Layer{Layer: l, CreatedBy: "kiln build example.com/cmd/server", Comment: fmt.Sprintf("%d %s", i, comment)})
	}
	return out
}

func assemble(t testing.TB, b v1.Image, layers []image.Layer, cfg image.Config) (v1.Image, *v1.ConfigFile, *v1.Manifest) {
	t.Helper()
	img, err := image.Assemble(b, layers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("validate.Image: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return img, cf, m
}

func TestAssembleEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		baseEnv []string
		userEnv []string
		want    []string
	}{
		{"base without PATH", nil, nil,
			[]string{"PATH=/ko-app", "KO_DATA_PATH=/var/run/ko"}},
		{"base PATH gets /ko-app appended", []string{"PATH=/usr/bin:/bin", "HOME=/root"}, nil,
			[]string{"PATH=/usr/bin:/bin:/ko-app", "HOME=/root", "KO_DATA_PATH=/var/run/ko"}},
		{"/ko-app already on PATH is not added twice", []string{"PATH=/ko-app:/bin"}, nil,
			[]string{"PATH=/ko-app:/bin", "KO_DATA_PATH=/var/run/ko"}},
		{"/ko-app/sub is not /ko-app", []string{"PATH=/ko-app/sub"}, nil,
			[]string{"PATH=/ko-app/sub:/ko-app", "KO_DATA_PATH=/var/run/ko"}},
		{"empty PATH", []string{"PATH="}, nil,
			[]string{"PATH=/ko-app", "KO_DATA_PATH=/var/run/ko"}},
		{"duplicate base keys collapse to the first place", []string{"PATH=/a", "X=1", "PATH=/b"}, nil,
			[]string{"PATH=/a:/ko-app", "X=1", "KO_DATA_PATH=/var/run/ko"}},
		{"user env overrides the same key in place", []string{"PATH=/bin", "LANG=C", "KO_DATA_PATH=/old"}, []string{"LANG=C.UTF-8", "NEW=1", "KO_DATA_PATH=/data"},
			[]string{"PATH=/bin:/ko-app", "LANG=C.UTF-8", "KO_DATA_PATH=/data", "NEW=1"}},
		{"user PATH wins over the computed one", []string{"PATH=/bin"}, []string{"PATH=/custom"},
			[]string{"PATH=/custom", "KO_DATA_PATH=/var/run/ko"}},
		{"value with =", nil, []string{"OPTS=a=b=c"},
			[]string{"PATH=/ko-app", "KO_DATA_PATH=/var/run/ko", "OPTS=a=b=c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := base(t, v1.Config{Env: tc.baseEnv})
			_, cf, _ := assemble(t, b, nil, image.Config{Name: "server", Env: tc.userEnv, Created: created, Platform: v1.Platform{OS: "linux", Architecture: "amd64"}})
			if !slices.Equal(cf.Config.Env, tc.want) {
				t.Errorf("Env = %q, want %q", cf.Config.Env, tc.want)
			}
			// The base is not changed underneath.
			bcf, _ := b.ConfigFile()
			if !slices.Equal(bcf.Config.Env, tc.baseEnv) {
				t.Errorf("base Env changed to %q", bcf.Config.Env)
			}
		})
	}
}

func TestAssembleConfig(t *testing.T) {
	baseCfg := v1.Config{
		Env:        []string{"PATH=/usr/bin"},
		Labels:     map[string]string{"a": "1", "b": "2"},
		User:       "65532",
		WorkingDir: "/home/nonroot",
		Cmd:        []string{"/bin/sh"},
		Entrypoint: []string{"/bin/entry"},
	}
	for _, tc := range []struct {
		name   string
		cfg    image.Config
		user   string
		wd     string
		labels map[string]string
		cmd    []string
	}{
		{
			name:   "base kept",
			cfg:    image.Config{Name: "server"},
			user:   "65532",
			wd:     "/home/nonroot",
			labels: map[string]string{"a": "1", "b": "2"},
			cmd:    nil,
		},
		{
			name:   "overridden",
			cfg:    image.Config{Name: "server", User: "0:0", Workdir: "/srv", Labels: map[string]string{"b": "3", "c": "4"}, Args: []string{"--port", "8080"}},
			user:   "0:0",
			wd:     "/srv",
			labels: map[string]string{"a": "1", "b": "3", "c": "4"},
			cmd:    []string{"--port", "8080"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := base(t, baseCfg)
			tc.cfg.Created = created
			tc.cfg.Platform = v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7", OSVersion: "6.1", OSFeatures: []string{"f1"}}
			_, cf, _ := assemble(t, b, addedLayers(t), tc.cfg)
			c := cf.Config
			if !slices.Equal(c.Entrypoint, []string{"/ko-app/server"}) {
				t.Errorf("Entrypoint = %q", c.Entrypoint)
			}
			if !slices.Equal(c.Cmd, tc.cmd) || (tc.cmd == nil && c.Cmd != nil) {
				t.Errorf("Cmd = %q, want %q", c.Cmd, tc.cmd)
			}
			if c.User != tc.user || c.WorkingDir != tc.wd {
				t.Errorf("User, WorkingDir = %q, %q; want %q, %q", c.User, c.WorkingDir, tc.user, tc.wd)
			}
			if !maps.Equal(c.Labels, tc.labels) {
				t.Errorf("Labels = %v, want %v", c.Labels, tc.labels)
			}
			if !cf.Created.Time.Equal(created) {
				t.Errorf("Created = %s, want %s", cf.Created.Time, created)
			}
			if cf.OS != "linux" || cf.Architecture != "arm" || cf.Variant != "v7" || cf.OSVersion != "6.1" || !slices.Equal(cf.OSFeatures, []string{"f1"}) {
				t.Errorf("platform = %s/%s/%s %s %v", cf.OS, cf.Architecture, cf.Variant, cf.OSVersion, cf.OSFeatures)
			}
			if cf.Author != "" || cf.Container != "" || cf.DockerVersion != "" {
				t.Errorf("base provenance kept: author %q container %q docker %q", cf.Author, cf.Container, cf.DockerVersion)
			}
			bcf, _ := b.ConfigFile()
			if !maps.Equal(bcf.Config.Labels, map[string]string{"a": "1", "b": "2"}) {
				t.Errorf("base labels changed to %v", bcf.Config.Labels)
			}
		})
	}
}

func TestAssembleLayersAndHistory(t *testing.T) {
	b := base(t, v1.Config{})
	added := addedLayers(t)
	annotations := map[string]string{image.AnnotationBaseName: "example.com/base:latest", image.AnnotationRevision: "abc"}
	img, cf, m := assemble(t, b, added, image.Config{Name: "server", Annotations: annotations, Created: created, Platform: v1.Platform{OS: "linux", Architecture: "amd64"}})

	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("media types = %s, config %s; want OCI", m.MediaType, m.Config.MediaType)
	}
	if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
		t.Errorf("MediaType() = %s", mt)
	}
	if !maps.Equal(m.Annotations, annotations) {
		t.Errorf("manifest annotations = %v, want %v", m.Annotations, annotations)
	}

	baseLayers, _ := b.Layers()
	bcf, _ := b.ConfigFile()
	if len(m.Layers) != 4 || len(cf.RootFS.DiffIDs) != 4 {
		t.Fatalf("%d manifest layers, %d diffIDs; want 4", len(m.Layers), len(cf.RootFS.DiffIDs))
	}
	// Base layers keep their bytes but are listed under OCI media types.
	for i, l := range baseLayers {
		d, _ := l.Digest()
		if m.Layers[i].Digest != d || m.Layers[i].MediaType != types.OCILayer {
			t.Errorf("layer %d = %s %s, want %s %s", i, m.Layers[i].MediaType, m.Layers[i].Digest, types.OCILayer, d)
		}
		if cf.RootFS.DiffIDs[i] != bcf.RootFS.DiffIDs[i] {
			t.Errorf("diffID %d = %s, want the base's %s", i, cf.RootFS.DiffIDs[i], bcf.RootFS.DiffIDs[i])
		}
	}
	for i, a := range added {
		d, _ := a.Layer.Digest()
		diffID, _ := a.Layer.DiffID()
		if m.Layers[2+i].Digest != d || m.Layers[2+i].MediaType != types.OCILayer || cf.RootFS.DiffIDs[2+i] != diffID {
			t.Errorf("added layer %d = %+v / %s", i, m.Layers[2+i], cf.RootFS.DiffIDs[2+i])
		}
	}

	if len(cf.History) != len(bcf.History)+2 {
		t.Fatalf("%d history entries, want %d", len(cf.History), len(bcf.History)+2)
	}
	if !slices.Equal(cf.History[:2], bcf.History) {
		t.Errorf("base history changed: %+v", cf.History[:2])
	}
	for i, h := range cf.History[2:] {
		want := v1.History{Created: v1.Time{Time: created}, CreatedBy: "kiln build example.com/cmd/server", Comment: added[i].Comment}
		if !h.Created.Time.Equal(created) || h.CreatedBy != want.CreatedBy || h.Comment != want.Comment || h.EmptyLayer || h.Author != "" {
			t.Errorf("history %d = %+v, want %+v", 2+i, h, want)
		}
	}

	// Same inputs, same digest.
	again, _, _ := assemble(t, b, added, image.Config{Name: "server", Annotations: annotations, Created: created, Platform: v1.Platform{OS: "linux", Architecture: "amd64"}})
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("two assemblies: %s and %s", d1, d2)
	}
}

func TestAssembleNoAnnotations(t *testing.T) {
	_, _, m := assemble(t, base(t, v1.Config{}), nil, image.Config{Name: "x", Created: created})
	if m.Annotations != nil {
		t.Errorf("annotations = %v, want none", m.Annotations)
	}
}

// An OCI base is used as it is; a base from a registry keeps layers that can
// be mounted across repositories.
func TestAssembleRemoteBase(t *testing.T) {
	host := testutil.Registry(t)
	ref, err := name.ParseReference(host + "/base:latest")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, base(t, v1.Config{})); err != nil {
		t.Fatal(err)
	}
	rb, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, _, m := assemble(t, rb, addedLayers(t), image.Config{Name: "server", Created: created})
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, ok := layers[i].(*remote.MountableLayer); !ok {
			t.Errorf("base layer %d is %T, want *remote.MountableLayer", i, layers[i])
		}
		if m.Layers[i].MediaType != types.OCILayer {
			t.Errorf("base layer %d media type %s", i, m.Layers[i].MediaType)
		}
	}
	// Push it next to the base: it is valid where it lands.
	dst, _ := name.ParseReference(host + "/app:latest")
	if err := remote.Write(dst, img); err != nil {
		t.Fatal(err)
	}
	back, err := remote.Image(dst)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(back); err != nil {
		t.Errorf("validate.Image(pushed): %v", err)
	}
}

func TestIndex(t *testing.T) {
	plats := []v1.Platform{
		{OS: "linux", Architecture: "amd64"},
		{OS: "linux", Architecture: "arm64", Variant: "v8"},
	}
	var images []image.Platformed
	for _, p := range plats {
		img, err := image.Assemble(base(t, v1.Config{}), addedLayers(t), image.Config{Name: "server", Created: created, Platform: p})
		if err != nil {
			t.Fatal(err)
		}
		images = append(images, image.Platformed{Image: img, Platform: p})
	}
	for _, tc := range []struct {
		name        string
		annotations map[string]string
	}{
		{"annotated", map[string]string{image.AnnotationSource: "https://example.com/repo"}},
		{"plain", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idx := image.Index(images, tc.annotations)
			if err := validate.Index(idx); err != nil {
				t.Fatalf("validate.Index: %v", err)
			}
			if mt, _ := idx.MediaType(); mt != types.OCIImageIndex {
				t.Errorf("MediaType() = %s", mt)
			}
			im, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			if im.MediaType != types.OCIImageIndex || im.SchemaVersion != 2 {
				t.Errorf("index manifest = %s v%d", im.MediaType, im.SchemaVersion)
			}
			if !maps.Equal(im.Annotations, tc.annotations) || (tc.annotations == nil && im.Annotations != nil) {
				t.Errorf("annotations = %v, want %v", im.Annotations, tc.annotations)
			}
			if len(im.Manifests) != len(images) {
				t.Fatalf("%d manifests, want %d", len(im.Manifests), len(images))
			}
			for i, d := range im.Manifests {
				want, _ := images[i].Image.Digest()
				raw, _ := images[i].Image.RawManifest()
				if d.Digest != want || d.Size != int64(len(raw)) || d.MediaType != types.OCIManifestSchema1 {
					t.Errorf("manifest %d = %s %s %d, want %s %d", i, d.MediaType, d.Digest, d.Size, want, len(raw))
				}
				if d.Platform == nil || !d.Platform.Equals(plats[i]) {
					t.Errorf("manifest %d platform = %v, want %v", i, d.Platform, plats[i])
				}
			}
		})
	}
}

// TestScratchRunsAsNonroot: kiln's scratch base runs as 65532:65532 (a
// numeric user needs no /etc/passwd), and a config user wins over it.
func TestScratchRunsAsNonroot(t *testing.T) {
	b, err := kbase.Resolve(context.Background(), kbase.ScratchName, kbase.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := v1.Platform{OS: "linux", Architecture: "amd64"}
	scratch, err := b.Image(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ user, want string }{
		{"", "65532:65532"},
		{"0:0", "0:0"},
		{"1000", "1000"},
	} {
		_, cf, _ := assemble(t, scratch, addedLayers(t), image.Config{Name: "server", User: tc.user, Created: created, Platform: p})
		if cf.Config.User != tc.want {
			t.Errorf("config user %q: image User = %q, want %q", tc.user, cf.Config.User, tc.want)
		}
	}
}
