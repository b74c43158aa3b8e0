package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
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
	// package is neither relinked nor recompressed; "" disables it.
	CacheDir string
	Progress io.Writer // human-readable progress; nil discards
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
}

// PlatformResult describes one platform's image.
type PlatformResult struct {
	Platform    string        `json:"platform"`
	Digest      string        `json:"digest"`
	BinaryBytes int64         `json:"binaryBytes"`
	LayerBytes  int64         `json:"layerBytes"` // compressed bytes kiln added
	ImageBytes  int64         `json:"imageBytes"` // compressed bytes of all layers
	Compile     time.Duration `json:"compileNanos"`
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
	if err := gobuild.CheckToolexec(opts.Config.DefaultFlags, opts.Env); err != nil {
		return nil, err
	}
	if err := opts.Publisher.Check(ctx); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(opts.TempDir, "kiln-build-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	r := &run{opts: opts, tmp: tmp, sem: make(chan struct{}, opts.Jobs), bases: map[string]*baseOnce{}, p: &progress{w: opts.Progress}}
	if opts.CacheDir != "" {
		r.layers = &layer.Cache{Dir: filepath.Join(opts.CacheDir, "layers")}
	}
	// What every package needs is read once, while the packages resolve.
	g, gctx := errgroup.WithContext(ctx)
	setup, sctx := errgroup.WithContext(gctx)
	setup.Go(func() (err error) { r.git, err = vcs.Read(sctx, opts.Dir); return err })
	setup.Go(func() (err error) { r.goroot, err = opts.Builder.GOROOT(sctx, opts.Dir); return err })
	setup.Go(func() error { _, err := r.configBuild(sctx, ""); return err })
	r.setupDone = make(chan struct{})
	go func() { r.setupErr = setup.Wait(); close(r.setupDone) }()

	results := make([]Result, len(patterns))
	for i, pat := range patterns {
		g.Go(func() error {
			res, err := r.buildPackage(gctx, i, pat)
			results[i] = res
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
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

type run struct {
	opts   Options
	tmp    string
	git    vcs.Git
	goroot string
	sem    chan struct{}
	p      *progress
	layers *layer.Cache // nil: no cache

	// setupDone closes when git, GOROOT and the config's builds are read.
	setupDone chan struct{}
	setupErr  error

	mu    sync.Mutex
	bases map[string]*baseOnce
	// builds maps config builds to import paths, resolved once.
	buildsOnce sync.Once
	builds     map[string]config.Build
	buildsErr  error
}

type baseOnce struct {
	once sync.Once
	base *base.Base
	err  error
}

func (r *run) base(ctx context.Context, ref string) (*base.Base, error) {
	r.mu.Lock()
	b, ok := r.bases[ref]
	if !ok {
		b = &baseOnce{}
		r.bases[ref] = b
	}
	r.mu.Unlock()
	b.once.Do(func() {
		o := r.opts.Base
		o.GOROOT, o.Dir, o.LayerCache = r.goroot, r.tmp, r.layers
		b.base, b.err = base.Resolve(ctx, ref, o)
	})
	return b.base, b.err
}

// configBuild finds the builds[] entry for importPath, resolving every
// entry's dir+main the first time it is needed.
func (r *run) configBuild(ctx context.Context, importPath string) (config.Build, error) {
	r.buildsOnce.Do(func() {
		r.builds = map[string]config.Build{}
		for _, b := range r.opts.Config.Builds {
			dir := r.opts.Config.Dir
			if dir == "" {
				dir = r.opts.Dir
			}
			if b.Dir != "" {
				dir = filepath.Join(dir, b.Dir)
			}
			main := b.Main
			if main == "" {
				main = "."
			} else if !filepath.IsAbs(main) && main[0] != '.' {
				main = "./" + main
			}
			pkg, ok := gobuild.LocalPackage(dir, main)
			var err error
			if !ok {
				pkg, err = r.opts.Builder.Resolve(ctx, dir, main)
			}
			if err != nil {
				r.buildsErr = fmt.Errorf("config build %q: %w", b.ID, err)
				return
			}
			r.builds[pkg.ImportPath] = b
		}
	})
	return r.builds[importPath], r.buildsErr
}

func (r *run) platforms(cfgPlatforms []string, b *base.Base) ([]v1.Platform, error) {
	spec := r.opts.Platforms
	if !spec.All && len(spec.Platforms) == 0 {
		var err error
		if spec, err = platform.Parse(cfgPlatforms); err != nil {
			return nil, fmt.Errorf("defaultPlatforms in %s: %w", r.opts.Config.Path, err)
		}
	}
	if spec.All {
		ps, err := b.Platforms()
		if err != nil {
			return nil, err
		}
		ps = platform.Buildable(ps)
		if len(ps) == 0 {
			return nil, fmt.Errorf("base %q offers no linux platform kiln can build", b.Name())
		}
		return ps, nil
	}
	if len(spec.Platforms) == 0 {
		return []v1.Platform{platform.Host()}, nil
	}
	return spec.Platforms, nil
}

func (r *run) buildPackage(ctx context.Context, idx int, pattern string) (Result, error) {
	o := r.opts
	// A ./dir pattern's import path is known from go.mod at once; go list
	// then runs beside the compile and stays the authority on whether the
	// package exists and is main. Other patterns wait for go list.
	pkg, predicted := gobuild.LocalPackage(o.Dir, pattern)
	type listed struct {
		pkg gobuild.Package
		err error
	}
	listc := make(chan listed, 1)
	go func() {
		p, err := o.Builder.Resolve(ctx, o.Dir, pattern)
		listc <- listed{p, err}
	}()
	var (
		listOnce sync.Once
		list     listed
	)
	waitList := func() error {
		listOnce.Do(func() { list = <-listc })
		return list.err
	}
	if !predicted {
		if err := waitList(); err != nil {
			return Result{}, err
		}
		pkg = list.pkg
	}
	defer waitList() // never leave go list running
	select {
	case <-r.setupDone:
		if r.setupErr != nil {
			return Result{}, r.setupErr
		}
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	cb, err := r.configBuild(ctx, pkg.ImportPath)
	if err != nil {
		return Result{}, err
	}
	settings := o.Config.ImageFor(cb.ID, pkg.ImportPath)

	baseRef := o.Config.BaseImageOverrides[pkg.ImportPath]
	if baseRef == "" {
		baseRef = o.Config.DefaultBaseImage
	}
	if baseRef == "" {
		baseRef = DefaultBase
	}
	b, err := r.base(ctx, baseRef)
	if err != nil {
		return Result{}, err
	}
	plats, err := r.platforms(o.Config.DefaultPlatforms, b)
	if err != nil {
		return Result{}, err
	}
	baseImages := make([]v1.Image, len(plats))
	for i, p := range plats {
		if baseImages[i], err = b.Image(p); err != nil {
			return Result{}, err
		}
	}

	comp, err := r.compression(settings)
	if err != nil {
		return Result{}, err
	}
	flags, ldflags, env, caps, err := r.buildSettings(cb)
	if err != nil {
		return Result{}, err
	}
	lopts := layer.Options{Compression: comp, ModTime: o.Created, Dir: r.tmp}
	binName := path.Base(pkg.ImportPath)

	// Layers shared by every platform: kodata, then extra files.
	var shared []image.Layer
	kodata, err := image.KoDataEntries(filepath.Join(pkg.Dir, "kodata"), pkg.ModuleDir)
	if err != nil {
		return Result{}, err
	}
	if len(kodata) > 0 {
		l, err := layer.Build(ctx, kodata, lopts)
		if err != nil {
			return Result{}, err
		}
		shared = append(shared, image.Layer{Layer: l, CreatedBy: "kiln build " + pkg.ImportPath, Comment: "kodata"})
	}
	files, err := r.extraFiles(settings)
	if err != nil {
		return Result{}, err
	}
	if len(files) > 0 {
		entries, err := image.FileEntries(files)
		if err != nil {
			return Result{}, err
		}
		l, err := layer.Build(ctx, entries, lopts)
		if err != nil {
			return Result{}, err
		}
		shared = append(shared, image.Layer{Layer: l, CreatedBy: "kiln build " + pkg.ImportPath, Comment: "files"})
	}

	annotations := map[string]string{image.AnnotationBaseName: b.Name()}
	if h, ok := b.Digest(); ok {
		annotations[image.AnnotationBaseDigest] = h.String()
	}
	labels := map[string]string{}
	if r.git.RemoteURL != "" {
		annotations[image.AnnotationSource] = r.git.RemoteURL
		labels[image.AnnotationSource] = r.git.RemoteURL
	}
	if r.git.Commit != "" {
		annotations[image.AnnotationRevision] = r.git.Commit
		labels[image.AnnotationRevision] = r.git.Commit
	}
	for k, v := range settings.Labels {
		labels[k] = v
	}
	for k, v := range settings.Annotations {
		annotations[k] = v
	}

	res := Result{ImportPath: pkg.ImportPath, Base: b.Name(), Images: make([]PlatformResult, len(plats))}
	if h, ok := b.Digest(); ok {
		res.BaseDigest = h.String()
	}
	images := make([]image.Platformed, len(plats))
	g, gctx := errgroup.WithContext(ctx)
	for i, p := range plats {
		g.Go(func() error {
			select {
			case r.sem <- struct{}{}:
			case <-gctx.Done():
				return gctx.Err()
			}
			defer func() { <-r.sem }()
			label := pkg.ImportPath + " " + platform.String(p)

			bin, unlock, err := r.binaryPath(idx, i, binName, pkg, p, env, flags, ldflags)
			if err != nil {
				return err
			}
			defer unlock()
			start := time.Now()
			if err := o.Builder.Build(gctx, gobuild.Target{Package: pkg, Platform: p, Env: env, Flags: flags, Ldflags: ldflags}, bin); err != nil {
				return err
			}
			compile := time.Since(start)
			if err := waitList(); err != nil {
				return err // go list's verdict comes before anything is reported
			}
			st, err := os.Stat(bin)
			if err != nil {
				return err
			}
			r.p.printf("%s: compiled %s in %s", label, bytesize(st.Size()), secs(compile))

			start = time.Now()
			key := ""
			if id, err := gobuild.BuildID(bin); err == nil {
				key = "go-buildid:" + id
			}
			bl, err := r.layers.Build(gctx, key, image.BinaryEntries(bin, binName, caps), lopts)
			if err != nil {
				return err
			}
			lsize, _ := bl.Size()
			r.p.printf("%s: layered %s (%s) in %s", label, bytesize(lsize), comp.Algorithm, secs(time.Since(start)))

			layers := append(append([]image.Layer{}, shared...), image.Layer{Layer: bl, CreatedBy: "kiln build " + pkg.ImportPath, Comment: "binary"})
			img, err := image.Assemble(baseImages[i], layers, image.Config{
				Name: binName, Env: settings.Env, Labels: labels, Annotations: annotations,
				Args: settings.Args, User: settings.User, Workdir: settings.Workdir,
				Created: o.Created, Platform: p,
			})
			if err != nil {
				return err
			}
			images[i] = image.Platformed{Image: img, Platform: p}
			added := lsize
			for _, s := range shared {
				n, _ := s.Layer.Size()
				added += n
			}
			total, err := imageBytes(img)
			if err != nil {
				return err
			}
			d, err := img.Digest()
			if err != nil {
				return err
			}
			res.Images[i] = PlatformResult{Platform: platform.String(p), Digest: d.String(), BinaryBytes: st.Size(), LayerBytes: added, ImageBytes: total, Compile: compile}
			return nil
		})
	}
	buildErr := g.Wait()
	if err := waitList(); err != nil {
		return Result{}, err // not found or not main explains a failed build best
	}
	if buildErr != nil {
		return Result{}, buildErr
	}
	if list.pkg.ImportPath != pkg.ImportPath || list.pkg.Dir != pkg.Dir {
		return Result{}, fmt.Errorf("package %s: go list says %s in %s, go.mod implied %s in %s", pattern, list.pkg.ImportPath, list.pkg.Dir, pkg.ImportPath, pkg.Dir)
	}
	if len(images) == 1 {
		res.Artifact = images[0].Image
	} else {
		res.Artifact = image.Index(images, annotations)
	}
	return res, nil
}

func (r *run) publish(ctx context.Context, res *Result) error {
	repo := r.opts.Naming.Name(res.ImportPath)
	start := time.Now()
	ref, err := r.opts.Publisher.Publish(ctx, res.Artifact, repo, r.opts.Tags)
	if err != nil {
		return err
	}
	res.Ref = ref.String()
	res.Digest = ref.DigestStr()
	r.p.printf("%s: published %s in %s", res.ImportPath, ref, secs(time.Since(start)))
	return nil
}

func (r *run) compression(s config.Image) (layer.Compression, error) {
	if r.opts.Compress != nil {
		return *r.opts.Compress, nil
	}
	alg, err := layer.ParseAlgorithm(s.Compression)
	if err != nil {
		return layer.Compression{}, err
	}
	return layer.Compression{Algorithm: alg, Level: s.CompressionLevel}, nil
}

// buildSettings merges defaults and the build entry, and expands templates.
func (r *run) buildSettings(b config.Build) (flags, ldflags, env []string, caps []int, err error) {
	c := r.opts.Config
	flags = c.DefaultFlags
	if len(b.Flags) > 0 {
		flags = b.Flags
	}
	ldflags = []string{"-s", "-w"}
	if len(c.DefaultLdflags) > 0 {
		ldflags = c.DefaultLdflags
	}
	if len(b.Ldflags) > 0 {
		ldflags = b.Ldflags
	}
	env = append(append([]string{}, c.DefaultEnv...), b.Env...)
	if err := gobuild.CheckToolexec(flags, env); err != nil {
		return nil, nil, nil, nil, err
	}
	data := gobuild.NewTemplateData(r.opts.Env, r.git, r.opts.Created)
	if flags, err = gobuild.Expand(flags, data); err != nil {
		return nil, nil, nil, nil, err
	}
	if ldflags, err = gobuild.Expand(ldflags, data); err != nil {
		return nil, nil, nil, nil, err
	}
	set, err := config.ParseCapabilities(b.LinuxCapabilities)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	for n := 0; n < 64; n++ {
		if set.Permitted&(1<<n) != 0 {
			caps = append(caps, n)
		}
	}
	return flags, ldflags, env, caps, nil
}

func (r *run) extraFiles(s config.Image) ([]image.File, error) {
	dir := r.opts.Config.Dir
	if dir == "" {
		dir = r.opts.Dir
	}
	files := make([]image.File, 0, len(s.Files))
	for _, f := range s.Files {
		mode, err := f.FileMode()
		if err != nil {
			return nil, err
		}
		src := f.Source
		if !filepath.IsAbs(src) {
			src = filepath.Join(dir, src)
		}
		files = append(files, image.File{Source: src, Path: f.Path, Mode: mode})
	}
	return files, nil
}

func imageBytes(img v1.Image) (int64, error) {
	layers, err := img.Layers()
	if err != nil {
		return 0, err
	}
	var total int64
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// binaryPath is where a platform's binary is linked. With a cache it is a
// stable path per package, platform and settings, so `go build` finds its
// earlier output up to date and does not link again; a lock keeps two kiln
// processes from writing it at once.
func (r *run) binaryPath(idx, i int, binName string, pkg gobuild.Package, p v1.Platform, env, flags, ldflags []string) (string, func(), error) {
	if r.opts.CacheDir == "" {
		bin := filepath.Join(r.tmp, fmt.Sprintf("bin-%d-%d", idx, i), binName)
		return bin, func() {}, os.MkdirAll(filepath.Dir(bin), 0o755)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%q\x00%q\x00%q", pkg.Dir, pkg.ImportPath, platform.String(p), env, flags, ldflags)
	dir := filepath.Join(r.opts.CacheDir, "bin", hex.EncodeToString(h.Sum(nil))[:32])
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, fmt.Errorf("build cache: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", nil, fmt.Errorf("build cache: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		lock.Close()
		return "", nil, fmt.Errorf("build cache: %w", err)
	}
	return filepath.Join(dir, binName), func() { lock.Close() }, nil
}
