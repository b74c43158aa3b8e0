package compare

import (
	"debug/buildinfo"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
)

// goBuildInfo copies an ELF file (its first bytes already read) into tmp
// and reads its Go build info; nil when it is not a Go executable.
func goBuildInfo(tmp *os.File, head []byte, r io.Reader) (*GoBinary, error) {
	if err := tmp.Truncate(0); err != nil {
		return nil, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	if _, err := tmp.Write(head); err != nil {
		return nil, err
	}
	if _, err := io.Copy(tmp, r); err != nil {
		return nil, err
	}
	bi, err := buildinfo.Read(tmp)
	if err != nil {
		return nil, nil // not Go, or stripped of its build info
	}
	gb := &GoBinary{GoVersion: bi.GoVersion, Package: bi.Path, Module: bi.Main.Path, Version: bi.Main.Version}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		gb.Deps = append(gb.Deps, Package{Name: d.Path, Version: d.Version, Type: "go-module"})
	}
	return gb, nil
}

// The paths whose contents are read.
const (
	dpkgStatus    = "/var/lib/dpkg/status"
	dpkgStatusDir = "/var/lib/dpkg/status.d/" // distroless: one file per package
	apkInstalled  = "/lib/apk/db/installed"
	etcPasswd     = "/etc/passwd"
)

func isDatabase(p string) bool {
	return p == dpkgStatus || p == apkInstalled || p == etcPasswd ||
		(strings.HasPrefix(p, dpkgStatusDir) && !strings.HasSuffix(p, ".md5sums"))
}

// imagePackages lists the packages the image's own databases record:
// Debian's dpkg status (and distroless status.d), Alpine's apk database,
// and the Go build info of its executables, each once.
func imagePackages(root *node, gobins []GoBinary) []Package {
	var out []Package
	if e := fileEntry(root, dpkgStatus); e != nil {
		out = append(out, e.pkgs...)
	}
	if n := root.walk(dpkgStatusDir, false); n != nil {
		names := make([]string, 0, len(n.kids))
		for k := range n.kids {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if e := n.kids[k].e; e != nil {
				out = append(out, e.pkgs...)
			}
		}
	}
	if e := fileEntry(root, apkInstalled); e != nil {
		out = append(out, e.pkgs...)
	}
	for _, gb := range gobins {
		if gb.Module != "" {
			out = append(out, Package{Name: gb.Module, Version: gb.Version, Type: "go-module", Location: gb.Path})
		}
		for _, d := range gb.Deps {
			d.Location = gb.Path
			out = append(out, d)
		}
		out = append(out, Package{Name: "go", Version: gb.GoVersion, Type: "go", Location: gb.Path})
	}
	return dedupe(out)
}

func dedupe(ps []Package) []Package {
	seen := map[string]bool{}
	var out []Package
	for _, p := range ps {
		k := p.Type + "\x00" + p.Name + "\x00" + p.Version
		if !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b Package) int {
		return strings.Compare(a.Type+"\x00"+a.Name+"\x00"+a.Version, b.Type+"\x00"+b.Name+"\x00"+b.Version)
	})
	return out
}
