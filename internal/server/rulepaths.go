package server

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/service"
	"github.com/kilnbuild/kiln/internal/source"
)

// checkPathFlags refuses, at submission, the flags that name a file
// (-overlay, -modfile, -pkgdir, -pgo) in the builds of the packages
// requested as relative paths, when the file is outside the source's tree
// (the build refuses it: inputs stay in the module) or, but for -pkgdir,
// a directory go build makes, is not in the tree (go build would fail).
// The value is relative to the package's directory, where go build runs.
// What an overlay file replaces, packages named by import path and flags
// whose templates need the build are left to the build.
func checkPathFlags(cfg *config.Config, f source.ConfigFile, packages, environ []string) error {
	if f.Tree == nil {
		return nil
	}
	for _, pe := range packageEntries(cfg, packages) {
		flags, _, env, ok := expandedSettings(cfg, pe.entry, environ)
		if !ok {
			continue
		}
		_, args := splitPathFlags(flags, false)
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "GOFLAGS="); ok {
				_, more := splitPathFlags(strings.Fields(v), true)
				args = append(args, more...)
			}
		}
		for _, a := range args {
			if a.name == "pgo" && (a.value == "auto" || a.value == "off" || a.value == "") {
				continue
			}
			why := ""
			has, err := f.Tree.Has(path.Join(pe.dir, a.value))
			switch {
			case path.IsAbs(a.value) || errors.Is(err, source.ErrInvalid):
				why = "it names a file outside the source tree; keep build inputs in the module"
			case err != nil:
				return fmt.Errorf("checking the source's %s: %w", f.Name, err)
			case !has && a.name != "pkgdir":
				why = fmt.Sprintf("%s is not in the source; add it or drop the flag", path.Join(pe.dir, a.value))
			default:
				continue
			}
			return fmt.Errorf("%w: the source's %s (%s): flag %q: %s", service.ErrInvalid, f.Name, pe.what(), a.text, why)
		}
	}
	return nil
}

// packageEntry is a package requested as a relative path, its directory
// in the tree, and the builds entry it builds with (zero: the defaults).
type packageEntry struct {
	dir   string
	entry config.Build
}

func (pe packageEntry) what() string {
	if pe.entry.ID != "" || pe.entry.Main != "" {
		return "build " + strings.TrimSpace(pe.entry.ID+" "+pe.entry.Main)
	}
	return "defaults"
}

// packageEntries pairs each package requested as a relative path with
// its builds entry, as entriesFor finds them; a package whose entry is
// not sure without the tree is left out.
func packageEntries(cfg *config.Config, packages []string) []packageEntry {
	byPath, allRelative := entryIndex(cfg)
	var out []packageEntry
	for _, p := range packages {
		if !strings.HasPrefix(p, ".") {
			continue
		}
		dir := path.Clean(p)
		if e, ok := byPath[dir]; ok {
			out = append(out, packageEntry{dir, e})
		} else if allRelative {
			out = append(out, packageEntry{dir: dir})
		}
	}
	return out
}

// pathFlag is one of splitPathFlags' flags as written: its name, its value
// and the text for messages.
type pathFlag struct{ name, value, text string }

// splitPathFlags splits args into the flags that name files
// (pathFlagNames) and the rest: "-f=v", and "-f v" unless in GOFLAGS,
// where every argument is one flag.
func splitPathFlags(args []string, goflags bool) (kept []string, found []pathFlag) {
	kept = make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || !pathFlagNames[name] {
			kept = append(kept, a)
			continue
		}
		text := a
		if !hasValue && !goflags && i+1 < len(args) {
			i++
			value, text = args[i], a+" "+args[i]
		}
		found = append(found, pathFlag{name, value, text})
	}
	return kept, found
}
