package verify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/delve"
	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/image"
	"github.com/kilnbuild/kiln/internal/layer"
	"github.com/kilnbuild/kiln/internal/pipeline"
	"github.com/kilnbuild/kiln/internal/platform"
	"github.com/kilnbuild/kiln/internal/provenance"
	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/vcs"
)

// RebuildOptions say what to rebuild and where from.
type RebuildOptions struct {
	Predicate provenance.Predicate
	Want      v1.Hash // the digest the provenance is about
	// Source is a checkout to build from; "" means a temporary worktree of
	// the git repository around Dir at the recorded commit.
	Source   string
	Dir      string
	Env      []string
	CacheDir string
	Progress func(format string, args ...any)
}

// RebuildResult is the outcome of a rebuild.
type RebuildResult struct {
	Match  bool
	Got    v1.Hash
	Source string // what was built
}

// ErrCannotRebuild means the provenance does not allow a rebuild here.
var ErrCannotRebuild = errors.New("cannot rebuild")

// Rebuild builds the recorded package again from the recorded commit with
// the recorded parameters and compares the digest with Want.
func Rebuild(ctx context.Context, o RebuildOptions) (RebuildResult, error) {
	p := o.Predicate.BuildDefinition.ExternalParameters
	src, ok := o.Predicate.Dependency(provenance.DepSource)
	if !ok || src.Digest["gitCommit"] == "" {
		return RebuildResult{}, fmt.Errorf("%w: the provenance records no source commit", ErrCannotRebuild)
	}
	if dirty, _ := src.Annotations["dirty"].(bool); dirty {
		return RebuildResult{}, fmt.Errorf("%w: the provenance records a work tree with uncommitted changes, which no commit reproduces", ErrCannotRebuild)
	}
	commit := src.Digest["gitCommit"]
	root := o.Source
	if root == "" {
		wt, cleanup, err := worktree(ctx, o.Dir, commit)
		if err != nil {
			return RebuildResult{}, err
		}
		defer cleanup()
		root = wt
	}
	dir := filepath.Join(root, filepath.FromSlash(p.Workdir))

	cfg := &config.Config{}
	if p.Config != "" {
		var err error
		if cfg, err = config.Load(filepath.Join(root, filepath.FromSlash(p.Config))); err != nil {
			return RebuildResult{}, err
		}
	}
	// The recorded, already expanded flags replace the config's templates.
	cfg.DefaultBaseImage, cfg.BaseImageOverrides = p.Base, nil
	cfg.DefaultFlags, cfg.DefaultLdflags = p.Flags, p.Ldflags
	for i := range cfg.Builds {
		cfg.Builds[i].Flags, cfg.Builds[i].Ldflags = nil, nil
	}
	spec, err := platform.Parse(p.Platforms)
	if err != nil {
		return RebuildResult{}, err
	}
	alg, err := layer.ParseAlgorithm(p.Compression)
	if err != nil {
		return RebuildResult{}, err
	}
	work, err := os.MkdirTemp("", "kiln-rebuild-*")
	if err != nil {
		return RebuildResult{}, err
	}
	defer os.RemoveAll(work)
	out := filepath.Join(work, "layout")
	if err := os.Mkdir(out, 0o700); err != nil {
		return RebuildResult{}, err
	}
	opts := rebuildOptions(p, o, dir, work, cfg)
	opts.Platforms = spec
	opts.Compress = &layer.Compression{Algorithm: alg, Level: p.CompressionLevel}
	res, err := pipeline.Run(ctx, opts, []string{p.Package})
	if err != nil {
		return RebuildResult{}, fmt.Errorf("rebuilding %s at %s: %w", p.Package, commit, err)
	}
	got, err := v1.NewHash(res[0].Digest)
	if err != nil {
		return RebuildResult{}, err
	}
	return RebuildResult{Match: got == o.Want, Got: got, Source: strings.TrimPrefix(src.URI, "git+") + "@" + commit}, nil
}

// rebuildOptions are the pipeline's options that repeat p: its time,
// GOFLAGS, kodata mtime and debugger. The build lands in the layout
// work/layout; without a cache, Delve is built under work.
func rebuildOptions(p provenance.ExternalParameters, o RebuildOptions, dir, work string, cfg *config.Config) pipeline.Options {
	env := append(append([]string{}, o.Env...), "GOFLAGS="+p.GOFLAGS)
	var kodata image.KoData
	if p.KoDataDateEpoch != nil {
		kodata.ModTime = time.Unix(*p.KoDataDateEpoch, 0).UTC()
	}
	builder := &gobuild.Builder{Env: env}
	opts := pipeline.Options{
		Dir: dir, Env: env, Config: cfg, Jobs: 2,
		Created:   time.Unix(p.SourceDateEpoch, 0).UTC(),
		Naming:    pipeline.Naming{Repo: pipeline.LocalRepo, Bare: true},
		Publisher: &publish.ToLayout{Dir: filepath.Join(work, "layout")},
		Builder:   builder,
		CacheDir:  o.CacheDir,
		KoData:    kodata,
	}
	if p.Debug {
		opts.Debugger = &delve.Builder{Go: builder, CacheDir: o.CacheDir, TempDir: work}
	}
	return opts
}

// worktree checks commit out into a temporary git worktree of the
// repository around dir.
func worktree(ctx context.Context, dir, commit string) (string, func(), error) {
	g, err := vcs.Read(ctx, dir)
	if err != nil || g.Root == "" {
		return "", nil, fmt.Errorf("%w: %s is not in a git checkout; pass --source with a checkout of the recorded commit", ErrCannotRebuild, dir)
	}
	tmp, err := os.MkdirTemp("", "kiln-rebuild-src-*")
	if err != nil {
		return "", nil, err
	}
	wt := filepath.Join(tmp, "src")
	cmd := exec.CommandContext(ctx, "git", "-C", g.Root, "worktree", "add", "--detach", wt, commit)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(tmp)
		return "", nil, fmt.Errorf("%w: commit %s is not in %s (%s): fetch it, or pass --source", ErrCannotRebuild, commit, g.Root, strings.TrimSpace(string(out)))
	}
	return wt, func() {
		exec.Command("git", "-C", g.Root, "worktree", "remove", "--force", wt).Run()
		os.RemoveAll(tmp)
	}, nil
}
