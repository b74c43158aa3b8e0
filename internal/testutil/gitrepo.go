package testutil

import (
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// GitRepo is a git work tree in a test's temporary directory, with no
// user or system git configuration, that Serve offers over HTTP through
// git's own http-backend: unlike go-git's server, it offers shallow
// fetches, side-band and peeled tags.
type GitRepo struct {
	t    testing.TB
	git  string
	root string
	env  []string
	Work string // the work tree; its branch is main
}

// NewGitRepo makes an empty repository. Without git the test is skipped
// (failed under CI=true; see RequireTool).
func NewGitRepo(t testing.TB) *GitRepo {
	t.Helper()
	r := &GitRepo{t: t, git: RequireTool(t, "git"), root: t.TempDir()}
	r.Work = filepath.Join(r.root, "work")
	r.env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	r.run(r.root, "init", "-q", "-b", "main", r.Work)
	return r
}

// Git runs git with args in the work tree and returns what it printed,
// trimmed; the test fails when git does.
func (r *GitRepo) Git(args ...string) string {
	r.t.Helper()
	return r.run(r.Work, args...)
}

func (r *GitRepo) run(dir string, args ...string) string {
	r.t.Helper()
	cmd := exec.Command(r.git, args...)
	cmd.Dir, cmd.Env = dir, r.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// Commit writes files into the work tree, commits everything with
// message, and returns the new commit's hash.
func (r *GitRepo) Commit(files map[string]string, message string) string {
	r.t.Helper()
	WriteFiles(r.t, r.Work, files)
	r.Git("add", ".")
	r.Git("commit", "-q", "-m", message)
	return r.Git("rev-parse", "HEAD")
}

// Serve clones the work tree's commits into a bare repository name.git
// and serves it with git http-backend until the test ends. It returns the
// server and the repository's URL.
func (r *GitRepo) Serve(name string) (*httptest.Server, string) {
	r.t.Helper()
	r.run(r.root, "clone", "-q", "--bare", r.Work, filepath.Join(r.root, name+".git"))
	srv := httptest.NewServer(&cgi.Handler{Path: r.git, Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=" + r.root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1"}})
	r.t.Cleanup(srv.Close)
	return srv, srv.URL + "/" + name + ".git"
}
