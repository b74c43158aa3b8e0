package pipeline

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

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
	m := loadGitMemory(cache, "/src/a")
	if _, ok := m.guess(); ok {
		t.Fatal("a fresh cache has a guess")
	}
	g := vcs.Git{Commit: "abc", ShortCommit: "abc", Tag: "v1.0.0"}
	m.remember(g)
	got, ok := loadGitMemory(cache, "/src/a").guess()
	if !ok || got.Tag != "v1.0.0" || got.Commit != "abc" {
		t.Fatalf("guess after remember = %+v, %v", got, ok)
	}
	if _, ok := loadGitMemory(cache, "/src/b").guess(); ok {
		t.Error("another checkout shares the guess")
	}
	if _, ok := loadGitMemory("", "/src/a").guess(); ok {
		t.Error("no cache dir, yet a guess")
	}
	loadGitMemory("", "/src/a").remember(g) // no cache: nothing written, no panic

	// A corrupt memory is no guess, and is replaced by the next answer.
	path := loadGitMemory(cache, "/src/a").path
	if err := os.WriteFile(path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	m = loadGitMemory(cache, "/src/a")
	if _, ok := m.guess(); ok {
		t.Error("corrupt memory gives a guess")
	}
	m.remember(g)
	if _, ok := loadGitMemory(cache, "/src/a").guess(); !ok {
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

// The compile that starts with last time's git answers is kept only when
// git answers the same: a new tag must reach the binary.
func TestRememberedGitAnswersNeverReachAStaleBinary(t *testing.T) {
	testutil.RequireTool(t, "git")
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, testutil.HelloModule)
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	git("add", ".")
	git("commit", "-q", "-m", "one")
	git("tag", "v1.0.0")

	environ := env(t, t.TempDir())
	cache := t.TempDir()
	runner := &recordingRunner{}
	run := func() (Result, v1.Image) {
		t.Helper()
		out := t.TempDir()
		res, err := Run(context.Background(), Options{
			Dir: dir, Env: environ, Jobs: 2, CacheDir: cache,
			Builder:   &gobuild.Builder{Env: environ, Runner: runner},
			Platforms: platform.Spec{Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}}},
			Publisher: &publish.Layout{Dir: out},
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
	_, img := run()
	if b := runner.take(); len(b) != 1 || !strings.Contains(b[0], "v1.0.0 ok") {
		t.Fatalf("first build compiled %q", b)
	}
	if !binaryHas(img, "v1.0.0") {
		t.Fatal("first binary lacks v1.0.0")
	}

	// Nothing changed: the remembered answer is right, one compile.
	first, _ := run()
	if b := runner.take(); len(b) != 1 || !strings.Contains(b[0], "v1.0.0 ok") {
		t.Fatalf("unchanged rebuild compiled %q", b)
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
	if g, _ := loadGitMemory(cache, dir).guess(); g.Tag != "v2.0.0" {
		t.Errorf("remembered tag = %q, want v2.0.0", g.Tag)
	}
}
