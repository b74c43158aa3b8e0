package vcs

import (
	"bytes"
	"context"
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
func Read(ctx context.Context, dir string) (Git, error) { return Start(ctx, dir).Wait(), nil }

// The questions Read asks git, each answered by one command.
const (
	qCommit = iota
	qRoot
	qTag
	qBranch
	qStatus
	qDate
	qRemote
	nQuestions
)

var questions = [nQuestions][]string{
	qCommit: {"rev-parse", "--verify", "-q", "HEAD"},
	qRoot:   {"rev-parse", "--show-toplevel"},
	qTag:    {"describe", "--tags", "--always"},
	qBranch: {"symbolic-ref", "-q", "--short", "HEAD"},
	qStatus: {"status", "--porcelain", "--untracked-files=no"},
	qDate:   {"show", "-s", "--format=%cI", "HEAD"},
	qRemote: {"remote", "get-url", "origin"},
}

// fieldQuestion says which question answers a Git field or method, as
// templates name them.
var fieldQuestion = map[string]int{
	"Commit": qCommit, "ShortCommit": qCommit, "FullCommit": qCommit,
	"Root": qRoot, "Tag": qTag, "Branch": qBranch,
	"Dirty": qStatus, "IsDirty": qStatus, "IsClean": qStatus, "TreeState": qStatus,
	"CommitDate": qDate, "RemoteURL": qRemote,
}

// Reader asks git every question at once, when it starts, and answers each
// caller as soon as the questions its fields need are answered: a build
// whose flags use {{.Git.Tag}} waits for git describe, not git status.
type Reader struct {
	answers [nQuestions]string
	done    [nQuestions]chan struct{}
}

// Start asks git about dir in the background.
func Start(ctx context.Context, dir string) *Reader {
	r := &Reader{}
	for q := range r.done {
		r.done[q] = make(chan struct{})
	}
	if _, err := exec.LookPath("git"); err != nil {
		for q := range r.done {
			close(r.done[q])
		}
		return r
	}
	for q, args := range questions {
		go func() {
			defer close(r.done[q])
			cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
			var out bytes.Buffer
			cmd.Stdout = &out
			if cmd.Run() == nil {
				r.answers[q] = strings.TrimSpace(out.String())
			}
		}()
	}
	return r
}

// Wait returns the fields named (Git field or method names, as in
// templates), or every field when none is named. Fields not asked for are
// left zero. An unknown name waits for everything.
func (r *Reader) Wait(fields ...string) Git {
	want := [nQuestions]bool{qCommit: true} // no commit: not a checkout at all
	all := len(fields) == 0
	for _, f := range fields {
		q, ok := fieldQuestion[f]
		if !ok {
			all = true
			break
		}
		want[q] = true
	}
	for q := range want {
		if all || want[q] {
			want[q] = true
			<-r.done[q]
		}
	}
	commit := r.answers[qCommit]
	if commit == "" {
		return Git{} // not a checkout, or no commit yet
	}
	g := Git{Commit: commit, ShortCommit: commit[:min(12, len(commit))]}
	if want[qRoot] {
		g.Root = r.answers[qRoot]
	}
	if want[qTag] {
		g.Tag = r.answers[qTag]
	}
	if want[qBranch] {
		g.Branch = r.answers[qBranch]
	}
	if want[qStatus] {
		g.Dirty = r.answers[qStatus] != ""
	}
	if want[qDate] {
		g.CommitDate, _ = time.Parse(time.RFC3339, r.answers[qDate])
	}
	if want[qRemote] {
		g.RemoteURL = stripCredentials(r.answers[qRemote])
	}
	return g
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
