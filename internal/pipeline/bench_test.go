package pipeline

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// fakeGo stands in for the go command: go list and go env answer from the
// fixture, go build writes a binary of the given size from a fixed seed.
type fakeGo struct {
	dir    string
	goroot string
	size   int64
	self   string // this test binary
}

func (f *fakeGo) Run(_ context.Context, _ string, _ []string, _ string, args ...string) ([]byte, error) {
	switch args[0] {
	case "env":
		return []byte(f.goroot + "\n"), nil
	case "list":
		return json.Marshal(map[string]any{
			"ImportPath": "example.com/big/cmd/big", "Name": "main", "Dir": filepath.Join(f.dir, "cmd", "big"),
			"Module": map[string]string{"Path": "example.com/big", "Dir": f.dir},
		})
	case "build":
		// A real executable (this test binary, so kiln finds its Go build
		// ID) padded with seeded random bytes to the asked-for size.
		out, err := os.Create(args[2])
		if err != nil {
			return nil, err
		}
		defer out.Close()
		self, err := os.Open(f.self)
		if err != nil {
			return nil, err
		}
		defer self.Close()
		n, err := io.Copy(out, self)
		if err != nil {
			return nil, err
		}
		_, err = io.CopyN(out, rand.NewChaCha8([32]byte{1}), f.size-n)
		return nil, err
	}
	return nil, nil
}

// newFakeGo is a fakeGo for the module in dir whose go build writes this
// test binary padded to size bytes.
func newFakeGo(tb testing.TB, dir string, size int64) *fakeGo {
	tb.Helper()
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		tb.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	return &fakeGo{dir: dir, goroot: strings.TrimSpace(string(goroot)), size: size, self: self}
}

// buildFaked runs the pipeline on pattern in dir with go faked by fake,
// publishing to the layout out ("" for a new one), with cache as CacheDir.
func buildFaked(tb testing.TB, fake gobuild.Runner, dir, cache, out string, cfg *config.Config, pattern string) []Result {
	tb.Helper()
	if out == "" {
		out = tb.TempDir()
	}
	res, err := Run(context.Background(), Options{
		Dir: dir, CacheDir: cache, Config: cfg,
		Builder:   &gobuild.Builder{Runner: fake},
		Naming:    Naming{Repo: LocalRepo},
		Publisher: &publish.ToLayout{Dir: out},
	}, []string{pattern})
	if err != nil {
		tb.Fatal(err)
	}
	return res
}

// BenchmarkBuild100MBBinary measures kiln's own work for a 100 MB binary:
// layering (read once, streamed), assembly and writing to a layout. The
// go command is faked, so peak RSS is kiln's alone.
func BenchmarkBuild100MBBinary(b *testing.B) {
	dir := b.TempDir()
	testutil.WriteFiles(b, dir, map[string]string{"go.mod": "module example.com/big\n\ngo 1.22\n", "cmd/big/.keep": ""})
	fake := newFakeGo(b, dir, 100<<20)
	b.SetBytes(fake.size)
	b.ReportAllocs()
	for b.Loop() {
		buildFaked(b, fake, dir, "", "", nil, "./cmd/big")
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MiB")
	}
}

// upToDateGo is fakeGo whose go build, like the real one, leaves an
// output that is already there alone.
type upToDateGo struct{ fakeGo }

func (f *upToDateGo) Run(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	if args[0] == "build" {
		if _, err := os.Stat(args[2]); err == nil {
			return nil, nil
		}
	}
	return f.fakeGo.Run(ctx, dir, env, name, args...)
}

// BenchmarkWarmBuildGitMemory is a warm rebuild of an unchanged git
// checkout whose ldflags ask {{.Git.Tag}}, with the go command faked so
// that only kiln's own wait is measured: "remembered" keeps the git
// memory between builds (git is not run), "forgotten" deletes it before
// each build (git is asked and the compile waits for its answer).
func BenchmarkWarmBuildGitMemory(b *testing.B) {
	testutil.RequireTool(b, "git")
	dir := b.TempDir()
	testutil.WriteFiles(b, dir, testutil.HelloModule)
	for _, args := range [][]string{{"init", "-q"}, {"add", "."}, {"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "one"}, {"tag", "v1.0.0"}} {
		if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			b.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	time.Sleep(2 * racyWindowForTests) // let vcs.State vouch for the commit's times
	fake := &upToDateGo{*newFakeGo(b, dir, 0)}
	cfg := &config.Config{DefaultBaseImage: "scratch", Builds: []config.Build{{
		ID: "hello", Main: "./cmd/hello", Ldflags: []string{"-X main.version={{.Git.Tag}}"},
	}}}
	for _, keep := range []bool{true, false} {
		name := map[bool]string{true: "remembered", false: "forgotten"}[keep]
		b.Run(name, func(b *testing.B) {
			cache, out := b.TempDir(), b.TempDir()
			build := func() { buildFaked(b, fake, dir, cache, out, cfg, "./cmd/hello") }
			build() // warm: the binary, its layer and the memory are there
			for b.Loop() {
				if !keep {
					b.StopTimer()
					if err := os.RemoveAll(filepath.Join(cache, "git")); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				build()
			}
		})
	}
}
