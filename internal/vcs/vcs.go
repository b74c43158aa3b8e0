package vcs

import (
	"bytes"
	"context"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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

// Reader asks git only what its callers need, each question once, and
// answers each caller as soon as the questions its fields need are
// answered: a build whose flags use {{.Git.Tag}} waits for git describe,
// and nobody runs git status unless the tree state is wanted.
type Reader struct {
	ctx     context.Context
	dir     string
	noGit   bool
	idle    bool // git runs at the lowest CPU priority
	asked   [nQuestions]sync.Once
	started [nQuestions]atomic.Bool
	answers [nQuestions]string
	done    [nQuestions]chan struct{}
}

// Start asks git about dir, in the background, what the fields named in
// first need (every question when none is named).
func Start(ctx context.Context, dir string, first ...string) *Reader {
	return start(ctx, dir, false, first)
}

// StartIdle is Start with git at the lowest CPU priority, so that it takes
// only what other work leaves: for a caller that goes on with answers it
// remembered and only checks them against git's.
func StartIdle(ctx context.Context, dir string, first ...string) *Reader {
	return start(ctx, dir, true, first)
}

func start(ctx context.Context, dir string, idle bool, first []string) *Reader {
	r := &Reader{ctx: ctx, dir: dir, idle: idle}
	for q := range r.done {
		r.done[q] = make(chan struct{})
	}
	if _, err := exec.LookPath("git"); err != nil {
		r.noGit = true
	}
	r.Prefetch(first...)
	return r
}

// Prefetch starts asking what fields need without waiting for the answers
// (every question when none is named).
func (r *Reader) Prefetch(fields ...string) { r.start(r.questionsFor(fields)) }

// start asks the wanted questions not asked yet.
func (r *Reader) start(want [nQuestions]bool) {
	for q := range want {
		if want[q] {
			r.asked[q].Do(func() {
				r.started[q].Store(true)
				go r.ask(q)
			})
		}
	}
}

// Settle waits until no git command the reader started is running.
func (r *Reader) Settle() {
	for q := range r.started {
		if r.started[q].Load() {
			<-r.done[q]
		}
	}
}

func (r *Reader) ask(q int) {
	defer close(r.done[q])
	if r.noGit {
		return
	}
	if r.idle {
		// A child takes its priority from the thread that starts it; the
		// thread, locked to this goroutine, ends with it.
		runtime.LockOSThread()
		syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), 19)
	}
	cmd := exec.CommandContext(r.ctx, "git", append([]string{"-C", r.dir}, questions[q]...)...)
	var out bytes.Buffer
	cmd.Stdout = &out
	if cmd.Run() == nil {
		r.answers[q] = strings.TrimSpace(out.String())
	}
}

// questionsFor says which questions answer fields (all for none or an
// unknown name); the commit's is always among them.
func (r *Reader) questionsFor(fields []string) [nQuestions]bool {
	want := [nQuestions]bool{qCommit: true} // no commit: not a checkout at all
	for _, f := range fields {
		q, ok := fieldQuestion[f]
		if !ok {
			fields = nil
			break
		}
		want[q] = true
	}
	if len(fields) == 0 {
		for q := range want {
			want[q] = true
		}
	}
	return want
}

// Wait returns the fields named (Git field or method names, as in
// templates), or every field when none is named. Fields not asked for are
// left zero. An unknown name waits for everything.
func (r *Reader) Wait(fields ...string) Git {
	want := r.questionsFor(fields)
	r.start(want)
	for q := range want {
		if want[q] {
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
