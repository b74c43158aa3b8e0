package delve

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/platform"
)

// The Delve release kiln builds, from the module proxy of the caller's
// environment (GOPROXY), checked against go.sum's database as go does.
const (
	Module  = "github.com/go-delve/delve"
	Version = "v1.27.2"
	Command = Module + "/cmd/dlv"
)

// Port is where Delve listens in the container.
const Port = 40000

// Args are ko's arguments to dlv for --debug (ko v0.19.1): the image's
// entrypoint is dlv, these, then the program. Delve waits for a client
// before it starts the program, as in ko.
var Args = []string{"exec", fmt.Sprintf("--listen=:%d", Port), "--headless", "--log", "--accept-multiclient", "--api-version=2", "--"}

// ErrUnsupported means Delve cannot debug programs on the platform.
var ErrUnsupported = errors.New("Delve does not run on this platform")

// Supports reports whether --debug can wrap a program for p: linux/amd64
// and linux/arm64, as in ko.
func Supports(p v1.Platform) bool {
	return p.OS == "linux" && (p.Architecture == "amd64" || p.Architecture == "arm64")
}

// Builder builds dlv with Go (its rule: CGO_ENABLED=0, -trimpath, the
// caller's GOPROXY and GOSUMDB) into
//
//	CacheDir/
//	└── delve/v1.27.2/linux-amd64/
//	    ├── src/go.mod   a module that requires Delve (go build completes it and go.sum)
//	    ├── .lock        held while building: one build per platform at a time
//	    └── dlv          the binary, renamed into place when complete
//
// and reuses dlv from there afterwards; without CacheDir it builds into
// TempDir every time.
type Builder struct {
	Go       *gobuild.Builder
	CacheDir string
	TempDir  string
}

// Binary is the path of dlv for p, built unless the cache holds it;
// built reports whether it was.
func (b *Builder) Binary(ctx context.Context, p v1.Platform) (path string, built bool, err error) {
	if !Supports(p) {
		return "", false, fmt.Errorf("--debug for %s: %w: Delve runs on linux/amd64 and linux/arm64", platform.String(p), ErrUnsupported)
	}
	root := b.CacheDir
	if root == "" {
		if root, err = os.MkdirTemp(b.TempDir, "delve-*"); err != nil {
			return "", false, err
		}
	}
	dir := filepath.Join(root, "delve", Version, strings.ReplaceAll(platform.String(p), "/", "-"))
	if err := os.MkdirAll(filepath.Join(dir, "src"), 0o755); err != nil {
		return "", false, fmt.Errorf("delve cache: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", false, fmt.Errorf("delve cache: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", false, fmt.Errorf("delve cache: %w", err)
	}
	path = filepath.Join(dir, "dlv")
	if _, err := gobuild.BuildID(path); err == nil {
		return path, false, nil
	}
	src := filepath.Join(dir, "src")
	mod := "module kiln.invalid/delve\n\ngo 1.25\n\nrequire " + Module + " " + Version + "\n"
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte(mod), 0o644); err != nil {
		return "", false, fmt.Errorf("delve cache: %w", err)
	}
	t := gobuild.Target{
		Package:  gobuild.Package{ImportPath: Command, Name: "main", Dir: src, ModulePath: "kiln.invalid/delve", ModuleDir: src},
		Platform: p,
		// -mod=mod: go fetches Delve and its requirements and writes go.sum.
		Env:     []string{"GOFLAGS=-mod=mod"},
		Ldflags: []string{"-s", "-w"},
	}
	tmp := path + ".tmp"
	if err := b.Go.Build(ctx, t, tmp); err != nil {
		os.Remove(tmp)
		return "", false, fmt.Errorf("building Delve %s: %w", Version, err)
	}
	if _, err := gobuild.BuildID(tmp); err != nil {
		os.Remove(tmp)
		return "", false, fmt.Errorf("building Delve %s: go build wrote no Go executable: %w", Version, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", false, fmt.Errorf("delve cache: %w", err)
	}
	return path, true, nil
}

// Supports reports whether Delve runs on p (see the function Supports).
func (b *Builder) Supports(p v1.Platform) bool { return Supports(p) }

// Entrypoint is how ko starts the program at app under Delve at dlv.
func (b *Builder) Entrypoint(dlv, app string) []string {
	return append(append([]string{dlv}, Args...), app)
}
