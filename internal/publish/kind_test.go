package publish_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// platformIndex is an index of two random images, linux/arm64 first.
func platformIndex(t *testing.T) (idx v1.ImageIndex, arm64, amd64 v1.Image) {
	t.Helper()
	arm64, amd64 = randomImage(t), randomImage(t)
	idx = mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: arm64, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: amd64, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64", Variant: "v2"}}},
	)
	return idx, arm64, amd64
}

// loadedTags reads the archive a stand-in tool saw: each tag must name
// want, and the tags are returned.
func loadedTags(t *testing.T, file string, want v1.Image, tags ...string) {
	t.Helper()
	for _, s := range tags {
		tag, err := name.NewTag(s)
		if err != nil {
			t.Fatal(err)
		}
		back, err := tarball.ImageFromPath(file, &tag)
		if err != nil {
			t.Fatalf("the archive the tool saw, %s: %v", s, err)
		}
		if got, want := testutil.Digest(t, mustConfigName(t, back)), testutil.Digest(t, mustConfigName(t, want)); got != want {
			t.Errorf("%s: config %s, want %s", s, got, want)
		}
	}
}

func toolArgs(t *testing.T, dir string) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "args"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
}

// kind.local: kind load image-archive FILE --name CLUSTER, the image named
// REPO:HEX and tagged, an index loaded as its linux/amd64 image.
func TestKind(t *testing.T) {
	ctx := context.Background()
	idx, _, amd64 := platformIndex(t)
	img := randomImage(t)
	for _, tc := range []struct {
		name, cluster, wantCluster string
		a                          publish.Artifact
		want                       v1.Image
	}{
		{"image, default cluster", "", "kind", img, img},
		{"index, named cluster", "dev", "dev", idx, amd64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := fakeTool(t, "kind", "")
			tmp := t.TempDir()
			k := &publish.Kind{Cluster: tc.cluster, TempDir: tmp, Engine: publish.Engine{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}}
			if err := k.Check(ctx); err != nil {
				t.Fatal(err)
			}
			d, err := k.Publish(ctx, tc.a, "kind.local/app", []string{"v1", "latest"})
			if err != nil {
				t.Fatal(err)
			}
			if want := "kind.local/app@" + testutil.Digest(t, tc.a).String(); d.String() != want {
				t.Errorf("Publish = %s, want %s (the artifact's own digest)", d, want)
			}
			if err := k.Close(ctx); err != nil {
				t.Fatal(err)
			}
			args := toolArgs(t, dir)
			if len(args) != 5 || args[0] != "load" || args[1] != "image-archive" || filepath.Base(args[2]) != "images.tar" || args[3] != "--name" || args[4] != tc.wantCluster {
				t.Fatalf("kind ran with %q, want load image-archive FILE --name %s", args, tc.wantCluster)
			}
			hex := testutil.Digest(t, tc.want).Hex
			loadedTags(t, filepath.Join(dir, "loaded"), tc.want, "kind.local/app:"+hex, "kind.local/app:v1", "kind.local/app:latest")
			if es, _ := os.ReadDir(tmp); len(es) != 0 {
				t.Errorf("temporary directory not removed: %v", es)
			}
		})
	}
}

func TestKindFailures(t *testing.T) {
	ctx := context.Background()
	t.Run("kind missing", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		err := (&publish.Kind{}).Check(ctx)
		if !errors.Is(err, publish.ErrNoKind) || err.Error() != `the kind CLI is not on PATH: install kind to load into cluster "kind", or publish elsewhere` {
			t.Errorf("Check = %v", err)
		}
	})
	t.Run("kind is looked for on Env's PATH", func(t *testing.T) {
		dir := fakeTool(t, "kind", "")
		if err := (&publish.Kind{Env: []string{"PATH=" + t.TempDir()}}).Check(ctx); !errors.Is(err, publish.ErrNoKind) {
			t.Errorf("kind on the process's PATH only: Check = %v, want ErrNoKind", err)
		}
		t.Setenv("PATH", t.TempDir())
		if err := (&publish.Kind{Env: []string{"PATH=relative:" + filepath.Join(dir, "bin")}}).Check(ctx); err != nil {
			t.Errorf("kind on Env's PATH: Check = %v", err)
		}
	})
	t.Run("kind fails", func(t *testing.T) {
		fakeTool(t, "kind", "echo 'ERROR: no nodes found for cluster \"kind\"' >&2; exit 1")
		k := &publish.Kind{TempDir: t.TempDir()}
		if _, err := k.Publish(ctx, randomImage(t), "kind.local/app", nil); err != nil {
			t.Fatal(err)
		}
		if err := k.Close(ctx); err == nil || err.Error() != `kind load: exit status 1: ERROR: no nodes found for cluster "kind"` {
			t.Errorf("Close = %v", err)
		}
	})
	t.Run("index without the platform", func(t *testing.T) {
		idx, _, _ := platformIndex(t)
		k := &publish.Kind{Engine: publish.Engine{Platform: &v1.Platform{OS: "linux", Architecture: "s390x"}}}
		_, err := k.Publish(ctx, idx, "kind.local/app", nil)
		if !errors.Is(err, publish.ErrNoPlatformImage) || !strings.Contains(err.Error(), "no linux/s390x image to load (it has linux/arm64, linux/amd64/v2)") {
			t.Errorf("Publish = %v", err)
		}
	})
	t.Run("index without a platform to pick", func(t *testing.T) {
		idx, _, _ := platformIndex(t)
		if _, err := (&publish.Kind{}).Publish(ctx, idx, "kind.local/app", nil); err != publish.ErrMultiPlatform {
			t.Errorf("Publish = %v, want ErrMultiPlatform", err)
		}
	})
}

// ko.local: podman load, the image named REPO:HEX besides its tags, an
// index loaded as its linux/amd64 image (the variant is not looked at).
func TestLoadAsKo(t *testing.T) {
	ctx := context.Background()
	dir := fakeTool(t, "podman", "")
	idx, _, amd64 := platformIndex(t)
	l := &publish.Load{TempDir: t.TempDir(), Engine: publish.Engine{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}, DigestTags: true}}
	if _, err := l.Publish(ctx, idx, "ko.local/sub/app", []string{"latest"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	loadedTags(t, filepath.Join(dir, "loaded"), amd64, "ko.local/sub/app:"+testutil.Digest(t, amd64).Hex, "ko.local/sub/app:latest")
}
