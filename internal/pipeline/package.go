package pipeline

import (
	"context"
	"debug/buildinfo"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/kilnbuild/kiln/internal/base"
	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/image"
	"github.com/kilnbuild/kiln/internal/layer"
	"github.com/kilnbuild/kiln/internal/platform"
	"github.com/kilnbuild/kiln/internal/vcs"
)

// pkgBuild is one package's build: what every platform of it shares.
type pkgBuild struct {
	r        *buildRun
	idx      int
	pkg      gobuild.Package
	image    config.Image
	baseF    *future[*base.Base]
	listed   func() error   // go list's verdict, waited for once
	settings []*gitSettings // per platform: expanded with git's answers, and maybe a guess
	lopts    layer.Options
	binName  string
	compiles span // every go build of the package
	layers   span // building its layers and assembling its images
}

func (r *buildRun) buildPackage(ctx context.Context, idx int, pattern string) (Result, error) {
	o := r.opts
	started := time.Now()
	// A ./dir pattern's import path is known from go.mod at once, and a
	// successful build proves the package exists and is main (it links an
	// executable); go list runs only when that is in doubt, to explain it.
	// Other patterns ask go list first.
	var (
		listOnce sync.Once
		list     *future[gobuild.Package]
	)
	runList := func() *future[gobuild.Package] {
		listOnce.Do(func() {
			list = goFuture(func() (gobuild.Package, error) { return o.Builder.Resolve(ctx, o.Dir, pattern) })
		})
		return list
	}
	pkg, predicted := gobuild.LocalPackage(o.Dir, pattern)
	if !predicted {
		var err error
		if pkg, err = runList().wait(); err != nil {
			return Result{}, err
		}
	}
	b := &pkgBuild{r: r, idx: idx, pkg: pkg, binName: path.Base(pkg.ImportPath)}
	b.listed = func() error { _, err := runList().wait(); return err }

	builds, err := r.builds.wait()
	if err != nil {
		return Result{}, err
	}
	cb := builds[pkg.ImportPath]
	b.image = o.Config.ImageFor(cb.ID, pkg.ImportPath)
	baseRef := r.baseRef(pkg.ImportPath)
	b.baseF = r.baseFor(r.baseCtx, baseRef) // not ctx: the base is read until publishing ends
	plats, err := r.platforms(b.baseF)
	if err != nil {
		return Result{}, err
	}
	comp, err := r.compression(b.image)
	if err != nil {
		return Result{}, err
	}
	b.lopts = layer.Options{Compression: comp, ModTime: o.Created, Dir: r.tmp}
	// The compile starts with what git answered last time, if that is
	// remembered, and is kept only if git answers the same now.
	// Templates expand per platform, as ko's ({{.Env.GOARCH}}).
	b.settings = make([]*gitSettings, len(plats))
	for i, p := range plats {
		b.settings[i] = r.git.settings(func(git func(...string) vcs.Git) (settings, error) {
			return r.buildSettings(pkg, cb, p, git)
		})
	}

	// The platforms compile while the shared layers are written.
	images := make([]image.Platformed, len(plats))
	results := make([]PlatformResult, len(plats))
	var shared []image.Layer
	sharedReady := make(chan struct{})
	g, gctx := errgroup.WithContext(ctx)
	if baseRef != base.StaticName && baseRef != base.ScratchName {
		// A remote or layout base can be missing, refused or lack a
		// platform: that is found out beside the compiles, and stops them.
		g.Go(func() error { return checkBase(gctx, b.baseF, plats) })
	}
	g.Go(func() error {
		defer close(sharedReady)
		defer b.layers.since(time.Now())
		var err error
		shared, err = b.sharedLayers(gctx)
		return err
	})
	var meta struct {
		once        sync.Once
		labels      map[string]string
		annotations map[string]string
	}
	for i, p := range plats {
		g.Go(func() error {
			c, err := b.compile(gctx, i, p)
			if err != nil {
				return err
			}
			bl, err := b.binaryLayer(gctx, c.bin, c.buildID, p)
			if err != nil {
				return err
			}
			dl, entrypoint, err := b.debugger(gctx, p)
			if err != nil {
				return err
			}
			bs, err := b.baseF.wait()
			if err != nil {
				return err
			}
			baseImg, err := bs.Image(p)
			if err != nil {
				return err
			}
			select {
			case <-sharedReady:
			case <-gctx.Done():
				return gctx.Err()
			}
			meta.once.Do(func() { meta.labels, meta.annotations = b.metadata(bs) })
			annotations, err := platformAnnotations(meta.annotations, bs, baseImg)
			if err != nil {
				return err
			}
			defer b.layers.since(time.Now())
			layers := append(append([]image.Layer{}, shared...), image.Layer{Layer: bl, CreatedBy: "kiln build " + pkg.ImportPath, Comment: "binary"})
			if dl != nil {
				layers = append(layers, *dl)
			}
			img, err := image.Assemble(baseImg, layers, image.Config{
				Name: b.binName, Entrypoint: entrypoint, Env: b.image.Env, Labels: meta.labels, Annotations: annotations,
				Args: b.image.Args, User: b.image.User, Workdir: b.image.Workdir,
				Created: o.Created, Platform: p,
			})
			if err != nil {
				return err
			}
			images[i] = image.Platformed{Image: img, Platform: p}
			results[i], err = describe(img, p, c.bin, bl, shared, c.took)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return Result{}, err
	}

	bs, _ := b.baseF.wait()
	s, _ := b.settings[0].wait() // the first platform's, for the record
	res := Result{ImportPath: pkg.ImportPath, Base: bs.Name(), Images: results, Record: Record{
		Flags: s.flags, Ldflags: s.ldflags, EnvNames: envNames(s.env), GOFLAGS: o.Builder.GOFLAGS(),
		BaseRef: baseRef, Compression: comp, Started: started, Ended: time.Now(),
	}, Phases: Phases{Compile: b.compiles.duration(), Layer: b.layers.duration()}}
	for _, p := range plats {
		res.Record.Platforms = append(res.Record.Platforms, platform.String(p))
	}
	res.Record.Git = r.git.ask(labelGitFields...)
	res.git = r.git.reader
	if baseRef == base.StaticName {
		res.Record.GOROOT, _ = r.goroot.wait()
	}
	if h, ok := bs.Digest(); ok {
		res.BaseDigest = h.String()
	}
	if len(images) == 1 {
		res.Artifact = images[0].Image
	} else {
		res.Artifact = image.Index(images, meta.annotations)
	}
	return res, nil
}

// checkBase fails when the base cannot be had or lacks one of plats. It
// stops waiting when ctx ends: a failed compile does not wait for a slow
// registry (the base's own context lasts until the run ends).
func checkBase(ctx context.Context, baseF *future[*base.Base], plats []v1.Platform) error {
	select {
	case <-baseF.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	bs, err := baseF.wait()
	if err != nil {
		return err
	}
	for _, p := range plats {
		if _, err := bs.Image(p); err != nil {
			return err
		}
	}
	return nil
}

// compiled is one platform's linked binary.
type compiled struct {
	bin, buildID string
	took         time.Duration
}

// compile links the binary for p with the settings git's answers give
// (see gitSettings.compile for the head start remembered answers give).
func (b *pkgBuild) compile(ctx context.Context, i int, p v1.Platform) (compiled, error) {
	c, err := b.settings[i].compile(ctx, func(ctx context.Context, s settings) (compiled, error) {
		return b.compileWith(ctx, i, p, s)
	})
	if err != nil {
		return c, err
	}
	st, err := os.Stat(c.bin)
	if err != nil {
		return c, err
	}
	b.r.p.printf("%s %s: compiled %s in %s", b.pkg.ImportPath, platform.String(p), bytesize(st.Size()), secs(c.took))
	return c, nil
}

// compileWith links the binary for p with s, holding one of the -j compile
// slots.
func (b *pkgBuild) compileWith(ctx context.Context, i int, p v1.Platform, s settings) (compiled, error) {
	r := b.r
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return compiled{}, ctx.Err()
	}
	defer func() { <-r.sem }()
	defer r.beside.open() // also when it fails before go build starts
	t := gobuild.Target{Package: b.pkg, Platform: p, Env: s.env, Flags: s.flags, Ldflags: s.ldflags}
	bin, unlock, err := r.binaryPath(b.idx, i, b.binName, b.pkg, p, t.Env, t.Flags, t.Ldflags)
	if err != nil {
		return compiled{}, err
	}
	defer unlock()
	start := time.Now()
	r.beside.open()
	err = r.opts.Builder.Build(ctx, t, bin)
	b.compiles.since(start)
	if err != nil {
		if ctx.Err() != nil {
			return compiled{}, ctx.Err()
		}
		if lerr := b.listed(); lerr != nil {
			return compiled{}, lerr // not found or not main explains a failed build best
		}
		return compiled{}, err
	}
	took := time.Since(start)
	buildID, err := gobuild.BuildID(bin)
	if err != nil {
		// go build of a non-main package writes an archive, not a program.
		if lerr := b.listed(); lerr != nil {
			return compiled{}, lerr
		}
		return compiled{}, fmt.Errorf("%s: go build wrote no Go executable for %s: %v", b.pkg.ImportPath, platform.String(p), err)
	}
	if r.opts.CacheDir != "" {
		if bin, err = r.privateLink(bin); err != nil {
			return compiled{}, err
		}
	}
	return compiled{bin: bin, buildID: buildID, took: took}, nil
}

// binaryLayer layers the binary, from the cache when its build ID was seen.
func (b *pkgBuild) binaryLayer(ctx context.Context, bin, buildID string, p v1.Platform) (v1.Layer, error) {
	start := time.Now()
	defer b.layers.since(start)
	s, err := b.settings[0].wait() // caps are the same for every platform
	if err != nil {
		return nil, err
	}
	l, err := b.r.layers.Build(ctx, "go-buildid:"+buildID, image.BinaryEntries(bin, b.binName, s.caps), b.lopts)
	if err != nil {
		return nil, err
	}
	size, _ := l.Size()
	b.r.p.printf("%s %s: layered %s (%s) in %s", b.pkg.ImportPath, platform.String(p), bytesize(size), b.lopts.Compression.Algorithm, secs(time.Since(start)))
	return l, nil
}

// sharedLayers are the layers every platform gets: kodata, then extra files.
func (b *pkgBuild) sharedLayers(ctx context.Context) ([]image.Layer, error) {
	var shared []image.Layer
	kodata, err := b.r.opts.KoData.Entries(filepath.Join(b.pkg.Dir, "kodata"), b.pkg.ModuleDir)
	if err != nil {
		return nil, err
	}
	files, err := b.r.extraFiles(b.image)
	if err != nil {
		return nil, err
	}
	fileEntries, err := image.FileEntries(files)
	if err != nil {
		return nil, err
	}
	kodataOpts := b.lopts
	if t := b.r.opts.KoData.ModTime; !t.IsZero() {
		kodataOpts.ModTime = t
	}
	for _, part := range []struct {
		entries []layer.Entry
		comment string
		opts    layer.Options
	}{{kodata, "kodata", kodataOpts}, {fileEntries, "files", b.lopts}} {
		if len(part.entries) == 0 {
			continue
		}
		l, err := layer.Build(ctx, part.entries, part.opts)
		if err != nil {
			return nil, err
		}
		shared = append(shared, image.Layer{Layer: l, CreatedBy: "kiln build " + b.pkg.ImportPath, Comment: part.comment})
	}
	return shared, nil
}

// labelGitFields are the git fields every image's labels carry.
var labelGitFields = []string{"Commit", "RemoteURL"}

// metadata is the labels and annotations of every image of the package.
func (b *pkgBuild) metadata(bs *base.Base) (labels, annotations map[string]string) {
	annotations = map[string]string{image.AnnotationBaseName: bs.Name()}
	if h, ok := bs.Digest(); ok {
		annotations[image.AnnotationBaseDigest] = h.String()
	}
	labels = map[string]string{}
	git := b.r.git.ask(labelGitFields...)
	if git.RemoteURL != "" {
		annotations[image.AnnotationSource] = git.RemoteURL
		labels[image.AnnotationSource] = git.RemoteURL
	}
	if git.Commit != "" {
		annotations[image.AnnotationRevision] = git.Commit
		labels[image.AnnotationRevision] = git.Commit
	}
	for k, v := range b.image.Labels {
		labels[k] = v
	}
	for k, v := range b.image.Annotations {
		annotations[k] = v
	}
	return labels, annotations
}

func describe(img v1.Image, p v1.Platform, bin string, bl v1.Layer, shared []image.Layer, compile time.Duration) (PlatformResult, error) {
	st, err := os.Stat(bin)
	if err != nil {
		return PlatformResult{}, err
	}
	added, _ := bl.Size()
	for _, s := range shared {
		n, _ := s.Layer.Size()
		added += n
	}
	total, err := imageBytes(img)
	if err != nil {
		return PlatformResult{}, err
	}
	d, err := img.Digest()
	if err != nil {
		return PlatformResult{}, err
	}
	bi, _ := buildinfo.ReadFile(bin) // nil when the binary carries none
	return PlatformResult{Platform: platform.String(p), Digest: d.String(), BinaryBytes: st.Size(), LayerBytes: added, ImageBytes: total, Compile: compile, BuildInfo: bi}, nil
}

func envNames(env []string) []string {
	names := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		names = append(names, k)
	}
	return names
}
