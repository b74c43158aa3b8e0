package request

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/modfile"

	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/imageref"
)

// confine refuses a request or config of an untrusted source that names a
// file outside the source tree dir: a base image read from disk (or from
// the local store), a build's dir or main package, an extra file, a
// package path, or a go.mod replacement. kiln build trusts its user with
// their own disk; the build service must not let a source read the
// server's. Symlinks are resolved before the check.
func confine(dir string, cfg *config.Config, b Build) error {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	in := func(what, p string) error {
		if !inside(root, dir, p) {
			return invalid("%s %q is outside the source tree: a build of this service may read its own files only", what, p)
		}
		return nil
	}
	for _, p := range b.Packages {
		if filepath.IsAbs(p) {
			return invalid("package %q is outside the source tree: a build of this service may read its own files only", p)
		}
		if strings.HasPrefix(p, ".") {
			if err := in("package", p); err != nil {
				return err
			}
		}
	}
	bases := []string{b.Base, cfg.DefaultBaseImage}
	for _, ref := range cfg.BaseImageOverrides {
		bases = append(bases, ref)
	}
	for _, ref := range bases {
		if ref == "" {
			continue
		}
		r, err := imageref.Parse(ref, dir)
		if err != nil {
			continue // refused with its own error where the base is read
		}
		switch r.Kind {
		case imageref.Registry:
		case imageref.Store:
			return invalid("base %q is in the server's local store: name a registry image, static or scratch", ref)
		default:
			if err := in("base", r.Path); err != nil {
				return err
			}
		}
	}
	for _, bd := range cfg.Builds {
		if err := in("builds[].dir", abs(dir, bd.Dir)); err != nil {
			return err
		}
		if strings.HasPrefix(bd.Main, ".") || filepath.IsAbs(bd.Main) {
			if err := in("builds[].main", abs(abs(dir, bd.Dir), bd.Main)); err != nil {
				return err
			}
		}
	}
	images := []config.Image{cfg.Kiln.Defaults}
	for _, img := range cfg.Kiln.Builds {
		images = append(images, img)
	}
	for _, img := range images {
		for _, f := range img.Files {
			if err := in("extra file", abs(cfg.Dir, f.Source)); err != nil {
				return err
			}
		}
	}
	return confineReplacements(dir, in)
}

// confineReplacements refuses go.mod replace directives that point at a
// directory outside the tree.
func confineReplacements(dir string, in func(what, p string) error) error {
	for d := dir; ; d = filepath.Dir(d) {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil {
			mf, err := modfile.Parse("go.mod", data, nil)
			if err != nil {
				return invalid("go.mod: %v", err)
			}
			for _, r := range mf.Replace {
				if r.New.Version == "" { // a directory
					if err := in("go.mod replacement", abs(d, r.New.Path)); err != nil {
						return err
					}
				}
			}
			return nil
		}
		if filepath.Dir(d) == d || d == filepath.Dir(dir) {
			return nil
		}
	}
}

// inside reports whether p (absolute, or relative to dir) stays in root
// (dir with its symlinks resolved) once its own symlinks are resolved.
// A path that does not exist yet is judged by its text.
func inside(root, dir, p string) bool {
	p = abs(dir, p)
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	} else {
		// Resolve what exists of it: dir itself may be behind a symlink.
		if rel, err := filepath.Rel(dir, p); err == nil {
			p = filepath.Join(root, rel)
		}
	}
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}
