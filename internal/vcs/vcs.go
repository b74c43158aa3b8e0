package vcs

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
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
	commit, err := run("rev-parse", "--verify", "-q", "HEAD")
	if err != nil || commit == "" {
		return Git{}, nil // not a checkout, or no commit yet
	}
	g := Git{Commit: commit, ShortCommit: commit[:min(12, len(commit))]}
	g.Root, _ = run("rev-parse", "--show-toplevel")
	g.Tag, _ = run("describe", "--tags", "--always")
	g.Branch, _ = run("symbolic-ref", "-q", "--short", "HEAD")
	if status, err := run("status", "--porcelain", "--untracked-files=no"); err == nil {
		g.Dirty = status != ""
	}
	if ts, err := run("show", "-s", "--format=%cI", "HEAD"); err == nil {
		g.CommitDate, _ = time.Parse(time.RFC3339, ts)
	}
	if url, err := run("remote", "get-url", "origin"); err == nil {
		g.RemoteURL = stripCredentials(url)
	}
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
