package source

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/kilnbuild/kiln/internal/testutil"
)

// TestGitHTTPBackend fetches from git's own server (git http-backend
// through net/http/cgi), which, unlike go-git's, offers shallow fetches,
// side-band and peeled tags: the depth-1 path and the fallback for a
// commit below the tips (which git refuses to send alone) run for real.
func TestGitHTTPBackend(t *testing.T) {
	repo := testutil.NewGitRepo(t)
	first := repo.Commit(map[string]string{"go.mod": "module example.com/h\n", "main.go": "package main\n"}, "one")
	second := repo.Commit(map[string]string{"two.go": "package main\n"}, "two")
	third := repo.Commit(map[string]string{"three.go": "package main\n"}, "three")
	repo.Git("tag", "-a", "-m", "v1", "v1.0.0", second)
	srv, url := repo.Serve("repo")
	f := &Fetcher{HTTP: srv.Client(), GitAllow: []string{"127.0.0.1"}}
	ctx := context.Background()
	for _, c := range []struct {
		ref, want, file, absent string
	}{
		{ref: "", want: third, file: "three.go"},
		{ref: "v1.0.0", want: second, file: "two.go", absent: "three.go"}, // a tip only as a peeled tag
		{ref: first, want: first, file: "main.go", absent: "two.go"},      // below every tip
	} {
		t.Run("ref "+c.ref, func(t *testing.T) {
			r, err := f.Resolve(ctx, Spec{Git: &Git{URL: url, Ref: c.ref}})
			if err != nil {
				t.Fatal(err)
			}
			if r.Revision != c.want {
				t.Fatalf("revision %s, want %s", r.Revision, c.want)
			}
			dir := t.TempDir()
			root, err := f.Fetch(ctx, r, dir)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(root, c.file)); err != nil {
				t.Error(err)
			}
			if _, err := os.Stat(filepath.Join(root, c.absent)); c.absent != "" && err == nil {
				t.Errorf("%s is from a later commit", c.absent)
			}
			if _, err := os.Stat(filepath.Join(root, ".git")); err == nil {
				t.Error(".git was left in the tree")
			}
		})
	}
}
