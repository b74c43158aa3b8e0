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

// TestGitBlobBomb: a repository whose pack is small (64 KiB as sent)
// but holds one blob of 64 MiB of zeros, fetched under a 1 MiB
// --max-source, fails with the source-too-large error before the blob is
// inflated: the fetch allocates well under a MiB, where go-git alone
// (indexing the pack, then checking the blob out) allocated 384 MiB.
func TestGitBlobBomb(t *testing.T) {
	const blob, limit = 64 << 20, 1 << 20
	repo := testutil.NewGitRepo(t)
	testutil.WriteFiles(t, repo.Work, map[string]string{"go.mod": "module example.com/bomb\n", "main.go": "package main\n\nfunc main() {}\n"})
	writeZeros(t, filepath.Join(repo.Work, "zeros.bin"), blob)
	repo.Git("add", ".")
	repo.Git("commit", "-q", "-m", "bomb")
	srv, url := repo.Serve("bomb")

	f := &Fetcher{HTTP: srv.Client(), GitAllow: []string{"127.0.0.1"}, Limits: Limits{MaxSource: limit}}
	ctx := context.Background()
	r, err := f.Resolve(ctx, Spec{Git: &Git{URL: url}})
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err = f.Fetch(ctx, r, t.TempDir())
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "larger than the server's limit") {
		t.Fatalf("fetch: %v, want the source-too-large error", err)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("fetch: %v; allocated %.1f MiB", err, float64(allocated)/(1<<20))
	if allocated > 16<<20 {
		t.Errorf("the fetch allocated %.1f MiB for a %d MiB blob under a %d MiB limit: the blob was inflated in memory", float64(allocated)/(1<<20), blob>>20, limit>>20)
	}
}

func writeZeros(t *testing.T, p string, n int64) {
	t.Helper()
	w, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(w, zeros{}, n); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
