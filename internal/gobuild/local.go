package gobuild

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/modfile"
)

// LocalPackage predicts, without running go, the package a directory
// pattern ("./cmd/app", ".", "/abs/dir") names: its import path comes from
// the enclosing go.mod. ok is false for import-path patterns and when no
// module encloses the directory; Resolve is then the only answer. Resolve
// remains the authority on whether the package exists and is main.
func LocalPackage(dir, pattern string) (pkg Package, ok bool) {
	pattern = strings.TrimPrefix(pattern, "ko://")
	if !(pattern == "." || pattern == ".." || strings.HasPrefix(pattern, "./") || strings.HasPrefix(pattern, "../") || filepath.IsAbs(pattern)) || strings.Contains(pattern, "...") {
		return Package{}, false
	}
	pkgDir := pattern
	if !filepath.IsAbs(pkgDir) {
		pkgDir = filepath.Join(dir, pattern)
	}
	pkgDir = filepath.Clean(pkgDir)
	for modDir := pkgDir; ; modDir = filepath.Dir(modDir) {
		data, err := os.ReadFile(filepath.Join(modDir, "go.mod"))
		if err == nil {
			mf, err := modfile.ParseLax(filepath.Join(modDir, "go.mod"), data, nil)
			if err != nil || mf.Module == nil {
				return Package{}, false
			}
			rel, err := filepath.Rel(modDir, pkgDir)
			if err != nil {
				return Package{}, false
			}
			ip := mf.Module.Mod.Path
			if rel != "." {
				ip += "/" + filepath.ToSlash(rel)
			}
			goVersion := ""
			if mf.Go != nil {
				goVersion = mf.Go.Version
			}
			return Package{ImportPath: ip, Name: "main", Dir: pkgDir, ModulePath: mf.Module.Mod.Path, ModuleDir: modDir, GoVersion: goVersion}, true
		}
		if parent := filepath.Dir(modDir); parent == modDir {
			return Package{}, false
		}
	}
}
