package request

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/pipeline"
	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/sign"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// goEnv is the Go environment of the tests: the machine's build cache,
// no network.
func goEnv() []string {
	return append(os.Environ(), "GOFLAGS=-modcacherw", "GOPROXY=off")
}

// countingRunner runs the real go command and counts its compiles.
type countingRunner struct {
	mu     sync.Mutex
	builds int
}

func (c *countingRunner) Run(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	if len(args) > 0 && args[0] == "build" {
		c.mu.Lock()
		c.builds++
		c.mu.Unlock()
	}
	return gobuild.ExecRunner{}.Run(ctx, dir, env, name, args...)
}

// layoutEnv builds the hello module into a fresh OCI layout.
func layoutEnv(t *testing.T) (Env, *countingRunner) {
	t.Helper()
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, testutil.HelloModule)
	out := t.TempDir()
	environ := goEnv()
	runner := &countingRunner{}
	return Env{
		Dir: dir, Env: environ,
		Publisher: &publish.ToLayout{Dir: out}, Repo: pipeline.LocalRepo, Signatures: &sign.LayoutStore{Dir: out},
		Builder: &gobuild.Builder{Env: environ, Runner: runner}, KilnVersion: "test",
	}, runner
}

// needsCompile skips a test that runs go build in -short.
func needsCompile(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("compiles: not in -short")
	}
}
