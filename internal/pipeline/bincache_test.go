package pipeline

import (
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/platform"
	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// TestBinaryCacheSharedAcrossDirectories: one package built from two
// directories (the build service builds each request in a fresh one)
// keeps one cache slot, not one binary per directory, and a changed copy
// still gets its own binary. (go links again for the second directory:
// the slot bounds the cache, it does not save the link.)
func TestBinaryCacheSharedAcrossDirectories(t *testing.T) {
	files := map[string]string{
		"go.mod":            "module example.com/hello\n\ngo 1.22\n",
		"cmd/hello/main.go": "package main\n\nfunc main() { println(\"hello\") }\n",
	}
	environ := testutil.GoEnv(t, t.TempDir())
	cache := t.TempDir()
	buildIn := func(dir string) Result {
		t.Helper()
		return build(t, dir, environ, Options{
			CacheDir:  cache,
			Platforms: platform.Spec{Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}}},
			Publisher: &publish.ToLayout{Dir: t.TempDir()},
			Naming:    Naming{Repo: "example.com/hello", Bare: true},
			Config:    &config.Config{DefaultBaseImage: "scratch"},
		}, "./cmd/hello")[0]
	}
	slot := func() string {
		t.Helper()
		bins, _ := filepath.Glob(filepath.Join(cache, "bin", "*", "hello"))
		if len(bins) != 1 {
			t.Fatalf("binary cache holds %d binaries of hello, want 1: %v", len(bins), bins)
		}
		return bins[0]
	}
	a, b := t.TempDir(), t.TempDir()
	testutil.WriteFiles(t, a, files)
	testutil.WriteFiles(t, b, files)
	first := buildIn(a)
	path1 := slot()
	second := buildIn(b)
	if path2 := slot(); path1 != path2 {
		t.Errorf("the second directory linked into %s, not the slot %s", path2, path1)
	}
	if first.Digest != second.Digest {
		t.Errorf("one source in two directories: digests %s and %s", first.Digest, second.Digest)
	}
	testutil.WriteFiles(t, b, map[string]string{"cmd/hello/main.go": "package main\n\nfunc main() { println(\"changed\") }\n"})
	if changed := buildIn(b); changed.Digest == first.Digest {
		t.Error("a changed source reused the cached binary of the old one")
	}
}
