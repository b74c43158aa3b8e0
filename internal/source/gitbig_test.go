package source

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/kilnbuild/kiln/internal/testutil"
)

// TestGitBigBlobFits: a blob within --max-source is checked out whole,
// and the fetch allocates about its size once (go-git's indexer reads
// each object whole), not several times over: the checkout streams it.
func TestGitBigBlobFits(t *testing.T) {
	const blob, limit = 16 << 20, 64 << 20
	repo := testutil.NewGitRepo(t)
	testutil.WriteFiles(t, repo.Work, map[string]string{"go.mod": "module example.com/big\n"})
	writeZeros(t, filepath.Join(repo.Work, "zeros.bin"), blob)
	repo.Git("add", ".")
	repo.Git("commit", "-q", "-m", "big")
	srv, url := repo.Serve("big")
	f := &Fetcher{HTTP: srv.Client(), GitAllow: []string{"127.0.0.1"}, Limits: Limits{MaxSource: limit}}
	ctx := context.Background()
	r, err := f.Resolve(ctx, Spec{Git: &Git{URL: url}})
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	root, err := f.Fetch(ctx, r, t.TempDir())
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(root, "zeros.bin")); err != nil || fi.Size() != blob {
		t.Fatalf("zeros.bin: %v, %v", fi, err)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %.1f MiB for a %d MiB blob", float64(allocated)/(1<<20), blob>>20)
	if allocated > 3*blob { // twice under -race, where sync.Pool keeps nothing
		t.Errorf("the fetch allocated %.1f MiB for a %d MiB blob: the checkout read it into memory", float64(allocated)/(1<<20), blob>>20)
	}
}
