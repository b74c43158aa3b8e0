package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/compare"
	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/image"
	"github.com/kilnbuild/kiln/internal/platform"
	"github.com/kilnbuild/kiln/internal/publish"
)

// This file reads ko's environment (ko v0.19.1) with ko's meaning:
//
//	KO_DOCKER_REPO=ko.local[/…]   load into the local podman or docker (as -L)
//	KO_DOCKER_REPO=kind.local[/…] load into kind (KIND_CLUSTER_NAME, default kind)
//	KO_DEFAULTPLATFORMS           platforms when --platform gives none (over .ko.yaml)
//	KO_DEFAULTENV                 .ko.yaml's defaultEnv (see koBuildDefaults)
//	KO_DEFAULTFLAGS               .ko.yaml's defaultFlags
//	KO_DEFAULTLDFLAGS             .ko.yaml's defaultLdflags
//	GOOS, GOARCH, GOARM           the platform when nothing else gives one
//	KO_DATA_DATE_EPOCH            mtime of kodata's files
//	KO_DATA_PATH_ALLOWED_ROOT     where kodata's symlinks may point
//	KO_GO_PATH                    the go command
//	KOCACHE                       the cache, when KILN_CACHE is unset (see CacheDir)

// lookupenv is getenv that tells a variable set to "" from an unset one.
func (inv Invocation) lookupenv(key string) (string, bool) {
	for i := len(inv.Env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(inv.Env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// koPlatforms is what to build, as ko decides it: --platform, else
// KO_DEFAULTPLATFORMS (commas or spaces), else .ko.yaml's defaultPlatforms
// (left to the pipeline), else GOOS/GOARCH with GOARM as the arm variant,
// else nil: the pipeline's default. GOOS, GOARCH or GOARM set at all (even
// empty) together with a platform list is refused, as ko refuses it.
func koPlatforms(inv Invocation, flag []string, cfg *config.Config) ([]string, error) {
	ps, from := flag, "--platform"
	if len(ps) == 0 {
		if s := inv.getenv("KO_DEFAULTPLATFORMS"); s != "" {
			ps, from = strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }), "KO_DEFAULTPLATFORMS"
			if _, err := platform.Parse(ps); err != nil {
				return nil, fmt.Errorf("KO_DEFAULTPLATFORMS=%q: %w", s, err)
			}
		}
	}
	if len(ps) == 0 && len(cfg.DefaultPlatforms) > 0 {
		from = "defaultPlatforms in " + cfg.Path
	} else if len(ps) == 0 {
		goos, goarch := inv.getenv("GOOS"), inv.getenv("GOARCH")
		if goos == "" || goarch == "" {
			return nil, nil
		}
		p := goos + "/" + goarch
		if goarm := inv.getenv("GOARM"); goarm != "" && strings.Contains(goarch, "arm") {
			p += "/v" + goarm
		}
		if _, err := platform.Parse([]string{p}); err != nil {
			return nil, fmt.Errorf("GOOS/GOARCH: %w", err)
		}
		return []string{p}, nil
	}
	for _, k := range []string{"GOOS", "GOARCH", "GOARM"} {
		if v, ok := inv.lookupenv(k); ok {
			return nil, fmt.Errorf("%s=%q cannot go with %s, as in ko: unset GOOS, GOARCH and GOARM, or drop the platform list", k, v, from)
		}
	}
	return ps, nil
}

// koBuildDefaults applies KO_DEFAULTENV, KO_DEFAULTFLAGS and
// KO_DEFAULTLDFLAGS over .ko.yaml's defaultEnv, defaultFlags and
// defaultLdflags, as ko's configuration reader does with its environment:
// the value is split at white space (so one entry cannot hold a space),
// it replaces the config's list, and an empty value counts as unset. A
// build entry's own flags and ldflags still replace these defaults (its
// env adds to them, kiln's rule for defaultEnv).
func koBuildDefaults(inv Invocation, cfg *config.Config) error {
	if s := strings.Fields(inv.getenv("KO_DEFAULTENV")); len(s) > 0 {
		for _, e := range s {
			if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
				return fmt.Errorf("KO_DEFAULTENV: %q is not NAME=VALUE; separate entries with spaces", e)
			}
		}
		cfg.DefaultEnv = s
	}
	if s := strings.Fields(inv.getenv("KO_DEFAULTFLAGS")); len(s) > 0 {
		cfg.DefaultFlags = s
	}
	if s := strings.Fields(inv.getenv("KO_DEFAULTLDFLAGS")); len(s) > 0 {
		cfg.DefaultLdflags = s
	}
	return nil
}

// koData reads KO_DATA_DATE_EPOCH and KO_DATA_PATH_ALLOWED_ROOT (relative
// to the working directory).
func koData(inv Invocation) (image.KoData, error) {
	var k image.KoData
	if s := inv.getenv("KO_DATA_DATE_EPOCH"); s != "" {
		t, err := epochEnv("KO_DATA_DATE_EPOCH", s)
		if err != nil {
			return k, err
		}
		k.ModTime = t
	}
	if r := inv.getenv("KO_DATA_PATH_ALLOWED_ROOT"); r != "" {
		k.AllowedRoot = abs(inv.Dir, r)
	}
	return k, nil
}

// epochEnv reads the Unix time in seconds that variable key holds.
func epochEnv(key, s string) (time.Time, error) {
	n, err := parseEpoch(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s=%q is not a Unix time in seconds", key, s)
	}
	return n, nil
}

// goBuilder runs KO_GO_PATH as the go command (a path with a separator is
// relative to the working directory); nil when unset. The go command it
// names still gets gobuild's rule: only the environment and flags kiln allows.
func goBuilder(inv Invocation) *gobuild.Builder {
	g := inv.getenv("KO_GO_PATH")
	if g == "" {
		return nil
	}
	if strings.ContainsRune(g, filepath.Separator) {
		g = abs(inv.Dir, g)
	}
	return &gobuild.Builder{Go: g, Env: inv.Env}
}

// koKindRepo is ko's domain for images loaded into kind.
const koKindRepo = "kind.local"

// inDomain reports whether repo is domain or under it.
func inDomain(repo, domain string) bool {
	return repo == domain || strings.HasPrefix(repo, domain+"/")
}

// enginePlatform is the platform ko loads out of an index into an engine
// or kind: GOOS/GOARCH, else linux/amd64.
func enginePlatform(inv Invocation) v1.Platform {
	p := v1.Platform{OS: inv.getenv("GOOS"), Architecture: inv.getenv("GOARCH")}
	if p.OS == "" {
		p.OS = "linux"
	}
	if p.Architecture == "" {
		p.Architecture = "amd64"
	}
	return p
}

// enginePublisher is the publisher for a repository in ko's local
// domains: ko.local/… loads into podman or docker, kind.local/… into kind.
func enginePublisher(inv Invocation, repo string) (publish.Publisher, *v1.Platform, bool) {
	p := enginePlatform(inv)
	switch {
	case inDomain(repo, koLocalRepo):
		return &publish.Load{Env: inv.Env, Engine: publish.Engine{Platform: &p, DigestTags: true}}, &p, true
	case inDomain(repo, koKindRepo):
		return &publish.Kind{Cluster: inv.getenv("KIND_CLUSTER_NAME"), Env: inv.Env, Engine: publish.Engine{Platform: &p}}, &p, true
	}
	return nil, nil, false
}

// engineRef is how ko prints what it loaded: REPO:HEX, the hex of the
// image loaded (for an index, its image for p).
func engineRef(repo string, a publish.Artifact, p v1.Platform) (string, error) {
	img, err := publish.PlatformImage(a, p)
	if err != nil {
		return "", err
	}
	h, err := img.Digest()
	if err != nil {
		return "", err
	}
	return repo + ":" + h.Hex, nil
}

// engineBases reads ko.local/… bases out of the local podman or docker:
// `podman image save` (or `docker save`) writes a docker archive, read
// through compare's checked docker-archive reader. Close removes the
// archives once the build is published.
type engineBases struct {
	inv     Invocation
	mu      sync.Mutex
	dir     string
	sources []*compare.Source
}

// ErrNoEngine means a ko.local base was asked for with no podman or docker
// on PATH.
var ErrNoEngine = errors.New("ko.local bases are read from the local podman or docker, and neither is on PATH")

func (e *engineBases) read(ctx context.Context, ref string) (v1.Image, error) {
	var args []string
	tool, err := exec.LookPath("podman")
	if err == nil {
		args = []string{"image", "save", "--format", "docker-archive"}
	} else if tool, err = exec.LookPath("docker"); err == nil {
		args = []string{"save"}
	} else {
		return nil, ErrNoEngine
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dir == "" {
		if e.dir, err = os.MkdirTemp("", "kiln-engine-base-*"); err != nil {
			return nil, err
		}
	}
	file := filepath.Join(e.dir, fmt.Sprintf("base-%d.tar", len(e.sources)))
	cmd := exec.CommandContext(ctx, tool, append(args, "-o", file, ref)...)
	cmd.Env = e.inv.Env
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s save: %v: %s", filepath.Base(tool), err, strings.TrimSpace(string(out)))
	}
	src, err := compare.Open(ctx, "docker-archive:"+file, compare.Options{TempDir: e.dir})
	if err != nil {
		return nil, err
	}
	e.sources = append(e.sources, src)
	return src.Image, nil
}

// Close closes the archives and removes them.
func (e *engineBases) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	for _, s := range e.sources {
		errs = append(errs, s.Close())
	}
	if e.dir != "" {
		errs = append(errs, os.RemoveAll(e.dir))
	}
	e.sources, e.dir = nil, ""
	return errors.Join(errs...)
}
