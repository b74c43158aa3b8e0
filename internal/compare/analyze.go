package compare

import (
	"archive/tar"
	"context"
	"debug/buildinfo"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/kilnbuild/kiln/internal/sbom"
	"github.com/kilnbuild/kiln/internal/sign"
)

// Limits on what is read from an image beyond its metadata.
const (
	// maxGoExecutable is the largest ELF file whose Go build info is read.
	maxGoExecutable = 200 << 20
	// maxDatabase is the largest package database or /etc/passwd kept.
	maxDatabase = 64 << 20
	// maxAttestation is the largest attestation layer read.
	maxAttestation = 64 << 20
)

// entry is one path in an image's filesystem, from the topmost layer that
// has it.
type entry struct {
	typ   byte
	mode  int64 // permission bits with setuid (04000), setgid (02000), sticky (01000)
	size  int64
	uid   int
	gid   int
	link  string    // target of a symlink or hard link
	data  []byte    // contents, kept only for the databases parsed below
	gobin *GoBinary // build info of a Go executable
}

// pathEntry is an entry as one layer's tar stream gives it.
type pathEntry struct {
	path string
	e    *entry
}

// layerRead is what one pass over a layer's tar stream found.
type layerRead struct {
	entries      []pathEntry
	whiteouts    []string // paths hidden in lower layers (.wh.NAME)
	opaque       []string // directories whose lower contents are hidden (.wh..wh..opq)
	uncompressed int64
}

// node is a directory tree of the final filesystem; a directory that no
// layer lists but that holds something has a nil entry.
type node struct {
	e    *entry
	kids map[string]*node
}

func (n *node) child(name string, create bool) *node {
	c := n.kids[name]
	if c == nil && create {
		if n.kids == nil {
			n.kids = map[string]*node{}
		}
		c = &node{}
		n.kids[name] = c
	}
	return c
}

// walk finds p ("/a/b"), creating missing directories when create is set.
// It does not follow symlinks.
func (n *node) walk(p string, create bool) *node {
	cur := n
	for _, part := range strings.Split(strings.Trim(p, "/"), "/") {
		if part == "" {
			continue
		}
		if cur = cur.child(part, create); cur == nil {
			return nil
		}
	}
	return cur
}

func (n *node) remove(p string) {
	dir, base := path.Split(p)
	if parent := n.walk(dir, false); parent != nil {
		delete(parent.kids, base)
	}
}

// resolve follows symlinks in every component of p, as the kernel would
// inside the image, and returns the node it ends at, if any.
func (n *node) resolve(p string) *node {
	parts := splitPath(p)
	var stack []string
	for hops := 0; len(parts) > 0; {
		part := parts[0]
		parts = parts[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		cur := n.walk("/"+strings.Join(append(stack, part), "/"), false)
		if cur == nil {
			return nil
		}
		if cur.e != nil && cur.e.typ == tar.TypeSymlink {
			if hops++; hops > 40 {
				return nil
			}
			if strings.HasPrefix(cur.e.link, "/") {
				stack = stack[:0]
			}
			parts = append(splitPath(cur.e.link), parts...)
			continue
		}
		stack = append(stack, part)
	}
	return n.walk("/"+strings.Join(stack, "/"), false)
}

func splitPath(p string) []string { return strings.Split(strings.Trim(p, "/"), "/") }

// Analyze reads src's image: every layer streamed once through archive/tar
// (a few layers at a time, at most opt.Jobs), whiteouts applied in layer
// order, and the final filesystem inspected.
func Analyze(ctx context.Context, src *Source, opt Options) (*Image, error) {
	img, err := analyze(ctx, src, opt)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", src.Ref, oneLine(err.Error()))
	}
	return img, nil
}

func analyze(ctx context.Context, src *Source, opt Options) (*Image, error) {
	m, err := src.Image.Manifest()
	if err != nil {
		return nil, fmt.Errorf("reading the manifest: %v", err)
	}
	cf, err := src.Image.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the config: %v", err)
	}
	layers, err := src.Image.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading the layers: %v", err)
	}
	out := &Image{
		Ref:        src.Ref,
		Kind:       src.Kind,
		Digest:     src.Digest.String(),
		Platform:   src.Platform,
		ConfigSize: m.Config.Size,
		Layers:     make([]Layer, len(layers)),
		Config: Config{
			User:       cf.Config.User,
			Entrypoint: cf.Config.Entrypoint,
			Cmd:        cf.Config.Cmd,
			Env:        cf.Config.Env,
			WorkingDir: cf.Config.WorkingDir,
		},
	}
	if src.IndexDigest.Hex != "" {
		out.IndexDigest = src.IndexDigest.String()
	}
	var createdBy []string
	for _, h := range cf.History {
		if !h.EmptyLayer {
			createdBy = append(createdBy, h.CreatedBy)
		}
	}

	reads := make([]*layerRead, len(layers))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opt.jobs())
	for i, l := range layers {
		g.Go(func() error {
			r, err := readLayer(gctx, l, opt.TempDir)
			if err != nil {
				d, _ := l.Digest()
				return fmt.Errorf("layer %d (%s): %v", i+1, d, err)
			}
			reads[i] = r
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	root := &node{}
	for i, r := range reads {
		ld := Layer{UncompressedSize: r.uncompressed, Entries: len(r.entries) + len(r.whiteouts) + len(r.opaque)}
		if i < len(m.Layers) {
			ld.Digest = m.Layers[i].Digest.String()
			ld.MediaType = string(m.Layers[i].MediaType)
			ld.CompressedSize = m.Layers[i].Size
		}
		if i < len(createdBy) && len(createdBy) == len(layers) {
			ld.CreatedBy = createdBy[i]
		}
		out.Layers[i] = ld
		out.CompressedSize += ld.CompressedSize
		out.UncompressedSize += ld.UncompressedSize

		for _, d := range r.opaque {
			if n := root.walk(d, false); n != nil {
				n.kids = nil
			}
		}
		for _, p := range r.whiteouts {
			root.remove(p)
		}
		for _, pe := range r.entries {
			n := root.walk(pe.path, true)
			if pe.e.typ != tar.TypeDir {
				n.kids = nil
			}
			n.e = pe.e
		}
	}
	inspect(root, out, opt.topFiles())
	if err := readSBOM(ctx, src, out); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// The image itself was read: report it, with its own packages.
		out.Notes = append(out.Notes, "no SBOM read: "+oneLine(err.Error()))
	}
	return out, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// readLayer streams one layer: every header is recorded; file contents are
// skipped except package databases, /etc/passwd and ELF executables.
//
// Go build info: debug/buildinfo.Read needs an io.ReaderAt over the whole
// executable, and Go binaries run to tens of MB, so an executable ELF file
// (under maxGoExecutable) is copied from the stream into one temporary file
// per layer, reused and removed at the end. Memory stays bounded by tar's
// buffers whatever the image holds; the page cache keeps the copy about as
// fast as a buffer in memory would be.
func readLayer(ctx context.Context, l v1.Layer, tempDir string) (*layerRead, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	cr := &countingReader{r: rc}
	tr := tar.NewReader(cr)
	out := &layerRead{}
	var tmp *os.File
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not a readable tar stream: %v", err)
		}
		p := path.Clean("/" + hdr.Name)
		if p == "/" {
			continue
		}
		dir, base := path.Split(p)
		if base == ".wh..wh..opq" {
			out.opaque = append(out.opaque, path.Clean(dir))
			continue
		}
		if name, ok := strings.CutPrefix(base, ".wh."); ok {
			out.whiteouts = append(out.whiteouts, path.Join(dir, name))
			continue
		}
		typ := hdr.Typeflag
		if typ == tar.TypeRegA {
			typ = tar.TypeReg
		}
		e := &entry{typ: typ, mode: hdr.Mode, size: hdr.Size, uid: hdr.Uid, gid: hdr.Gid, link: hdr.Linkname}
		if typ != tar.TypeReg {
			e.size = 0
		}
		out.entries = append(out.entries, pathEntry{p, e})
		if typ != tar.TypeReg {
			continue
		}
		switch {
		case isDatabase(p) && hdr.Size <= maxDatabase:
			if e.data, err = io.ReadAll(tr); err != nil {
				return nil, fmt.Errorf("reading %s: %v", p, err)
			}
		case hdr.Mode&0o111 != 0 && hdr.Size >= 64 && hdr.Size < maxGoExecutable:
			var magic [4]byte
			if _, err := io.ReadFull(tr, magic[:]); err != nil {
				return nil, fmt.Errorf("reading %s: %v", p, err)
			}
			if string(magic[:]) != "\x7fELF" {
				continue
			}
			if tmp == nil {
				if tmp, err = os.CreateTemp(tempDir, "kiln-compare-elf-*"); err != nil {
					return nil, err
				}
			}
			if e.gobin, err = goBuildInfo(tmp, magic[:], tr); err != nil {
				return nil, fmt.Errorf("reading %s: %v", p, err)
			}
			if e.gobin != nil {
				e.gobin.Path = p
			}
		}
	}
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return nil, fmt.Errorf("reading past the end of the tar stream: %v", err)
	}
	out.uncompressed = cr.n
	return out, nil
}

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

// What counts as a shell, a package manager or a compiler: executables of
// these names in a bin or sbin directory (busybox anywhere).
var (
	shells          = set("sh", "bash", "ash", "dash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "busybox")
	packageManagers = set("apt", "apt-get", "aptitude", "dpkg", "apk", "yum", "dnf", "rpm", "microdnf", "tdnf", "zypper", "pip", "pip3", "pipx")
	compilers       = set("gcc", "cc", "c++", "g++", "clang", "clang++", "tcc", "gccgo", "go", "rustc", "javac")
	compilerPattern = regexp.MustCompile(`^([a-z0-9_]+-[a-z0-9_]+-[a-z0-9_-]+-)?(gcc|g\+\+|cc|c\+\+|clang|clang\+\+|gccgo)(-[0-9.]+)?$`)
	pipPattern      = regexp.MustCompile(`^pip[0-9.]*$`)
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
	img.Surface.RunsAsRoot = runsAsRoot(img.Config.User, fileData(root, etcPasswd))

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
	case inBin && (packageManagers[base] || pipPattern.MatchString(base)):
		list = &s.PackageManagers
	case inBin && (compilers[base] || compilerPattern.MatchString(base)):
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

func fileData(root *node, p string) []byte {
	if n := root.walk(p, false); n != nil && n.e != nil {
		return n.e.data
	}
	return nil
}

// runsAsRoot says whether the config's user is uid 0: empty, 0, root, or a
// name /etc/passwd maps to uid 0.
func runsAsRoot(user string, passwd []byte) bool {
	u, _, _ := strings.Cut(user, ":")
	switch u {
	case "", "0", "root":
		return true
	}
	for _, line := range strings.Split(string(passwd), "\n") {
		f := strings.Split(line, ":")
		if len(f) > 2 && f[0] == u {
			return f[2] == "0"
		}
	}
	return false
}

// imagePackages lists the packages the image's own databases record:
// Debian's dpkg status (and distroless status.d), Alpine's apk database,
// and the Go build info of its executables, each once.
func imagePackages(root *node, gobins []GoBinary) []Package {
	var out []Package
	out = append(out, parseDpkg(fileData(root, dpkgStatus), "")...)
	if n := root.walk(dpkgStatusDir, false); n != nil {
		names := make([]string, 0, len(n.kids))
		for k := range n.kids {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if e := n.kids[k].e; e != nil {
				out = append(out, parseDpkg(e.data, dpkgStatusDir+k)...)
			}
		}
	}
	out = append(out, parseApk(fileData(root, apkInstalled))...)
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

// parseDpkg reads Package and Version from a dpkg status file; packages
// whose Status is not "installed" (removed, config files left) are skipped.
func parseDpkg(data []byte, loc string) []Package {
	if loc == "" {
		loc = dpkgStatus
	}
	var out []Package
	for _, stanza := range strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n\n") {
		var p Package
		status := ""
		for _, line := range strings.Split(stanza, "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok || strings.HasPrefix(line, " ") {
				continue
			}
			switch k {
			case "Package":
				p.Name = strings.TrimSpace(v)
			case "Version":
				p.Version = strings.TrimSpace(v)
			case "Status":
				status = strings.TrimSpace(v)
			}
		}
		if p.Name == "" || (status != "" && !strings.HasSuffix(status, " installed")) {
			continue
		}
		p.Type, p.Location = "deb", loc
		out = append(out, p)
	}
	return out
}

// parseApk reads P: (name) and V: (version) from Alpine's installed database.
func parseApk(data []byte) []Package {
	var out []Package
	for _, stanza := range strings.Split(string(data), "\n\n") {
		var p Package
		for _, line := range strings.Split(stanza, "\n") {
			if v, ok := strings.CutPrefix(line, "P:"); ok {
				p.Name = v
			} else if v, ok := strings.CutPrefix(line, "V:"); ok {
				p.Version = v
			}
		}
		if p.Name != "" {
			p.Type, p.Location = "apk", apkInstalled
			out = append(out, p)
		}
	}
	return out
}

// readSBOM looks for an SPDX SBOM attestation (cosign's legacy
// sha256-<hex>.att tag) about the image or the index it came from, and if
// there is one, takes the package list from it. The DSSE envelope's
// signature is NOT checked here: `kiln verify --attestations` does that.
func readSBOM(ctx context.Context, src *Source, img *Image) error {
	if src.attestation == nil {
		return nil
	}
	for _, d := range []v1.Hash{src.Digest, src.IndexDigest} {
		if d.Hex == "" {
			continue
		}
		att, err := src.attestation(ctx, d)
		if errors.Is(err, sign.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading the attestations: %v", err)
		}
		doc, err := spdxFromAttestation(att)
		if err != nil {
			return fmt.Errorf("reading the attestations (%s): %v", sign.AttestationTag(d), err)
		}
		if doc == nil {
			continue
		}
		info := &SBOM{
			Tag:               sign.AttestationTag(d),
			Subject:           d.String(),
			SPDXVersion:       doc.SPDXVersion,
			SignatureVerified: false,
			Note:              "read from the attestation without checking its signature (use kiln verify --attestations)",
		}
		var pkgs []Package
		for _, p := range doc.Packages {
			if p.PrimaryPurpose == "CONTAINER" {
				continue // the image itself
			}
			pkgs = append(pkgs, Package{Name: p.Name, Version: p.VersionInfo, Type: "spdx", Location: info.Tag})
		}
		info.Packages = len(pkgs)
		img.SBOM = info
		img.Packages = dedupe(pkgs)
		img.PackageSource = PackagesFromSBOM
		return nil
	}
	return nil
}

// spdxDocument is the part of an SPDX 2.x JSON document read here; other
// tools' SBOMs decode into it as well as kiln's own (sbom.Document).
type spdxDocument struct {
	SPDXVersion string `json:"spdxVersion"`
	Packages    []struct {
		Name           string `json:"name"`
		VersionInfo    string `json:"versionInfo"`
		PrimaryPurpose string `json:"primaryPackagePurpose"`
	} `json:"packages"`
}

// spdxFromAttestation decodes the first SPDX statement among an .att
// image's DSSE envelopes; nil when there is none.
func spdxFromAttestation(att v1.Image) (*spdxDocument, error) {
	m, err := att.Manifest()
	if err != nil {
		return nil, err
	}
	layers, err := att.Layers()
	if err != nil {
		return nil, err
	}
	for i, l := range layers {
		if i < len(m.Layers) {
			if pt, ok := m.Layers[i].Annotations[sign.PredicateTypeAnnotation]; ok && pt != sbom.PredicateType {
				continue
			}
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		raw, err := io.ReadAll(io.LimitReader(rc, maxAttestation))
		rc.Close()
		if err != nil {
			return nil, err
		}
		var env struct {
			PayloadType string `json:"payloadType"`
			Payload     string `json:"payload"`
		}
		if err := json.Unmarshal(raw, &env); err != nil || env.Payload == "" {
			continue
		}
		body, err := base64.StdEncoding.DecodeString(env.Payload)
		if err != nil {
			continue
		}
		var st sign.Statement
		if err := json.Unmarshal(body, &st); err != nil || st.PredicateType != sbom.PredicateType {
			continue
		}
		var doc spdxDocument
		if err := json.Unmarshal(st.Predicate, &doc); err != nil {
			return nil, fmt.Errorf("the SPDX predicate does not decode: %v", err)
		}
		return &doc, nil
	}
	return nil, nil
}
