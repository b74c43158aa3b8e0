package source

import (
	"context"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/testutil"
)

// TestGitHTTPBackend fetches from git's own server (git http-backend
// through net/http/cgi), which, unlike go-git's, offers shallow fetches,
// side-band and peeled tags: the depth-1 path and the fallback for a
// commit below the tips (which git refuses to send alone) run for real.
func TestGitHTTPBackend(t *testing.T) {
	gitBin := testutil.RequireTool(t, "git")
	root := t.TempDir()
	repo := filepath.Join(root, "repo.git")
	work := filepath.Join(root, "work")
	env := append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	run := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command(gitBin, args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	testutil.WriteFiles(t, work, map[string]string{"go.mod": "module example.com/h\n", "main.go": "package main\n"})
	run(root, "init", "-q", "-b", "main", work)
	run(work, "add", ".")
	run(work, "commit", "-q", "-m", "one")
	first := run(work, "rev-parse", "HEAD")
	testutil.WriteFiles(t, work, map[string]string{"two.go": "package main\n"})
	run(work, "add", ".")
	run(work, "commit", "-q", "-m", "two")
	second := run(work, "rev-parse", "HEAD")
	testutil.WriteFiles(t, work, map[string]string{"three.go": "package main\n"})
	run(work, "add", ".")
	run(work, "commit", "-q", "-m", "three")
	third := run(work, "rev-parse", "HEAD")
	run(work, "tag", "-a", "-m", "v1", "v1.0.0", second)
	run(root, "clone", "-q", "--bare", work, repo)

	srv := httptest.NewServer(&cgi.Handler{Path: gitBin, Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1"}})
	defer srv.Close()
	url := srv.URL + "/repo.git"
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
