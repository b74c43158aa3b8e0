package vcs

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Git describes the checkout a build came from. The zero value means "not a
// git checkout" (or git is not installed). The fields templates share with
// ko hold what ko's git commands answer.
type Git struct {
	Commit      string    // full commit hash
	ShortCommit string    // git's abbreviation of it (`git show --format=%h`), as ko
	Tag         string    // the last tag reachable from HEAD (`git describe --tags --abbrev=0`); "" when none
	Branch      string    // `git rev-parse --abbrev-ref HEAD`: "HEAD" when detached, as ko
	Dirty       bool      // tracked files differ from HEAD (what provenance records)
	TreeDirty   bool      // `git status --porcelain` lists anything, untracked files too: ko's IsDirty
	CommitDate  time.Time // committer date of HEAD
	RemoteURL   string    // origin's URL, credentials removed
	Root        string    // top-level directory of the checkout
}

// FullCommit is the same as Commit; it mirrors ko's template field name.
func (g Git) FullCommit() string { return g.Commit }

// IsDirty is ko's: anything git status lists, untracked files too.
func (g Git) IsDirty() bool { return g.TreeDirty }

// IsClean is ko's: nothing for git status to list.
func (g Git) IsClean() bool { return !g.TreeDirty }

// TreeState is "dirty" or "clean", as in ko's templates (see IsDirty).
func (g Git) TreeState() string {
	if g.TreeDirty {
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
	qShort
	qPorcelain
	nQuestions
)

// noSignature keeps `git show` from printing signature checks into its
// answer when the user's config asks for them (ko passes it too).
const noSignature = "log.showSignature=false"

var questions = [nQuestions][]string{
	qCommit:    {"rev-parse", "--verify", "-q", "HEAD"},
	qRoot:      {"rev-parse", "--show-toplevel"},
	qTag:       {"describe", "--tags", "--abbrev=0", "HEAD"},
	qBranch:    {"rev-parse", "--abbrev-ref", "HEAD", "--quiet"},
	qStatus:    {"status", "--porcelain", "--untracked-files=no"},
	qDate:      {"-c", noSignature, "show", "-s", "--format=%cI", "HEAD"},
	qRemote:    {"remote", "get-url", "origin"},
	qShort:     {"-c", noSignature, "show", "-s", "--format=%h", "HEAD"},
	qPorcelain: {"status", "--porcelain"},
}

// questionNames name the questions in Answers. A question whose command
// changes gets a new name, so that an answer remembered from the old
// command is never taken for the new one's.
var questionNames = [nQuestions]string{
	qCommit: "commit", qRoot: "root", qTag: "lasttag", qBranch: "abbrevref",
	qStatus: "status", qDate: "date", qRemote: "remote", qShort: "short", qPorcelain: "porcelain",
}

// workTree are the questions whose answers depend on the work tree, which
// State does not cover: they are never remembered.
var workTree = [nQuestions]bool{qStatus: true, qPorcelain: true}

// fieldQuestion says which question answers a Git field or method, as
// templates name them.
var fieldQuestion = map[string]int{
	"Commit": qCommit, "FullCommit": qCommit, "ShortCommit": qShort,
	"Root": qRoot, "Tag": qTag, "Branch": qBranch, "Dirty": qStatus,
	"IsDirty": qPorcelain, "IsClean": qPorcelain, "TreeState": qPorcelain, "TreeDirty": qPorcelain,
	"CommitDate": qDate, "CommitTimestamp": qDate, "RemoteURL": qRemote,
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
	broken  [nQuestions]bool // git did not run to the end: no answer to remember
	done    [nQuestions]chan struct{}
}

// Start asks git about dir, in the background, what the fields named in
// first need (every question when none is named).
func Start(ctx context.Context, dir string, first ...string) *Reader {
	r := NewReader(ctx, dir, false)
	r.Prefetch(first...)
	return r
}

// NewReader returns a Reader of dir that asks git nothing until asked.
// With idle, git runs at the lowest CPU priority and takes only what other
// work leaves: for a caller that goes on with answers it remembered and
// only checks them against git's.
func NewReader(ctx context.Context, dir string, idle bool) *Reader {
	r := &Reader{ctx: ctx, dir: dir, idle: idle}
	for q := range r.done {
		r.done[q] = make(chan struct{})
	}
	if _, err := exec.LookPath("git"); err != nil {
		r.noGit = true
	}
	return r
}

// Answers are answers to the reader's questions, by question name, as
// Reader.Answers gives them and Reader.Know takes them back.
type Answers map[string]string

// Answers returns the answers given so far, but the tree status ones: they
// depend on the work tree, which State does not cover.
func (r *Reader) Answers() Answers {
	a := Answers{}
	for q := range r.done {
		select {
		case <-r.done[q]:
			if !workTree[q] && !r.broken[q] {
				a[questionNames[q]] = r.answers[q]
			}
		default:
		}
	}
	return a
}

// Know takes a as git's answers to the questions it names, which are then
// not asked of git; questions already asked keep git's answers. A caller
// knows a to be right when State is what it was when a was given.
func (r *Reader) Know(a Answers) {
	for q, name := range questionNames {
		if v, ok := a[name]; ok && !workTree[q] {
			r.asked[q].Do(func() {
				r.answers[q] = v
				close(r.done[q])
			})
		}
	}
}

// Git is what the answers say of the named fields (every field when none
// is named), as Reader.Wait would; ok is false when a question they need
// is not answered in a.
func (a Answers) Git(fields ...string) (g Git, ok bool) {
	var answers [nQuestions]string
	want := questionsFor(fields)
	for q := range want {
		if want[q] {
			v, found := a[questionNames[q]]
			if !found {
				return Git{}, false
			}
			answers[q] = v
		}
	}
	return gitFrom(answers, want), true
}

// Prefetch starts asking what fields need without waiting for the answers
// (every question when none is named).
func (r *Reader) Prefetch(fields ...string) { r.start(questionsFor(fields)) }

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
	err := cmd.Run()
	if err == nil {
		r.answers[q] = strings.TrimSpace(out.String())
	}
	// git saying no (no tag, no remote, detached) is an answer; git not
	// running to the end is none, and is never handed out to remember.
	var exit *exec.ExitError
	if err != nil && (!errors.As(err, &exit) || !exit.Exited() || r.ctx.Err() != nil) {
		r.broken[q] = true
	}
}

// questionsFor says which questions answer fields (all for none or an
// unknown name); the commit's is always among them.
func questionsFor(fields []string) [nQuestions]bool {
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
	want := questionsFor(fields)
	r.start(want)
	for q := range want {
		if want[q] {
			<-r.done[q]
		}
	}
	var answers [nQuestions]string
	for q := range want {
		if want[q] {
			answers[q] = r.answers[q] // only what was waited for is read
		}
	}
	return gitFrom(answers, want)
}

// gitFrom makes the wanted fields of a Git from answers.
func gitFrom(answers [nQuestions]string, want [nQuestions]bool) Git {
	commit := answers[qCommit]
	if commit == "" {
		return Git{} // not a checkout, or no commit yet
	}
	g := Git{Commit: commit}
	if want[qShort] {
		g.ShortCommit = unquote(answers[qShort])
	}
	if want[qRoot] {
		g.Root = answers[qRoot]
	}
	if want[qTag] {
		g.Tag = unquote(answers[qTag])
	}
	if want[qBranch] {
		g.Branch = unquote(answers[qBranch])
	}
	if want[qStatus] {
		g.Dirty = answers[qStatus] != ""
	}
	if want[qPorcelain] {
		g.TreeDirty = answers[qPorcelain] != ""
	}
	if want[qDate] {
		g.CommitDate, _ = time.Parse(time.RFC3339, answers[qDate])
	}
	if want[qRemote] {
		g.RemoteURL = stripCredentials(answers[qRemote])
	}
	return g
}

// unquote drops every single quote from a one-line answer, as ko does
// with each of git's answers (it asks for --format='%ct').
func unquote(answer string) string {
	first, _, _ := strings.Cut(answer, "\n")
	return strings.ReplaceAll(first, "'", "")
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
