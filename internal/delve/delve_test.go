package delve

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/gobuild"
)

// fakeGo stands in for the go command: go build copies this test binary
// (a Go executable with a build ID) to -o, and every call is recorded.
type fakeGo struct {
	mu    sync.Mutex
	calls [][]string // env then args, per call
}

func (f *fakeGo) Run(_ context.Context, dir string, env []string, _ string, args ...string) ([]byte, error) {
	f.mu.Lock()
	f.calls = append(f.calls, append(append([]string{"dir=" + dir}, env...), args...))
	f.mu.Unlock()
	i := slices.Index(args, "-o")
	if args[0] != "build" || i < 0 {
		return nil, errors.New("unexpected go " + strings.Join(args, " "))
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		return nil, err
	}
	return nil, os.WriteFile(args[i+1], b, 0o755)
}

func TestBinaryBuildsOncePerPlatform(t *testing.T) {
	cache := t.TempDir()
	fake := &fakeGo{}
	env := []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH"), "GOPROXY=http://127.0.0.1:9/proxy", "CC=gcc"}
	newBuilder := func() *Builder { return &Builder{Go: &gobuild.Builder{Env: env, Runner: fake}, CacheDir: cache} }
	amd64 := v1.Platform{OS: "linux", Architecture: "amd64"}

	path, built, err := newBuilder().Binary(context.Background(), amd64)
	if err != nil || !built {
		t.Fatalf("first build: %q built=%v %v", path, built, err)
	}
	if want := filepath.Join(cache, "delve", Version, "linux-amd64", "dlv"); path != want {
		t.Errorf("path %q, want %q", path, want)
	}
	if len(fake.calls) != 1 {
		t.Fatalf("%d go commands, want 1", len(fake.calls))
	}
	call := fake.calls[0]
	for _, want := range []string{"build", "-trimpath", "-ldflags=-s -w", Command, "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=-mod=mod", "GOPROXY=http://127.0.0.1:9/proxy", "GOENV=off"} {
		if !slices.Contains(call, want) {
			t.Errorf("go command %q lacks %q", call, want)
		}
	}
	if slices.Contains(call, "CC=gcc") {
		t.Errorf("go command %q got CC: the rule is bypassed", call)
	}
	mod, err := os.ReadFile(filepath.Join(filepath.Dir(path), "src", "go.mod"))
	if err != nil || !strings.Contains(string(mod), "require "+Module+" "+Version+"\n") {
		t.Errorf("go.mod %q, %v", mod, err)
	}

	// A second run (a new builder, as in a new kiln process) hits the cache.
	if _, built, err := newBuilder().Binary(context.Background(), amd64); err != nil || built || len(fake.calls) != 1 {
		t.Errorf("second build: built=%v %v, %d go commands; want the cached binary", built, err, len(fake.calls))
	}
	// Another platform is another binary.
	arm, built, err := newBuilder().Binary(context.Background(), v1.Platform{OS: "linux", Architecture: "arm64"})
	if err != nil || !built || arm == path || !slices.Contains(fake.calls[1], "GOARCH=arm64") {
		t.Errorf("arm64: %q built=%v %v", arm, built, err)
	}
}

func TestBinaryIncompleteIsRebuilt(t *testing.T) {
	cache := t.TempDir()
	fake := &fakeGo{}
	b := &Builder{Go: &gobuild.Builder{Env: []string{"HOME=" + t.TempDir()}, Runner: fake}, CacheDir: cache}
	p := v1.Platform{OS: "linux", Architecture: "arm64"}
	dlv := filepath.Join(cache, "delve", Version, "linux-arm64", "dlv")
	os.MkdirAll(filepath.Dir(dlv), 0o755)
	os.WriteFile(dlv, []byte("half a binary"), 0o755) // a build killed before rename cannot leave this, but a bad disk can
	if _, built, err := b.Binary(context.Background(), p); err != nil || !built {
		t.Errorf("built=%v %v: a file that is no Go executable must be rebuilt", built, err)
	}
}

func TestBinaryUnsupported(t *testing.T) {
	b := &Builder{Go: &gobuild.Builder{}, CacheDir: t.TempDir()}
	for _, p := range []v1.Platform{{OS: "linux", Architecture: "s390x"}, {OS: "linux", Architecture: "arm", Variant: "v7"}, {OS: "windows", Architecture: "amd64"}} {
		if _, _, err := b.Binary(context.Background(), p); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%v: %v, want ErrUnsupported", p, err)
		}
	}
}

func TestEntrypoint(t *testing.T) {
	// ko v0.19.1's entrypoint for --debug.
	want := []string{"/ko-app/dlv", "exec", "--listen=:40000", "--headless", "--log", "--accept-multiclient", "--api-version=2", "--", "/ko-app/hello"}
	if got := (&Builder{}).Entrypoint("/ko-app/dlv", "/ko-app/hello"); !slices.Equal(got, want) {
		t.Errorf("entrypoint %q, want %q", got, want)
	}
}
