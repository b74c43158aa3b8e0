package gobuild

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/oneline"
	"github.com/kilnbuild/kiln/internal/platform"
)

// Runner runs a command and returns its standard output. A failing command
// returns an error that carries its standard error. It is the seam that lets
// tests replace the go command.
type Runner interface {
	Run(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error)
}

// ExecRunner runs commands with os/exec.
type ExecRunner struct{}

var _ Runner = ExecRunner{}

// Run implements Runner.
func (ExecRunner) Run(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), &CommandError{Err: err, Output: strings.TrimSpace(stderr.String())}
	}
	return stdout.Bytes(), nil
}

// CommandError is a failed command with what it printed on stderr.
type CommandError struct {
	Err    error
	Output string
}

func (e *CommandError) Error() string {
	if e.Output == "" {
		return e.Err.Error()
	}
	return e.Output
}

func (e *CommandError) Unwrap() error { return e.Err }

// Errors a caller can classify with errors.Is.
var (
	ErrNotFound = errors.New("package not found")
	ErrNotMain  = errors.New("not a main package")
	ErrCompile  = errors.New("compile failed")
	ErrBadFlag  = errors.New("bad build flag")
)

// Builder compiles main packages with the go command, and runs it with
// nothing but what the rule in rule.go lets through.
type Builder struct {
	// Go is the go command; "" means "go" from PATH.
	Go string
	// Env is the caller's environment. The go command gets only the part
	// of it the rule passes (see environ), and no go env file.
	Env []string
	// Runner runs commands; nil means ExecRunner.
	Runner Runner

	once sync.Once // reads Env and the go env file once
	amb  ambient
}

func (b *Builder) run(ctx context.Context, dir string, env []string, args ...string) ([]byte, error) {
	r := b.Runner
	if r == nil {
		r = ExecRunner{}
	}
	goCmd := b.Go
	if goCmd == "" {
		goCmd = "go"
	}
	return r.Run(ctx, dir, env, goCmd, args...)
}

// Package is a resolved main package.
type Package struct {
	ImportPath string
	Name       string
	Dir        string // the package's source directory
	ModulePath string
	ModuleDir  string // root of the package's module
	GoVersion  string // the module's go directive
}

type listed struct {
	ImportPath string
	Name       string
	Dir        string
	Module     *struct {
		Path      string
		Dir       string
		GoVersion string
	}
	Error *struct{ Err string }
}

// Resolve finds the package pattern (an import path or a ./dir path,
// relative to dir) and checks that it is a main package.
func (b *Builder) Resolve(ctx context.Context, dir, pattern string) (Package, error) {
	pattern = strings.TrimPrefix(pattern, "ko://")
	env, err := b.environ(dir, "", nil)
	if err != nil {
		return Package{}, err
	}
	out, err := b.run(ctx, dir, env, "list", "-e", "-json=ImportPath,Name,Dir,Module,Error", "--", pattern)
	if err != nil {
		return Package{}, fmt.Errorf("package %s not found: %s: %w", pattern, oneline.First(err.Error()), ErrNotFound)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	var pkgs []listed
	for dec.More() {
		var p listed
		if err := dec.Decode(&p); err != nil {
			return Package{}, fmt.Errorf("reading go list output for %s: %w", pattern, err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) != 1 {
		return Package{}, fmt.Errorf("%s matches %d packages: name one main package: %w", pattern, len(pkgs), ErrNotFound)
	}
	p := pkgs[0]
	if p.Error != nil {
		return Package{}, fmt.Errorf("package %s not found: %s: %w", pattern, oneline.First(p.Error.Err), ErrNotFound)
	}
	if p.Name != "main" {
		return Package{}, fmt.Errorf("package %s is package %s, not main: kiln builds commands: %w", pattern, p.Name, ErrNotMain)
	}
	pkg := Package{ImportPath: p.ImportPath, Name: p.Name, Dir: p.Dir}
	if p.Module != nil {
		pkg.ModulePath, pkg.ModuleDir, pkg.GoVersion = p.Module.Path, p.Module.Dir, p.Module.GoVersion
	}
	return pkg, nil
}

// Target is one compile: a package for a platform with its settings.
type Target struct {
	Package  Package
	Platform v1.Platform
	// Env is the build's own settings (a .ko.yaml's env), limited by the
	// rule; the platform's GOOS/GOARCH/GOARM/GOAMD64 always win.
	Env     []string
	Flags   []string // extra go build flags, already expanded
	Ldflags []string // already expanded; joined with spaces
}

// Build compiles t into the file out.
func (b *Builder) Build(ctx context.Context, t Target, out string) error {
	env, err := b.environ(t.Package.Dir, t.Package.ModuleDir, &t)
	if err != nil {
		return err
	}

	args := []string{"build", "-o", out, "-trimpath"}
	if len(t.Ldflags) > 0 {
		args = append(args, "-ldflags="+strings.Join(t.Ldflags, " "))
	}
	args = append(args, t.Flags...)
	args = append(args, "--", t.Package.ImportPath)
	if _, err := b.run(ctx, t.Package.Dir, env, args...); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("compiling %s for %s: %w:\n%s", t.Package.ImportPath, platform.String(t.Platform), ErrCompile, err.Error())
	}
	return nil
}

// GOROOT asks the go command for its root (where lib/time/zoneinfo.zip is).
func (b *Builder) GOROOT(ctx context.Context, dir string) (string, error) {
	env, err := b.environ(dir, "", nil)
	if err != nil {
		return "", err
	}
	out, err := b.run(ctx, dir, env, "env", "GOROOT")
	if err != nil {
		return "", fmt.Errorf("running go env GOROOT: %s", oneline.First(err.Error()))
	}
	return strings.TrimSpace(string(out)), nil
}
