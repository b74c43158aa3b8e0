package pipeline

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/platform"
	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/testutil"
	"github.com/kilnbuild/kiln/internal/vcs"
)

func TestGitMemory(t *testing.T) {
	cache := t.TempDir()
	m := loadGitRecordFile(cache, "/src/a")
	if _, ok := m.guess("Tag"); ok {
		t.Fatal("a fresh cache has a guess")
	}
	answers := vcs.Answers{"commit": "abc", "lasttag": "v1.0.0"}
	m.remember("state-1", answers)
	m = loadGitRecordFile(cache, "/src/a")
	if g, ok := m.guess("Tag"); !ok || g.Tag != "v1.0.0" || g.Commit != "abc" {
		t.Fatalf("guess after remember = %+v, %v", g, ok)
	}
	if _, ok := m.guess("RemoteURL"); ok {
		t.Error("a guess for a field never answered")
	}
	if a, ok := m.known("state-1"); !ok || a["lasttag"] != "v1.0.0" {
		t.Errorf("known in the same state = %v, %v", a, ok)
	}
	for _, state := range []string{"state-2", ""} {
		if _, ok := m.known(state); ok {
			t.Errorf("known in state %q", state)
		}
	}
	if _, ok := loadGitRecordFile(cache, "/src/b").guess("Tag"); ok {
		t.Error("another checkout shares the guess")
	}
	if _, ok := loadGitRecordFile("", "/src/a").guess("Tag"); ok {
		t.Error("no cache dir, yet a guess")
	}
	loadGitRecordFile("", "/src/a").remember("s", answers) // no cache: nothing written, no panic

	// Answers without a state are a guess, never known.
	m.remember("", answers)
	if _, ok := loadGitRecordFile(cache, "/src/a").known(""); ok {
		t.Error("answers without a state are known")
	}

	// A corrupt memory is nothing remembered, and is replaced.
	if err := os.WriteFile(m.path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	m = loadGitRecordFile(cache, "/src/a")
	if _, ok := m.guess("Tag"); ok {
		t.Error("corrupt memory gives a guess")
	}
	m.remember("state-1", answers)
	if _, ok := loadGitRecordFile(cache, "/src/a").known("state-1"); !ok {
		t.Error("corrupt memory not replaced")
	}
}

// recordingRunner runs the real go command and records each go build's
// ldflags and whether it finished or was stopped.
type recordingRunner struct {
	mu     sync.Mutex
	builds []string // "-ldflags=… ok|stopped"
}

func (r *recordingRunner) Run(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	out, err := gobuild.ExecRunner{}.Run(ctx, dir, env, name, args...)
	if args[0] == "build" {
		state := "ok"
		if ctx.Err() != nil {
			state = "stopped"
		}
		for _, a := range args {
			if strings.HasPrefix(a, "-ldflags=") {
				r.mu.Lock()
				r.builds = append(r.builds, a+" "+state)
				r.mu.Unlock()
			}
		}
	}
	return out, err
}

func (r *recordingRunner) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.builds
	r.builds = nil
	return b
}

// gitCheckout is a git checkout of testutil.HelloModule tagged v1.0.0,
// whose times vcs.State can vouch for; git runs it with user and email
// set, and questions drains the log of what kiln asked git in it (the go
// command asks its own).
func gitCheckout(t *testing.T) (dir string, git func(args ...string), questions func() []string) {
	t.Helper()
	dir = t.TempDir()
	testutil.WriteFiles(t, dir, testutil.HelloModule)
	git = func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	// git is a script that logs each question and asks the real git.
	realGit := testutil.RequireTool(t, "git")
	bin, gitLog := t.TempDir(), filepath.Join(t.TempDir(), "git.log")
	testutil.WriteFiles(t, bin, map[string]string{"git": "#!/bin/sh\necho \"$*\" >>" + gitLog + "\nexec " + realGit + " \"$@\"\n"})
	if err := os.Chmod(filepath.Join(bin, "git"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	questions = func() []string {
		data, _ := os.ReadFile(gitLog)
		os.Remove(gitLog)
		var q []string
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "-C "+dir+" ") {
				q = append(q, strings.TrimPrefix(line, "-C "+dir+" "))
			}
		}
		return q
	}
	git("init", "-q")
	git("add", ".")
	git("commit", "-q", "-m", "one")
	git("tag", "v1.0.0")
	time.Sleep(2 * racyWindowForTests) // let the commit's times settle
	return dir, git, questions
}

// The compile that starts with last time's git answers is kept only when
// git answers the same: a new tag must reach the binary.
func TestRememberedGitAnswersNeverReachAStaleBinary(t *testing.T) {
	dir, git, questions := gitCheckout(t)
	environ := testutil.GoEnv(t, t.TempDir())
	cache := t.TempDir()
	runner := &recordingRunner{}
	run := func() (Result, v1.Image) {
		t.Helper()
		out := t.TempDir()
		res, err := Run(context.Background(), Options{
			Dir: dir, Env: environ, Jobs: 2, CacheDir: cache,
			Builder:   &gobuild.Builder{Env: environ, Runner: runner},
			Platforms: platform.Spec{Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}}},
			Publisher: &publish.ToLayout{Dir: out},
			Naming:    Naming{Repo: "example.com/hello", Bare: true},
			Config: &config.Config{DefaultBaseImage: "scratch", Builds: []config.Build{{
				ID: "hello", Main: "./cmd/hello", Ldflags: []string{"-X main.version={{.Git.Tag}}"},
			}}},
		}, []string{"./cmd/hello"})
		if err != nil {
			t.Fatal(err)
		}
		lay, err := layout.FromPath(out)
		if err != nil {
			t.Fatal(err)
		}
		img, err := lay.Image(must(v1.NewHash(res[0].Digest)))
		if err != nil {
			t.Fatal(err)
		}
		return res[0], img
	}
	binaryHas := func(img v1.Image, s string) bool {
		_, data := testutil.Files(t, img, "ko-app/hello")
		return bytes.Contains(data["ko-app/hello"], []byte(s))
	}

	// First build: nothing remembered, one compile with git's answer.
	questions()
	_, img := run()
	if b := runner.take(); len(b) != 1 || !strings.Contains(b[0], "v1.0.0 ok") {
		t.Fatalf("first build compiled %q", b)
	}
	if !binaryHas(img, "v1.0.0") {
		t.Fatal("first binary lacks v1.0.0")
	}

	if q := questions(); len(q) == 0 {
		t.Error("the first build asked git nothing")
	}

	// Nothing changed: the remembered answers are git's, and git is not
	// asked at all; one compile.
	first, _ := run()
	if b := runner.take(); len(b) != 1 || !strings.Contains(b[0], "v1.0.0 ok") {
		t.Fatalf("unchanged rebuild compiled %q", b)
	}
	if q := questions(); len(q) != 0 {
		t.Errorf("an unchanged checkout was asked %q", q)
	}
	if first.Record.Git.Commit == "" {
		t.Error("the labels' commit is missing")
	}

	// A new commit and tag: the guess (v1.0.0) is wrong; the binary and
	// the record must carry v2.0.0.
	testutil.WriteFiles(t, dir, map[string]string{"cmd/hello/extra.go": "package main\n\nvar extra = 2\n"})
	git("add", ".")
	git("commit", "-q", "-m", "two")
	git("tag", "v2.0.0")
	second, img := run()
	b := runner.take()
	if len(b) == 0 || !strings.Contains(b[len(b)-1], "v2.0.0 ok") {
		t.Fatalf("rebuild after a new tag compiled %q", b)
	}
	for _, c := range b[:len(b)-1] {
		if !strings.Contains(c, "v1.0.0") {
			t.Errorf("unexpected compile %q", c)
		}
	}
	if !binaryHas(img, "v2.0.0") || binaryHas(img, "v1.0.0") {
		t.Error("the binary does not carry the new tag alone")
	}
	if got := strings.Join(second.Record.Ldflags, " "); !strings.Contains(got, "v2.0.0") {
		t.Errorf("record ldflags = %q", got)
	}
	if second.Digest == first.Digest {
		t.Error("a new tag left the digest unchanged")
	}
	if q := strings.Join(questions(), " "); !strings.Contains(q, "describe") {
		t.Errorf("after a new tag git was asked only %q", q)
	}
	if g, _ := loadGitRecordFile(cache, dir).guess("Tag"); g.Tag != "v2.0.0" {
		t.Errorf("remembered tag = %q, want v2.0.0", g.Tag)
	}
}

// racyWindowForTests is how long a test waits for vcs.State to vouch for
// times it just wrote.
const racyWindowForTests = 150 * time.Millisecond

// A build whose flags ask git nothing, on the static base (whose go env
// waits for the flags' git answers), runs no git while the checkout is
// unchanged: it does not wait for, and so ask, git's whole state.
func TestUnchangedCheckoutWithoutGitTemplatesRunsNoGit(t *testing.T) {
	dir, _, questions := gitCheckout(t)
	fake, cache := newFakeGo(t, dir, 0), t.TempDir()
	build := func() { buildFaked(t, fake, dir, cache, "", &config.Config{DefaultBaseImage: "static"}, "./cmd/hello") }
	build()
	questions()
	build()
	if q := questions(); len(q) != 0 {
		t.Errorf("an unchanged checkout was asked %q", q)
	}
}
