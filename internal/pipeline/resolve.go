package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/base"
	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/platform"
)

// baseFor starts resolving ref once per run; every package asking for the
// same base shares the answer.
func (r *buildRun) baseFor(ctx context.Context, ref string) *future[*base.Base] {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.bases[ref]; ok {
		return f
	}
	f := goFuture(func() (*base.Base, error) {
		o := r.opts.Base
		o.Dir, o.LayerCache = r.tmp, r.layers
		o.Note = func(msg string) { r.p.printf("%s", msg) }
		if ref == base.StaticName {
			goroot, err := r.goroot.wait()
			if err != nil {
				return nil, err
			}
			o.GOROOT = goroot
		}
		return base.Resolve(ctx, ref, o)
	})
	r.bases[ref] = f
	return f
}

// baseRef is the base for importPath: baseImageOverrides, defaultBaseImage,
// else the built-in static base.
func (r *buildRun) baseRef(importPath string) string {
	c := r.opts.Config
	if ref := c.BaseImageOverrides[importPath]; ref != "" {
		return ref
	}
	if c.DefaultBaseImage != "" {
		return c.DefaultBaseImage
	}
	return DefaultBase
}

// resolveBuilds maps each config builds[] entry (dir + main) to the import
// path it names: from go.mod when it can, else with go list.
func (r *buildRun) resolveBuilds(ctx context.Context) (map[string]config.Build, error) {
	builds := map[string]config.Build{}
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
		} else if !filepath.IsAbs(main) && !strings.HasPrefix(main, ".") {
			main = "./" + main
		}
		pkg, ok := gobuild.LocalPackage(dir, main)
		if !ok {
			var err error
			if pkg, err = r.opts.Builder.Resolve(ctx, dir, main); err != nil {
				return nil, fmt.Errorf("config build %q: %w", b.ID, err)
			}
		}
		builds[pkg.ImportPath] = b
	}
	return builds, nil
}

// platforms is what to build: --platform, else defaultPlatforms, else the
// host. Only "all" needs the base, to ask what it offers.
func (r *buildRun) platforms(baseF *future[*base.Base]) ([]v1.Platform, error) {
	spec := r.opts.Platforms
	if !spec.All && len(spec.Platforms) == 0 {
		var err error
		if spec, err = platform.Parse(r.opts.Config.DefaultPlatforms); err != nil {
			return nil, fmt.Errorf("defaultPlatforms in %s: %w", r.opts.Config.Path, err)
		}
	}
	if spec.All {
		b, err := baseF.wait()
		if err != nil {
			return nil, err
		}
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
