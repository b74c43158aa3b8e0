package gobuild

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

type fakeRunner struct {
	dir  string
	env  []string
	args []string
	err  error
}

func (f *fakeRunner) Run(_ context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	f.dir, f.env, f.args = dir, env, append([]string{name}, args...)
	return nil, f.err
}

func TestBuildCommandLine(t *testing.T) {
	r := &fakeRunner{}
	b := &Builder{Env: []string{"HOME=/h", "GOOS=windows", "CC=cc", "GOFLAGS=-mod=mod -count=1", "PATH=/bin"}, Runner: r}
	err := b.Build(context.Background(), Target{
		Package:  Package{ImportPath: "example.com/m/cmd/a", Dir: "/src/cmd/a"},
		Platform: v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"},
		Env:      []string{"GOEXPERIMENT=x", "CGO_ENABLED=0"},
		Flags:    []string{"-tags=netgo"},
		Ldflags:  []string{"-s", "-w", "-X main.v=1"},
	}, "/out/a")
	if err != nil {
		t.Fatal(err)
	}
	wantArgs := []string{"go", "build", "-o", "/out/a", "-trimpath", "-ldflags=-s -w -X main.v=1", "-tags=netgo", "--", "example.com/m/cmd/a"}
	if !reflect.DeepEqual(r.args, wantArgs) {
		t.Errorf("args = %q\nwant %q", r.args, wantArgs)
	}
	// Only allowed variables pass, GOFLAGS keeps go build's flags, and the
	// platform comes last.
	wantEnv := []string{"HOME=/h", "PATH=/bin", "GOEXPERIMENT=x", "GOENV=off", "GOFLAGS=-mod=mod", "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm", "GOARM=7"}
	if !reflect.DeepEqual(r.env, wantEnv) {
		t.Errorf("env = %q\nwant %q", r.env, wantEnv)
	}
	if r.dir != "/src/cmd/a" {
		t.Errorf("dir = %q", r.dir)
	}
}

func TestBuildCompileErrorShowsOutput(t *testing.T) {
	r := &fakeRunner{err: &CommandError{Err: errors.New("exit status 1"), Output: "./main.go:3:1: syntax error"}}
	b := &Builder{Runner: r}
	err := b.Build(context.Background(), Target{Package: Package{ImportPath: "x"}, Platform: v1.Platform{OS: "linux", Architecture: "amd64"}}, "/o")
	if !errors.Is(err, ErrCompile) || !strings.Contains(err.Error(), "syntax error") {
		t.Errorf("err = %v", err)
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/m\n\ngo 1.22\n")
	write("cmd/app/main.go", "package main\nfunc main() {}\n")
	write("lib/lib.go", "package lib\n")
	b := &Builder{Env: os.Environ()}
	ctx := context.Background()

	pkg, err := b.Resolve(ctx, dir, "./cmd/app")
	if err != nil {
		t.Fatal(err)
	}
	if pkg.ImportPath != "example.com/m/cmd/app" || pkg.ModulePath != "example.com/m" || pkg.ModuleDir != dir {
		t.Errorf("pkg = %+v", pkg)
	}
	if pkg2, err := b.Resolve(ctx, dir, "ko://example.com/m/cmd/app"); err != nil || pkg2.Dir != pkg.Dir {
		t.Errorf("ko:// form: %+v %v", pkg2, err)
	}
	if _, err := b.Resolve(ctx, dir, "./lib"); !errors.Is(err, ErrNotMain) {
		t.Errorf("library: err = %v, want ErrNotMain", err)
	}
	if _, err := b.Resolve(ctx, dir, "./nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing: err = %v, want ErrNotFound", err)
	}
	if _, err := b.Resolve(ctx, dir, "./..."); !errors.Is(err, ErrNotFound) {
		t.Errorf("pattern: err = %v, want ErrNotFound", err)
	}
}

func TestBuildID(t *testing.T) {
	dir := t.TempDir()
	testWrite(t, dir, map[string]string{"go.mod": "module example.com/b\n\ngo 1.22\n", "main.go": "package main\nfunc main() {}\n"})
	b := &Builder{Env: os.Environ()}
	ctx := context.Background()
	pkg, err := b.Resolve(ctx, dir, ".")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "bin")
	if err := b.Build(ctx, Target{Package: pkg, Platform: v1.Platform{OS: "linux", Architecture: "arm64"}, Ldflags: []string{"-s", "-w"}}, out); err != nil {
		t.Fatal(err)
	}
	id, err := BuildID(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := exec.Command("go", "tool", "buildid", out).Output()
	if err != nil {
		t.Fatal(err)
	}
	if id != strings.TrimSpace(string(want)) {
		t.Errorf("BuildID = %q, go tool buildid = %q", id, want)
	}
	if _, err := BuildID(filepath.Join(dir, "go.mod")); err == nil {
		t.Error("BuildID of a text file: no error")
	}
}

func testWrite(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLocalPackageAgreesWithGoList(t *testing.T) {
	dir := t.TempDir()
	testWrite(t, dir, map[string]string{"go.mod": "module example.com/m\n\ngo 1.22\n"})
	for _, sub := range []string{"cmd/app", "tools/x"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
		testWrite(t, filepath.Join(dir, sub), map[string]string{"main.go": "package main\nfunc main() {}\n"})
	}
	b := &Builder{Env: os.Environ()}
	for _, tt := range []struct{ dir, pattern string }{
		{dir, "./cmd/app"}, {dir, "./tools/x"}, {filepath.Join(dir, "cmd"), "./app"}, {filepath.Join(dir, "cmd/app"), "."},
		{dir, filepath.Join(dir, "cmd/app")}, {filepath.Join(dir, "tools/x"), "../../cmd/app"},
	} {
		got, ok := LocalPackage(tt.dir, tt.pattern)
		if !ok {
			t.Errorf("LocalPackage(%s, %s): not predicted", tt.dir, tt.pattern)
			continue
		}
		want, err := b.Resolve(context.Background(), tt.dir, tt.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got.ImportPath != want.ImportPath || got.Dir != want.Dir || got.ModuleDir != want.ModuleDir || got.ModulePath != want.ModulePath {
			t.Errorf("LocalPackage(%s) = %+v, go list = %+v", tt.pattern, got, want)
		}
	}
	for _, p := range []string{"example.com/m/cmd/app", "./...", "fmt"} {
		if _, ok := LocalPackage(dir, p); ok {
			t.Errorf("LocalPackage(%q) predicted an import-path pattern", p)
		}
	}
	if _, ok := LocalPackage(t.TempDir(), "."); ok {
		t.Error("no go.mod: predicted anyway")
	}
}
