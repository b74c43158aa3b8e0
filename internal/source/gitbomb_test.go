package source

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/testutil"
)

// fetchZeros fetches, under a --max-source of limit, a repository whose
// one commit holds a go.mod and a blob of n zeros (its pack is small:
// zeros deflate about 1000:1), and returns the root Fetch returned, the
// bytes the fetch allocated, and Fetch's error.
func fetchZeros(t *testing.T, n, limit int64) (root string, allocated uint64, err error) {
	t.Helper()
	repo := testutil.NewGitRepo(t)
	testutil.WriteFiles(t, repo.Work, map[string]string{"go.mod": "module example.com/zeros\n"})
	w, err := os.Create(filepath.Join(repo.Work, "zeros.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(w, zeros{}, n); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	repo.Git("add", ".")
	repo.Git("commit", "-q", "-m", "zeros")
	srv, url := repo.Serve("zeros")
	f := &Fetcher{HTTP: srv.Client(), GitAllow: []string{"127.0.0.1"}, Limits: Limits{MaxSource: limit}}
	ctx := context.Background()
	r, err := f.Resolve(ctx, Spec{Git: &Git{URL: url}})
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	root, err = f.Fetch(ctx, r, t.TempDir())
	runtime.ReadMemStats(&after)
	allocated = after.TotalAlloc - before.TotalAlloc
	t.Logf("fetch of %d MiB of zeros under a limit of %d MiB: %v; allocated %.1f MiB", n>>20, limit>>20, err, float64(allocated)/(1<<20))
	return root, allocated, err
}

// TestGitBlobBomb: a repository whose pack is small (64 KiB as sent)
// but holds one blob of 64 MiB of zeros, fetched under a 1 MiB
// --max-source, fails with the source-too-large error before the blob is
// inflated: the fetch allocates well under a MiB, where go-git alone
// (indexing the pack, then checking the blob out) allocated 384 MiB.
func TestGitBlobBomb(t *testing.T) {
	const blob, limit = 64 << 20, 1 << 20
	_, allocated, err := fetchZeros(t, blob, limit)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "larger than the server's limit") {
		t.Fatalf("fetch: %v, want the source-too-large error", err)
	}
	if allocated > 16<<20 {
		t.Errorf("the fetch allocated %.1f MiB for a %d MiB blob under a %d MiB limit: the blob was inflated in memory", float64(allocated)/(1<<20), blob>>20, limit>>20)
	}
}

// TestGitBigBlobFits: a blob within --max-source is checked out whole,
// and the fetch allocates about its size once (go-git's indexer reads
// each object whole), not several times over: the checkout streams it.
func TestGitBigBlobFits(t *testing.T) {
	const blob, limit = 16 << 20, 64 << 20
	root, allocated, err := fetchZeros(t, blob, limit)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(root, "zeros.bin")); err != nil || fi.Size() != blob {
		t.Fatalf("zeros.bin: %v, %v", fi, err)
	}
	if allocated > 3*blob { // twice under -race, where sync.Pool keeps nothing
		t.Errorf("the fetch allocated %.1f MiB for a %d MiB blob: the checkout read it into memory", float64(allocated)/(1<<20), blob>>20)
	}
}
