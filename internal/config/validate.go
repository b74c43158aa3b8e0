package config

import (
	"cmp"
	"maps"
	"path"
	"slices"
	"strings"
)

// levels are the compression levels each algorithm accepts (0 aside).
var levels = map[string]struct{ min, max int }{
	"gzip": {1, 9},
	"zstd": {1, 22},
	"auto": {1, 9}, // gzip's, for destinations elsewhere
	"none": {0, 0},
}

// validate checks what decoding cannot: the values themselves.
func (d *doc) validate(c *Config) error {
	if err := d.checkEnv(c.DefaultEnv, []any{"defaultEnv"}); err != nil {
		return err
	}
	ids := map[string]int{}
	for i, b := range c.Builds {
		at := []any{"builds", i}
		if b.ID != "" {
			if first, dup := ids[b.ID]; dup {
				return d.errorAt(with(at, "id"), "duplicate build id %q (first used by builds[%d]); give each build its own id", b.ID, first)
			}
			ids[b.ID] = i
		}
		if err := d.checkEnv(b.Env, with(at, "env")); err != nil {
			return err
		}
		for j, term := range b.LinuxCapabilities {
			if _, err := ParseCapabilities([]string{term}); err != nil {
				return d.errorAt(with(at, "linux_capabilities", j), "%v", err)
			}
		}
	}

	if err := d.checkImage(c.Kiln.Defaults, Image{}, "kiln", "defaults"); err != nil {
		return err
	}
	for _, key := range slices.Sorted(maps.Keys(c.Kiln.Builds)) {
		if err := d.checkImage(c.Kiln.Builds[key], c.Kiln.Defaults, "kiln", "builds", key); err != nil {
			return err
		}
	}
	return nil
}

// with returns where followed by more, not sharing where's array.
func with(where []any, more ...any) []any {
	return append(slices.Clip(where), more...)
}

// checkEnv checks a list of KEY=VALUE entries found at where.
func (d *doc) checkEnv(env []string, where []any) error {
	for i, e := range env {
		name, _, ok := strings.Cut(e, "=")
		switch {
		case !ok:
			return d.errorAt(with(where, i), "%q is not KEY=VALUE; write it as %s=value", e, e)
		case name == "":
			return d.errorAt(with(where, i), "%q has an empty name; write it as NAME=value", e)
		}
	}
	return nil
}

// checkImage checks one entry of kiln:, found at where; defaults is what a
// per-build entry inherits (zero for kiln.defaults itself).
func (d *doc) checkImage(img, defaults Image, where ...any) error {
	if err := d.checkEnv(img.Env, with(where, "env")); err != nil {
		return err
	}
	if _, empty := img.Labels[""]; empty {
		return d.errorAt(with(where, "labels"), "a key is empty; give each label a name")
	}
	if _, empty := img.Annotations[""]; empty {
		return d.errorAt(with(where, "annotations"), "a key is empty; give each annotation a name")
	}
	for i, f := range img.Files {
		at := with(where, "files", i)
		switch {
		case f.Source == "":
			return d.errorAt(at, "source is missing; set it to the file on disk (relative to the config file's directory)")
		case f.Path == "":
			return d.errorAt(at, "path is missing; set it to the absolute path in the image, e.g. /etc/app/config.yaml")
		case !path.IsAbs(f.Path):
			return d.errorAt(with(at, "path"), "%q is not an absolute path; start it with /", f.Path)
		case path.Clean(f.Path) == "/":
			return d.errorAt(with(at, "path"), "%q is the root directory; give the path of a file", f.Path)
		}
		if _, err := f.FileMode(); err != nil {
			return d.errorAt(with(at, "mode"), "%v", err)
		}
	}
	if img.Compression != "" {
		if _, ok := levels[img.Compression]; !ok {
			return d.errorAt(with(where, "compression"), "unknown compression %q; use gzip, zstd, none or auto", img.Compression)
		}
	}
	return d.checkLevel(img, defaults, where)
}

// checkLevel checks the compression level an entry ends up with, given what
// it inherits from defaults.
func (d *doc) checkLevel(img, defaults Image, where []any) error {
	if img.Compression == "" && img.CompressionLevel == 0 {
		return nil // all inherited, and checked with kiln.defaults
	}
	algo := cmp.Or(img.Compression, defaults.Compression)
	name := algo
	if algo == "" {
		algo, name = "gzip", "gzip (the default compression)"
	}
	level := cmp.Or(img.CompressionLevel, defaults.CompressionLevel)
	r := levels[algo]
	if level == 0 || level >= r.min && level <= r.max {
		return nil
	}
	field := "compressionLevel"
	if img.CompressionLevel == 0 {
		field = "compression"
	}
	if algo == "none" {
		return d.errorAt(with(where, field), "compression none takes no level (got %d); remove compressionLevel, or pick gzip or zstd", level)
	}
	return d.errorAt(with(where, field), "compression level %d is out of range for %s; use %d to %d, or 0 for %s's default",
		level, name, r.min, r.max, algo)
}
