package vcs

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Git describes the checkout a build came from. The zero value means "not a
// git checkout" (or git is not installed).
type Git struct {
	Commit      string    // full commit hash
	ShortCommit string    // first 12 characters
	Tag         string    // `git describe --tags --always` of HEAD
	Branch      string    // current branch, "" when detached
	Dirty       bool      // the work tree has uncommitted changes
	CommitDate  time.Time // committer date of HEAD
	RemoteURL   string    // origin's URL, credentials removed
	Root        string    // top-level directory of the checkout
}

// FullCommit is the same as Commit; it mirrors ko's template field name.
func (g Git) FullCommit() string { return g.Commit }

// IsDirty mirrors ko's template field name.
func (g Git) IsDirty() bool { return g.Dirty }

// IsClean mirrors ko's template field name.
func (g Git) IsClean() bool { return !g.Dirty }

// TreeState is "dirty" or "clean", as in ko's templates.
func (g Git) TreeState() string {
	if g.Dirty {
		return "dirty"
	}
	return "clean"
}

// Read returns the git state of dir. A directory outside any git checkout, or
// a machine without git, yields the zero Git and no error.
func Read(ctx context.Context, dir string) (Git, error) {
	run := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			return "", errors.New(strings.TrimSpace(errb.String()))
		}
		return strings.TrimSpace(out.String()), nil
	}
	if _, err := exec.LookPath("git"); err != nil {
		return Git{}, nil
	}
	// Every question is asked at once: they are independent, and a build
	// whose flags use git data waits for the slowest of them.
	var g Git
	var commit string
	var wg sync.WaitGroup
	ask := func(set func(string), args ...string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := run(args...); err == nil {
				set(out)
			}
		}()
	}
	ask(func(s string) { commit = s }, "rev-parse", "--verify", "-q", "HEAD")
	ask(func(s string) { g.Root = s }, "rev-parse", "--show-toplevel")
	ask(func(s string) { g.Tag = s }, "describe", "--tags", "--always")
	ask(func(s string) { g.Branch = s }, "symbolic-ref", "-q", "--short", "HEAD")
	ask(func(s string) { g.Dirty = s != "" }, "status", "--porcelain", "--untracked-files=no")
	ask(func(s string) { g.CommitDate, _ = time.Parse(time.RFC3339, s) }, "show", "-s", "--format=%cI", "HEAD")
	ask(func(s string) { g.RemoteURL = stripCredentials(s) }, "remote", "get-url", "origin")
	wg.Wait()
	if commit == "" {
		return Git{}, nil // not a checkout, or no commit yet
	}
	g.Commit, g.ShortCommit = commit, commit[:min(12, len(commit))]
	return g, nil
}

// stripCredentials removes "user:password@" from an http(s) URL.
func stripCredentials(url string) string {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return url
	}
	host, path, _ := strings.Cut(rest, "/")
	if i := strings.LastIndex(host, "@"); i >= 0 {
		host = host[i+1:]
	}
	if path != "" {
		return scheme + "://" + host + "/" + path
	}
	return scheme + "://" + host
}
