package cli

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/pipeline"
)

// seedBinaries fills cacheDir's binary cache with n entries last used an
// hour ago, as n earlier builds of other packages or settings leave it.
func seedBinaries(t *testing.T, cacheDir string, n int) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	for i := range n {
		dir := filepath.Join(cacheDir, "bin", "seed"+strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"hello", ".lock"} {
			p := filepath.Join(dir, f)
			if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			// Older entries first, a second apart: the prune's order is
			// the last use.
			at := old.Add(time.Duration(i) * time.Second)
			if err := os.Chtimes(p, at, at); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestBuildBoundsBinaryCache: kiln build prunes its own linked-binary
// cache as the server prunes its own: after a cache already full of
// other packages' and settings' binaries gets k more from the CLI, it
// holds at most pipeline.DefaultKeepBinaries, the k just built among
// them.
func TestBuildBoundsBinaryCache(t *testing.T) {
	needsCompile(t)
	dir := helloDir(t)
	env := fastEnv(t)
	cache := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "KILN_CACHE="); ok {
			cache = v
		}
	}
	seedBinaries(t, cache, pipeline.DefaultKeepBinaries)
	const k = 2
	for i := range k {
		// Distinct ldflags: a distinct cache entry each.
		koBuild(t, dir, env, "--ldflags", "-X=main.build="+strconv.Itoa(i))
	}
	ents, err := os.ReadDir(filepath.Join(cache, "bin"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) > pipeline.DefaultKeepBinaries {
		t.Errorf("binary cache holds %d entries after %d builds into a cache of %d, want at most %d", len(ents), k, pipeline.DefaultKeepBinaries, pipeline.DefaultKeepBinaries)
	}
	seeds := 0
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "seed") {
			seeds++
		}
	}
	if built := len(ents) - seeds; built != k {
		t.Errorf("the cache holds %d of the %d entries just built; the newest must stay", built, k)
	}
	for i := range k { // the least recently used go first
		if _, err := os.Stat(filepath.Join(cache, "bin", "seed"+strconv.Itoa(i))); err == nil {
			t.Errorf("seed%d, among the %d least recently used, was kept", i, k)
		}
	}
}
