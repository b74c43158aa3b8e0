package server

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/oneline"
	"github.com/kilnbuild/kiln/internal/service"
	"github.com/kilnbuild/kiln/internal/source"
)

// CheckConfig applies gobuild's rule to a source's config at submission,
// as the pipeline applies it to each package before compiling: the
// builds entry of each requested package over the defaults, or the
// defaults alone. It refuses what the build
// would refuse whatever the package (-toolexec, cgo, a C linker, foreign
// GOFLAGS or env…), so that the client gets a 400 and nothing is queued,
// and flags naming files that are outside the tree or missing from it
// (checkPathFlags). Templates that use git are left to the build.
func (b *builder) CheckConfig(raw json.RawMessage, f source.ConfigFile) error {
	req, err := b.decode(raw)
	if err != nil {
		return err
	}
	cfg, err := config.Parse(f.Name, f.Data)
	if err != nil {
		return fmt.Errorf("%w: the source's %s: %s", service.ErrInvalid, f.Name, oneline.First(err.Error()))
	}
	gb := &gobuild.Builder{Env: b.env}
	for _, e := range entriesFor(cfg, req.Packages) {
		t, ok := target(cfg, e, b.env)
		if !ok {
			continue
		}
		if err := gb.Check(t); err != nil {
			what := "defaults"
			if e.ID != "" || e.Main != "" {
				what = "build " + strings.TrimSpace(e.ID+" "+e.Main)
			}
			return fmt.Errorf("%w: the source's %s (%s): %s", service.ErrInvalid, f.Name, what, oneline.First(err.Error()))
		}
	}
	return checkPathFlags(cfg, f, req.Packages, b.env)
}

// entriesFor are the builds entries the packages (as requested) build
// with, and a zero entry for the defaults when one of them surely has
// none. The pipeline matches entries by import path after resolving
// dir and main (a path, "./" implied) in the tree; here only what is
// sure without it counts: packages requested as relative paths.
func entriesFor(cfg *config.Config, packages []string) []config.Build {
	byPath, allRelative := entryIndex(cfg)
	if len(cfg.Builds) == 0 {
		return []config.Build{{}} // the defaults apply to every package
	}
	var out []config.Build
	defaults := false
	for _, p := range packages {
		if !strings.HasPrefix(p, ".") {
			continue // an import path: which entry applies needs the tree
		}
		if e, ok := byPath[path.Clean(p)]; ok {
			out = append(out, e)
		} else if allRelative {
			defaults = true
		}
	}
	if defaults {
		out = append(out, config.Build{})
	}
	return out
}

// entryIndex maps the builds entries by their package's path (dir and
// main joined); allRelative is false when an entry has an absolute one,
// so that which entry a package builds with is not sure.
func entryIndex(cfg *config.Config) (byPath map[string]config.Build, allRelative bool) {
	byPath, allRelative = map[string]config.Build{}, true
	for _, e := range cfg.Builds {
		main := e.Main
		if main == "" {
			main = "."
		}
		if path.IsAbs(main) || path.IsAbs(e.Dir) {
			allRelative = false // refused by the build's confinement anyway
			continue
		}
		byPath[path.Join(e.Dir, main)] = e
	}
	return byPath, allRelative
}

// expandedSettings are entry e's flags, ldflags and env with their
// templates expanded without git, go env or a platform; ok is false when
// a template needs what only the build knows.
func expandedSettings(cfg *config.Config, e config.Build, environ []string) (flags, ldflags, env []string, ok bool) {
	flags, ldflags, env = cfg.CompileSettings(e, false)
	data, err := gobuild.NewTemplateData(gobuild.TemplateInput{Environ: environ, BuildEnv: env, Date: time.Unix(0, 0)})
	if err != nil {
		return nil, nil, nil, false
	}
	if flags, err = gobuild.Expand(flags, data); err != nil {
		return nil, nil, nil, false
	}
	if ldflags, err = gobuild.Expand(ldflags, data); err != nil {
		return nil, nil, nil, false
	}
	return flags, ldflags, env, true
}

// target is what the pipeline's buildSettings checks for entry e, with
// templates expanded (expandedSettings) and the flags that name files
// left out.
func target(cfg *config.Config, e config.Build, environ []string) (gobuild.Target, bool) {
	flags, ldflags, env, ok := expandedSettings(cfg, e, environ)
	if !ok {
		return gobuild.Target{}, false
	}
	for i, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GOFLAGS="); ok {
			env[i] = "GOFLAGS=" + strings.Join(withoutPathFlags(strings.Fields(v), true), " ")
		}
	}
	return gobuild.Target{Env: env, Flags: withoutPathFlags(flags, false), Ldflags: ldflags}, true
}

// pathFlagNames are go build's flags whose value names a file, which gobuild
// checks against the package's module on disk.
var pathFlagNames = map[string]bool{"overlay": true, "modfile": true, "pkgdir": true, "pgo": true}

// withoutPathFlags drops the flags that name files from args (see
// splitPathFlags).
func withoutPathFlags(args []string, goflags bool) []string {
	kept, _ := splitPathFlags(args, goflags)
	return kept
}
