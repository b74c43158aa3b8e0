package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/kilnbuild/kiln/internal/base"
	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/image"
	"github.com/kilnbuild/kiln/internal/layer"
	"github.com/kilnbuild/kiln/internal/platform"
	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/vcs"
)

// DefaultBase is the base used when neither flags nor config name one.
const DefaultBase = "static"

// Options is one build request.
type Options struct {
	Dir    string         // where packages and relative paths are resolved
	Env    []string       // the caller's environment, for go and templates
	Config *config.Config // nil means an empty config
	// Platforms from --platform; empty means the config's defaultPlatforms,
	// else the host's linux architecture.
	Platforms platform.Spec
	Jobs      int                // concurrent compiles; <1 means 1
	Compress  *layer.Compression // overrides the config when set
	Created   time.Time          // image creation time and layer mtimes; zero means the Unix epoch
	Naming    Naming
	Tags      []string
	Publisher publish.Publisher
	Builder   *gobuild.Builder
	Base      base.Options // Keychain and Transport; GOROOT and Dir are filled in
	TempDir   string       // "" means the system temp dir
	// CacheDir keeps binaries and layers between runs, so an unchanged
	// package is neither relinked nor recompressed, and what git and go
	// env answered; "" disables it.
	CacheDir string
	// KoData is where kodata symlinks may point and kodata's mtime (ko's
	// KO_DATA_PATH_ALLOWED_ROOT and KO_DATA_DATE_EPOCH).
	KoData   image.KoData
	Progress io.Writer // human-readable progress; nil discards
	// Debugger, when set, goes into every image and starts the program
	// (kiln build --debug).
	Debugger Debugger
	// BeforePublish, when set, runs once after every package has built and
	// before anything is published, with the results as they will be
	// published (Repo and Digest set, Ref not yet); an error stops the run
	// with nothing published (signing checks its key here).
	BeforePublish func(ctx context.Context, results []Result) error
	// AfterPublish, when set, runs for each Result once it is published,
	// before the destination is closed: signing and attestations hook here.
	AfterPublish func(ctx context.Context, res Result) error
}

// Result describes one published package.
type Result struct {
	ImportPath string           `json:"importPath"`
	Ref        string           `json:"ref"`
	Digest     string           `json:"digest"`
	Base       string           `json:"base"`
	BaseDigest string           `json:"baseDigest,omitempty"`
	Images     []PlatformResult `json:"images"`
	Artifact   publish.Artifact `json:"-"`
	// Repo is the repository the package was published under.
	Repo string `json:"repo"`
	// Record is what went into the build, for provenance.
	Record Record `json:"-"`
	// Phases is where the build's time went.
	Phases Phases `json:"-"`

	git *vcs.Reader // asks for the rest of the git state on demand
}

// SourceGit is the full git state of the build's checkout (tree state,
// root and all), for provenance: asked of git only when called. Record.Git
// holds what the labels needed.
func (r Result) SourceGit() vcs.Git {
	if r.git == nil {
		return r.Record.Git
	}
	return r.git.Wait()
}

// Record is what a rebuild must repeat to reproduce a Result.
type Record struct {
	Platforms      []string
	Flags, Ldflags []string
	EnvNames       []string // keys of the config's build env
	GOFLAGS        string
	BaseRef        string
	Compression    layer.Compression
	Git            vcs.Git
	GOROOT         string // the Go toolchain's root, for the static base's contents; "" for other bases
	Started, Ended time.Time
}

// PlatformResult describes one platform's image.
type PlatformResult struct {
	Platform    string        `json:"platform"`
	Digest      string        `json:"digest"`
	BinaryBytes int64         `json:"binaryBytes"`
	LayerBytes  int64         `json:"layerBytes"` // compressed bytes kiln added
	ImageBytes  int64         `json:"imageBytes"` // compressed bytes of all layers
	Compile     time.Duration `json:"compileNanos"`
	// BuildInfo is the Go build information of the binary.
	BuildInfo *debug.BuildInfo `json:"-"`
}

// Run builds every package and publishes it, returning one Result per
// package in the order given. Nothing is published unless every package
// builds.
func Run(ctx context.Context, opts Options, patterns []string) ([]Result, error) {
	if opts.Config == nil {
		opts.Config = &config.Config{}
	}
	if opts.Builder == nil {
		opts.Builder = &gobuild.Builder{Env: opts.Env}
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	if opts.Jobs < 1 {
		opts.Jobs = 1
	}
	if opts.Created.IsZero() {
		opts.Created = time.Unix(0, 0).UTC()
	}
	// The caller's environment and go env file pass the builder's rule or
	// nothing starts; each package's settings are checked in buildSettings.
	if err := opts.Builder.Check(gobuild.Target{Package: gobuild.Package{Dir: opts.Dir}}); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(opts.TempDir, "kiln-build-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	r := &buildRun{opts: opts, tmp: tmp, sem: make(chan struct{}, opts.Jobs), bases: map[string]*future[*base.Base]{}, p: &progress{w: opts.Progress}, started: time.Now()}
	if opts.CacheDir != "" {
		r.layers = layerCache(opts.CacheDir)
	}
	// What every package may need is set up now and waited for only where
	// it is used; what no compile needs (the destination's check, git's
	// fingerprint of the checkout) waits for the first compile to start
	// (r.beside), so that it starts as early as it can.
	r.beside = newGate()
	r.git = startGitMemory(ctx, opts, r.beside)
	g, gctx := errgroup.WithContext(ctx)
	// The destination is checked beside the compiles, once the first has
	// started: a refusal stops them, and nothing is published before every
	// check and build is through.
	g.Go(func() error {
		select {
		case <-r.beside.ch:
		case <-gctx.Done():
			return nil // a package failed: its error is the run's
		}
		return opts.Publisher.Check(gctx)
	})
	// The toolchain's root is asked only for the static base, the one
	// input that needs it, and go env runs only when the answer is not
	// remembered from an earlier run (gobuild.GOROOTMemo); then it waits
	// for the flags' git answers so that on a small machine the compile
	// starts first.
	goroots := gobuild.GOROOTMemo{}
	if opts.CacheDir != "" {
		goroots.Dir = filepath.Join(opts.CacheDir, "goroot")
	}
	r.goroot = onDemand(func() (string, error) {
		return goroots.GOROOT(gctx, opts.Builder, opts.Dir, r.git.waitForFlags)
	})
	r.goEnv = onDemand(func() (map[string]string, error) { return opts.Builder.GoEnv(gctx, opts.Dir) }) // for {{.GoEnv}}
	r.builds = goFuture(func() (map[string]config.Build, error) { return r.resolveBuilds(gctx) })
	defer r.wait() // no go or git process outlives the run
	// A base's blobs are read lazily, while publishing, after gctx has
	// ended with g.Wait: the bases live for the run, and stop (before
	// r.wait) when it returns, early when the build fails.
	var stopBases context.CancelFunc
	r.baseCtx, stopBases = context.WithCancel(ctx)
	defer stopBases()

	results := make([]Result, len(patterns))
	for i, pat := range patterns {
		g.Go(func() error {
			defer r.beside.open() // a package that ends before compiling holds nothing back
			res, err := r.buildPackage(gctx, i, pat)
			results[i] = res
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	r.git.remember()
	for i := range results {
		res := &results[i]
		res.Repo = opts.Naming.Name(res.ImportPath)
		h, err := res.Artifact.Digest()
		if err != nil {
			return nil, err
		}
		res.Digest = h.String()
	}
	if opts.BeforePublish != nil {
		if err := opts.BeforePublish(ctx, results); err != nil {
			return nil, err
		}
	}
	for i := range results {
		if err := r.publish(ctx, &results[i]); err != nil {
			return nil, err
		}
	}
	if err := opts.Publisher.Close(ctx); err != nil {
		return nil, err
	}
	return results, nil
}

// wait blocks until every shared input has settled, so nothing started
// for this run is still running when it returns.
func (r *buildRun) wait() {
	r.git.waitIdle()
	r.goroot.waitIfStarted()
	r.goEnv.waitIfStarted()
	r.builds.wait()
	r.mu.Lock()
	bases := make([]*future[*base.Base], 0, len(r.bases))
	for _, b := range r.bases {
		bases = append(bases, b)
	}
	r.mu.Unlock()
	for _, b := range bases {
		b.wait()
	}
}

// buildRun is one call of Run: its options and what its packages share.
type buildRun struct {
	opts   Options
	tmp    string
	sem    chan struct{} // bounds concurrent compiles
	p      *progress
	layers *layer.Cache // nil: no cache

	git    *gitMemory                       // git's answers, remembered between runs
	beside *gate                            // opened by the first compile
	goroot *lazy[string]                    // asked only for the static base
	builds *future[map[string]config.Build] // config builds by import path

	goEnv   *lazy[map[string]string] // asked only for {{.GoEnv}}
	started time.Time                // {{.Date}} without SOURCE_DATE_EPOCH

	mu    sync.Mutex
	bases map[string]*future[*base.Base]
	// baseCtx bounds the bases: their manifests and their lazily read
	// blobs, through publishing. It is the one context a run keeps.
	baseCtx context.Context
}

func (r *buildRun) publish(ctx context.Context, res *Result) error {
	start := time.Now()
	ref, err := r.opts.Publisher.Publish(ctx, res.Artifact, res.Repo, r.opts.Tags)
	if err != nil {
		return err
	}
	res.Phases.Push = time.Since(start)
	res.Ref = ref.String()
	if res.Digest != ref.DigestStr() {
		return fmt.Errorf("%s: published as %s, built as %s", res.ImportPath, ref.DigestStr(), res.Digest)
	}
	r.p.printf("%s: published %s in %s", res.ImportPath, ref, secs(time.Since(start)))
	if r.opts.AfterPublish != nil {
		if err := r.opts.AfterPublish(ctx, *res); err != nil {
			return err
		}
	}
	return nil
}
