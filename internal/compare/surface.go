package compare

import (
	"archive/tar"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// What counts as a shell, a package manager or a compiler: executables of
// these names in a bin or sbin directory (busybox anywhere).
var (
	shells          = set("sh", "bash", "ash", "dash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "busybox")
	packageManagers = set("apt", "apt-get", "aptitude", "dpkg", "apk", "yum", "dnf", "rpm", "microdnf", "tdnf", "zypper", "pip", "pip3", "pipx")
	compilers       = set("gcc", "cc", "c++", "g++", "clang", "clang++", "tcc", "gccgo", "go", "rustc", "javac")
	// The patterns are compiled when first used, not at every kiln command's start.
	compilerPattern = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^([a-z0-9_]+-[a-z0-9_]+-[a-z0-9_-]+-)?(gcc|g\+\+|cc|c\+\+|clang|clang\+\+|gccgo)(-[0-9.]+)?$`)
	})
	pipPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^pip[0-9.]*$`) })
	// Package databases and where they live.
	packageDatabases = []string{dpkgStatus, "/var/lib/dpkg/status.d", apkInstalled, "/var/lib/rpm", "/usr/lib/sysimage/rpm"}
)

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// inspect walks the final filesystem and fills in counts, the largest
// files, the attack surface and the packages.
func inspect(root *node, img *Image, top int) {
	var files []File
	var gobins []*GoBinary
	s := &img.Surface
	var walk func(n *node, p string)
	walk = func(n *node, p string) {
		e := n.e
		switch {
		case e == nil || e.typ == tar.TypeDir:
			if p != "" {
				img.Dirs++
			}
			if e != nil && e.mode&0o002 != 0 {
				if e.mode&0o1000 != 0 {
					s.WorldWritableSticky = append(s.WorldWritableSticky, p)
				} else {
					s.WorldWritableDirs = append(s.WorldWritableDirs, p)
				}
			}
		case e.typ == tar.TypeReg || e.typ == tar.TypeLink:
			img.Files++
			img.FileBytes += e.size
			if e.typ == tar.TypeReg {
				files = append(files, File{Path: p, Size: e.size, Mode: fmt.Sprintf("%04o", e.mode&0o7777), UID: e.uid, GID: e.gid})
			}
			if e.mode&0o4000 != 0 {
				s.Setuid = append(s.Setuid, p)
			}
			if e.mode&0o2000 != 0 {
				s.Setgid = append(s.Setgid, p)
			}
			if e.gobin != nil {
				gobins = append(gobins, e.gobin)
			}
		case e.typ == tar.TypeSymlink:
			img.Symlinks++
		default:
			img.Others++
		}
		if e != nil && e.typ != tar.TypeDir {
			classify(root, n, p, s)
		}
		names := make([]string, 0, len(n.kids))
		for k := range n.kids {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			walk(n.kids[k], p+"/"+k)
		}
	}
	walk(root, "")

	sort.Slice(files, func(i, j int) bool {
		if files[i].Size != files[j].Size {
			return files[i].Size > files[j].Size
		}
		return files[i].Path < files[j].Path
	})
	img.LargestFiles = files[:min(top, len(files))]

	for _, db := range packageDatabases {
		if n := root.walk(db, false); n != nil && (n.e != nil || len(n.kids) > 0) {
			s.PackageDatabases = append(s.PackageDatabases, db)
		}
	}
	img.Surface.User = img.Config.User
	var users map[string]string
	if e := fileEntry(root, etcPasswd); e != nil {
		users = e.users
	}
	img.Surface.RunsAsRoot = runsAsRoot(img.Config.User, users)

	for _, gb := range gobins {
		img.GoBinaries = append(img.GoBinaries, *gb)
	}
	img.Packages = imagePackages(root, img.GoBinaries)
	img.PackageSource = PackagesFromImage
}

// classify records p if it is a shell, a package manager or a compiler.
// A symlink counts only when it leads to a file.
func classify(root, n *node, p string, s *Surface) {
	dir, base := path.Split(p)
	inBin := path.Base(dir) == "bin" || path.Base(dir) == "sbin"
	var list *[]string
	switch {
	case base == "busybox" || (inBin && shells[base]):
		list = &s.Shells
	case inBin && (packageManagers[base] || pipPattern().MatchString(base)):
		list = &s.PackageManagers
	case inBin && (compilers[base] || compilerPattern().MatchString(base)):
		list = &s.Compilers
	default:
		return
	}
	if n.e.typ == tar.TypeSymlink {
		t := root.resolve(p)
		if t == nil || t.e == nil || (t.e.typ != tar.TypeReg && t.e.typ != tar.TypeLink) {
			return
		}
	}
	*list = append(*list, p)
}

// fileEntry is the entry at p, if any.
func fileEntry(root *node, p string) *entry {
	if n := root.walk(p, false); n != nil {
		return n.e
	}
	return nil
}

// runsAsRoot says whether the config's user is uid 0: empty, 0, root, or a
// name /etc/passwd (users: name → uid) maps to uid 0.
func runsAsRoot(user string, users map[string]string) bool {
	u, _, _ := strings.Cut(user, ":")
	switch u {
	case "", "0", "root":
		return true
	}
	return users[u] == "0"
}
