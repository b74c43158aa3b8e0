package compare_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"debug/buildinfo"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	specs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kilnbuild/kiln/internal/compare"
	"github.com/kilnbuild/kiln/internal/sbom"
	"github.com/kilnbuild/kiln/internal/sign"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// file is one tar entry of a synthetic layer.
type file struct {
	name    string
	typ     byte // 0: a regular file
	mode    int64
	uid     int
	content []byte
	link    string
}

func reg(name string, mode int64, content string) file {
	return file{name: name, typ: tar.TypeReg, mode: mode, content: []byte(content)}
}
func dir(name string, mode int64) file { return file{name: name, typ: tar.TypeDir, mode: mode} }
func symlink(name, target string) file {
	return file{name: name, typ: tar.TypeSymlink, mode: 0o777, link: target}
}

// fixtureLayer is a layer and the exact sizes compare must report for it.
type fixtureLayer struct {
	layer              v1.Layer
	compressed, uncomp int64
}

// makeLayer writes files as a tar stream, gzips it once at level, and
// serves the gzipped bytes as the layer (ggcr uses compressed input as is).
func makeLayer(t testing.TB, level int, files []file) fixtureLayer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		typ := f.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: f.name, Typeflag: typ, Mode: f.mode, Uid: f.uid, Gid: f.uid, Linkname: f.link, ModTime: time.Unix(0, 0)}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(f.content))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.content); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	zw, err := gzip.NewWriterLevel(&z, level)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	gz := z.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(gz)), nil })
	if err != nil {
		t.Fatal(err)
	}
	if size, err := l.Size(); err != nil || size != int64(len(gz)) {
		t.Fatalf("layer size %d, %v; want %d", size, err, len(gz))
	}
	return fixtureLayer{layer: l, compressed: int64(len(gz)), uncomp: int64(b.Len())}
}

// fixture is a synthetic image with the answers compare must give.
type fixture struct {
	img                      v1.Image
	compressed, uncompressed int64
}

func makeImage(t testing.TB, cfg v1.Config, platform *v1.Platform, layers ...fixtureLayer) fixture {
	t.Helper()
	img := empty.Image
	var fx fixture
	for _, l := range layers {
		var err error
		if img, err = mutate.Append(img, mutate.Addendum{Layer: l.layer, History: v1.History{CreatedBy: "test layer"}}); err != nil {
			t.Fatal(err)
		}
		fx.compressed += l.compressed
		fx.uncompressed += l.uncomp
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config = cfg
	if platform != nil {
		cf.OS, cf.Architecture, cf.Variant = platform.OS, platform.Architecture, platform.Variant
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	fx.img = img
	return fx
}

const dpkgStatus = `Package: libc6
Status: install ok installed
Version: 2.36-9+deb12u7
Description: GNU C Library
 multi-line description: with a colon

Package: bash
Status: install ok installed
Version: 5.2.15-2+b7

Package: old-removed
Status: deinstall ok config-files
Version: 1.0
`

// fatImage has a shell, package managers, a compiler, setuid and setgid
// files, world-writable directories, a dpkg database with two installed
// packages, and a second layer that deletes a file and empties a
// directory of the first. It runs as root.
func fatImage(t testing.TB) fixture {
	big := make([]byte, 4<<20) // incompressible: the fat image must be the larger one
	rand.NewChaCha8([32]byte{}).Read(big)
	l1 := makeLayer(t, gzip.DefaultCompression, []file{
		dir("bin/", 0o755),
		reg("bin/sh", 0o755, "#!shell"),
		symlink("bin/bash", "sh"),
		symlink("bin/zsh", "/nonexistent/zsh"), // dangling: not a shell
		dir("usr/", 0o755),
		dir("usr/bin/", 0o755),
		reg("usr/bin/apt-get", 0o755, "apt"),
		reg("usr/bin/dpkg", 0o755, "dpkg"),
		reg("usr/bin/passwd", 0o4755, "passwd"),
		reg("usr/bin/wall", 0o2755, "wall"),
		reg("usr/bin/gcc-12", 0o755, "gcc"),
		symlink("usr/bin/gcc", "gcc-12"),
		reg("usr/local/go/bin/go", 0o755, "go toolchain"), // usr/local, usr/local/go, usr/local/go/bin implied
		dir("tmp/", 0o1777),
		dir("data/", 0o777),
		dir("var/", 0o755),
		dir("var/lib/", 0o755),
		dir("var/lib/dpkg/", 0o755),
		reg("var/lib/dpkg/status", 0o644, dpkgStatus),
		dir("etc/", 0o755),
		reg("etc/secret", 0o600, "s3cret"),
		reg("etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"),
		dir("opt/", 0o755),
		dir("opt/cache/", 0o755),
		reg("opt/cache/a", 0o644, "a"),
		reg("opt/cache/b", 0o644, "bb"),
		{name: "big.bin", typ: tar.TypeReg, mode: 0o644, content: big},
	})
	l2 := makeLayer(t, gzip.DefaultCompression, []file{
		reg("etc/.wh.secret", 0o644, ""),
		dir("opt/cache/", 0o755),
		reg("opt/cache/.wh..wh..opq", 0o644, ""),
		reg("opt/cache/c", 0o644, "ccc"),
	})
	return makeImage(t, v1.Config{
		Entrypoint: []string{"/bin/sh", "-c"},
		Cmd:        []string{"echo hi"},
		Env:        []string{"PATH=/usr/local/go/bin:/usr/bin:/bin", "GOPATH=/go"},
	}, &v1.Platform{OS: "linux", Architecture: "amd64"}, l1, l2)
}

// The fat image's final filesystem.
var (
	fatFiles = []string{"/big.bin", "/bin/sh", "/etc/passwd", "/opt/cache/c", "/usr/bin/apt-get", "/usr/bin/dpkg",
		"/usr/bin/gcc-12", "/usr/bin/passwd", "/usr/bin/wall", "/usr/local/go/bin/go", "/var/lib/dpkg/status"}
	fatSymlinks = 3
	fatDirs     = 14 // bin usr usr/bin usr/local usr/local/go usr/local/go/bin tmp data var var/lib var/lib/dpkg etc opt opt/cache
)

var (
	goBinOnce sync.Once
	goBin     []byte
	goBinInfo *debug.BuildInfo
	goBinErr  error
)

// goExecutable is a small Go executable with build info: the smallest
// tool of the Go toolchain, else this test binary.
func goExecutable(t testing.TB) ([]byte, *debug.BuildInfo) {
	goBinOnce.Do(func() {
		var paths []string
		if root, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
			dir := filepath.Join(strings.TrimSpace(string(root)), "pkg", "tool", runtime.GOOS+"_"+runtime.GOARCH)
			ents, _ := os.ReadDir(dir)
			sort.Slice(ents, func(i, j int) bool {
				a, _ := ents[i].Info()
				b, _ := ents[j].Info()
				return a != nil && b != nil && a.Size() < b.Size()
			})
			for _, e := range ents {
				paths = append(paths, filepath.Join(dir, e.Name()))
			}
		}
		if p, err := os.Executable(); err == nil {
			paths = append(paths, p)
		}
		goBinErr = errors.New("no Go executable with build info found")
		for _, p := range paths {
			if bi, err := buildinfo.ReadFile(p); err == nil {
				goBin, goBinErr = os.ReadFile(p)
				goBinInfo = bi
				return
			}
		}
	})
	if goBinErr != nil {
		t.Fatal(goBinErr)
	}
	return goBin, goBinInfo
}

// slimImage is a ko-style image: one Go executable, a passwd file, and a
// non-root user.
func slimImage(t testing.TB, platform *v1.Platform) fixture {
	bin, _ := goExecutable(t)
	l := makeLayer(t, gzip.BestSpeed, []file{
		dir("ko-app/", 0o755),
		{name: "ko-app/hello", typ: tar.TypeReg, mode: 0o555, content: bin},
		dir("etc/", 0o755),
		reg("etc/passwd", 0o644, "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n"),
	})
	return makeImage(t, v1.Config{User: "nonroot", Entrypoint: []string{"/ko-app/hello"}}, platform, l)
}

var (
	fixturesOnce sync.Once
	fat, slim    fixture
)

func fixtures(t testing.TB) (fixture, fixture) {
	fixturesOnce.Do(func() {
		fat = fatImage(t)
		slim = slimImage(t, &v1.Platform{OS: "linux", Architecture: "amd64"})
	})
	return fat, slim
}

func writeLayout(t testing.TB, dir string, imgs map[string]v1.Image) {
	t.Helper()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(imgs))
	for n := range imgs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := p.AppendImage(imgs[n], layout.WithAnnotations(map[string]string{specs.AnnotationRefName: n})); err != nil {
			t.Fatal(err)
		}
	}
}

// tarDir writes dir as a tar archive (an oci-archive when dir is a layout).
func tarDir(t testing.TB, dir, out string) {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

func compareRefs(t *testing.T, opt compare.Options, refs ...string) *compare.Report {
	t.Helper()
	r, err := compare.Compare(context.Background(), refs, opt)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAnalyzeKnownAnswers(t *testing.T) {
	fat, slim := fixtures(t)
	dir := t.TempDir()
	writeLayout(t, dir, map[string]v1.Image{"kiln.local/fat:v1": fat.img, "kiln.local/slim:v1": slim.img})
	r := compareRefs(t, compare.Options{StoreDir: dir, TopFiles: 100}, "kiln.local/fat:v1", "kiln.local/slim:v1")
	if len(r.Images) != 2 || r.Baseline != "kiln.local/fat:v1" {
		t.Fatalf("report has %d images, baseline %q", len(r.Images), r.Baseline)
	}
	f, s := r.Images[0], r.Images[1]

	t.Run("sizes", func(t *testing.T) {
		if f.CompressedSize != fat.compressed || f.UncompressedSize != fat.uncompressed {
			t.Errorf("fat: compressed %d uncompressed %d, want %d %d", f.CompressedSize, f.UncompressedSize, fat.compressed, fat.uncompressed)
		}
		if s.CompressedSize != slim.compressed || s.UncompressedSize != slim.uncompressed {
			t.Errorf("slim: compressed %d uncompressed %d, want %d %d", s.CompressedSize, s.UncompressedSize, slim.compressed, slim.uncompressed)
		}
		if len(f.Layers) != 2 || f.Layers[0].CompressedSize+f.Layers[1].CompressedSize != fat.compressed || f.Layers[1].Entries != 4 {
			t.Errorf("fat layers: %+v", f.Layers)
		}
		if f.Layers[0].CreatedBy != "test layer" {
			t.Errorf("created by %q", f.Layers[0].CreatedBy)
		}
		want := change(fat.compressed, slim.compressed)
		got := s.Delta.CompressedSize
		if got.Diff != want.Diff || *got.Percent != *want.Percent || *got.Reduction != -*want.Percent || *got.Percent >= 0 {
			t.Errorf("compressed delta %+v (percent %v), want diff %d percent %v", got, *got.Percent, want.Diff, *want.Percent)
		}
		if f.Delta != nil {
			t.Error("the baseline has a delta")
		}
	})

	t.Run("files and whiteouts", func(t *testing.T) {
		var paths []string
		var total int64
		for _, lf := range f.LargestFiles {
			paths = append(paths, lf.Path)
			total += lf.Size
		}
		sort.Strings(paths)
		if !slices.Equal(paths, fatFiles) {
			t.Errorf("files %v\nwant %v", paths, fatFiles)
		}
		if f.Files != len(fatFiles) || f.Symlinks != fatSymlinks || f.Dirs != fatDirs || f.FileBytes != total {
			t.Errorf("files %d symlinks %d dirs %d bytes %d, want %d %d %d %d", f.Files, f.Symlinks, f.Dirs, f.FileBytes, len(fatFiles), fatSymlinks, fatDirs, total)
		}
		if f.LargestFiles[0].Path != "/big.bin" || f.LargestFiles[0].Size != 4<<20 {
			t.Errorf("largest file %+v", f.LargestFiles[0])
		}
		if s.Files != 2 || s.Dirs != 2 || s.Delta.Files.Diff != int64(2-len(fatFiles)) {
			t.Errorf("slim: files %d dirs %d delta %+v", s.Files, s.Dirs, s.Delta.Files)
		}
	})

	t.Run("attack surface", func(t *testing.T) {
		want := compare.Surface{
			Shells:              []string{"/bin/bash", "/bin/sh"},
			PackageManagers:     []string{"/usr/bin/apt-get", "/usr/bin/dpkg"},
			PackageDatabases:    []string{"/var/lib/dpkg/status"},
			Compilers:           []string{"/usr/bin/gcc", "/usr/bin/gcc-12", "/usr/local/go/bin/go"},
			Setuid:              []string{"/usr/bin/passwd"},
			Setgid:              []string{"/usr/bin/wall"},
			WorldWritableDirs:   []string{"/data"},
			WorldWritableSticky: []string{"/tmp"},
			User:                "",
			RunsAsRoot:          true,
		}
		if !reflect.DeepEqual(f.Surface, want) {
			t.Errorf("fat surface\n got %+v\nwant %+v", f.Surface, want)
		}
		empty := []string{}
		wantSlim := compare.Surface{Shells: empty, PackageManagers: empty, PackageDatabases: empty, Compilers: empty,
			Setuid: empty, Setgid: empty, WorldWritableDirs: empty, WorldWritableSticky: empty, User: "nonroot"}
		if !reflect.DeepEqual(s.Surface, wantSlim) {
			t.Errorf("slim surface\n got %+v\nwant %+v", s.Surface, wantSlim)
		}
		if !slices.Equal(f.Config.Entrypoint, []string{"/bin/sh", "-c"}) || !slices.Equal(f.Config.Cmd, []string{"echo hi"}) || len(f.Config.Env) != 2 {
			t.Errorf("fat config %+v", f.Config)
		}
	})

	t.Run("packages", func(t *testing.T) {
		want := []compare.Package{
			{Name: "bash", Version: "5.2.15-2+b7", Type: "deb", Location: "/var/lib/dpkg/status"},
			{Name: "libc6", Version: "2.36-9+deb12u7", Type: "deb", Location: "/var/lib/dpkg/status"},
		}
		if !reflect.DeepEqual(f.Packages, want) || f.PackageSource != compare.PackagesFromImage {
			t.Errorf("fat packages %+v from %s", f.Packages, f.PackageSource)
		}
		if len(s.GoBinaries) != 1 {
			t.Fatalf("slim go binaries: %+v", s.GoBinaries)
		}
		_, bi := goExecutable(t)
		gb := s.GoBinaries[0]
		if gb.Path != "/ko-app/hello" || gb.GoVersion != bi.GoVersion || gb.Package != bi.Path || gb.Module != bi.Main.Path || len(gb.Deps) != len(bi.Deps) {
			t.Errorf("go binary %+v, want /ko-app/hello with %s", gb, bi)
		}
		if !slices.ContainsFunc(s.Packages, func(p compare.Package) bool { return p.Type == "go" && p.Version == bi.GoVersion }) {
			t.Errorf("slim packages lack the Go toolchain: %+v", s.Packages)
		}
		if !slices.Equal(s.Delta.PackagesRemoved, []string{"bash", "libc6"}) {
			t.Errorf("removed %v", s.Delta.PackagesRemoved)
		}
	})
}

// change is the Change compare must compute.
func change(base, v int64) compare.Change {
	r := compare.NewReport([]compare.Image{{CompressedSize: base}, {CompressedSize: v}})
	return r.Images[1].Delta.CompressedSize
}

func TestChangePercent(t *testing.T) {
	c := change(246_000_000, 1_210_000)
	if c.Diff != 1_210_000-246_000_000 || *c.Percent != -99.51 || *c.Reduction != 99.51 {
		t.Errorf("%+v %v %v", c, *c.Percent, *c.Reduction)
	}
	if c := change(0, 5); c.Percent != nil || c.Reduction != nil {
		t.Errorf("a zero baseline gave a percentage: %+v", c)
	}
}

func TestWhiteoutThenRecreate(t *testing.T) {
	// A file deleted and a directory replaced by a file in one layer; a
	// whiteout in the same layer as the path it names does not hide it.
	l1 := makeLayer(t, gzip.DefaultCompression, []file{dir("a/", 0o755), reg("a/x", 0o644, "x"), reg("a/y", 0o644, "y"), dir("d/", 0o755), reg("d/in", 0o644, "in")})
	l2 := makeLayer(t, gzip.DefaultCompression, []file{reg("a/.wh.x", 0, ""), reg("a/x", 0o644, "new x"), reg("d", 0o644, "d is a file now")})
	fx := makeImage(t, v1.Config{User: "0"}, nil, l1, l2)
	dir := t.TempDir()
	writeLayout(t, dir, map[string]v1.Image{"x:latest": fx.img})
	r := compareRefs(t, compare.Options{TopFiles: 10}, "oci:"+dir, "oci:"+dir+":x")
	im := r.Images[0]
	var paths []string
	for _, f := range im.LargestFiles {
		paths = append(paths, f.Path+"="+f.Mode)
	}
	sort.Strings(paths)
	if want := []string{"/a/x=0644", "/a/y=0644", "/d=0644"}; !slices.Equal(paths, want) {
		t.Errorf("files %v, want %v", paths, want)
	}
	if im.Files != 3 || im.Dirs != 1 || !im.Surface.RunsAsRoot {
		t.Errorf("files %d dirs %d root %v", im.Files, im.Dirs, im.Surface.RunsAsRoot)
	}
	if im.Platform != "" {
		t.Errorf("platform %q for a config without one", im.Platform)
	}
}

func TestInputForms(t *testing.T) {
	fat, slim := fixtures(t)
	ctx := context.Background()
	tmp := t.TempDir()

	// A registry with the fat image, an index (amd64 fat, arm64 slim) and an
	// SPDX SBOM attestation of the slim image.
	host := testutil.Registry(t)
	mustWrite := func(ref string, img v1.Image) {
		t.Helper()
		r, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(r, img); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite(host+"/app:fat", fat.img)
	slimArm := slimImage(t, &v1.Platform{OS: "linux", Architecture: "arm64"})
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: slimArm.img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: fat.img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	multi, err := name.ParseReference(host + "/app:multi")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(multi, idx); err != nil {
		t.Fatal(err)
	}
	mustWrite(host+"/app:slim", slim.img)
	slimDigest, _ := slim.img.Digest()
	mustWrite(host+"/app:"+sign.AttestationTag(slimDigest), sbomAttestation(t, slimDigest))

	// oci:DIR with two images, oci:DIR with one, the same as oci-archive, a
	// docker archive, and a local store.
	ociTwo := filepath.Join(tmp, "two")
	writeLayout(t, ociTwo, map[string]v1.Image{"example.com/fat:v1": fat.img, "example.com/slim:v1": slim.img, "example.com/slim:v2": slim.img})
	ociOne := filepath.Join(tmp, "one")
	writeLayout(t, ociOne, map[string]v1.Image{"latest": slim.img})
	archive := filepath.Join(tmp, "two.tar")
	tarDir(t, ociTwo, archive)
	docker := filepath.Join(tmp, "fat.docker.tar")
	fatTag, err := name.NewTag("example.com/fat:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(docker, fatTag, fat.img); err != nil {
		t.Fatal(err)
	}
	storeDir := filepath.Join(tmp, "store")
	writeLayout(t, storeDir, map[string]v1.Image{"kiln.local/slim:latest": slim.img, "kiln.local/fat:v1": fat.img})

	unpack := filepath.Join(tmp, "unpack")
	if err := os.Mkdir(unpack, 0o755); err != nil {
		t.Fatal(err)
	}
	opt := compare.Options{StoreDir: storeDir, TempDir: unpack, Dir: tmp}
	for _, tc := range []struct {
		ref      string
		kind     string
		want     fixture
		platform *v1.Platform
		index    bool
	}{
		{ref: host + "/app:fat", kind: compare.KindRegistry, want: fat},
		{ref: host + "/app:multi", kind: compare.KindRegistry, want: fat, index: true},
		{ref: host + "/app:multi", kind: compare.KindRegistry, want: slimArm, platform: &v1.Platform{OS: "linux", Architecture: "arm64"}, index: true},
		// An arm64 entry names no variant; v8 is the same (base and compare once disagreed).
		{ref: host + "/app:multi", kind: compare.KindRegistry, want: slimArm, platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, index: true},
		{ref: "oci:" + ociTwo + ":example.com/fat:v1", kind: compare.KindOCI, want: fat},
		{ref: "oci:" + ociTwo + ":v2", kind: compare.KindOCI, want: slim},
		{ref: "oci:one", kind: compare.KindOCI, want: slim},
		{ref: "oci:one:latest", kind: compare.KindOCI, want: slim},
		{ref: "oci-archive:" + archive + ":example.com/fat:v1", kind: compare.KindOCIArchive, want: fat},
		{ref: "oci-archive:two.tar:v2", kind: compare.KindOCIArchive, want: slim},
		{ref: "docker-archive:" + docker, kind: compare.KindDockerArchive, want: fat},
		{ref: "docker-archive:" + docker + ":example.com/fat:v1", kind: compare.KindDockerArchive, want: fat},
		{ref: "kiln.local/slim", kind: compare.KindStore, want: slim},
		{ref: "kiln.local/fat:v1", kind: compare.KindStore, want: fat},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			o := opt
			o.Platform = tc.platform
			src, err := compare.Open(ctx, tc.ref, o)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			want, _ := tc.want.img.Digest()
			if src.Kind != tc.kind || src.Digest != want || (src.IndexDigest.Hex != "") != tc.index {
				t.Errorf("kind %s digest %s index %q, want %s %s %v", src.Kind, src.Digest, src.IndexDigest, tc.kind, want, tc.index)
			}
			im, err := compare.Analyze(ctx, src, o)
			if err != nil {
				t.Fatal(err)
			}
			if im.CompressedSize != tc.want.compressed || im.UncompressedSize != tc.want.uncompressed {
				t.Errorf("sizes %d %d, want %d %d", im.CompressedSize, im.UncompressedSize, tc.want.compressed, tc.want.uncompressed)
			}
		})
	}
	if left, _ := os.ReadDir(unpack); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}

	t.Run("not found", func(t *testing.T) {
		for ref, want := range map[string]string{
			host + "/app:nope":   "not found in the registry",
			"kiln.local/slim:v9": "no image named kiln.local/slim:v9 (it has kiln.local/fat:v1, kiln.local/slim:latest) in the local store " + storeDir,
			"oci:one:v9":         "no image named v9 (it has latest)",
		} {
			_, err := compare.Open(ctx, ref, opt)
			if err == nil || err.Error() != ref+": "+want && !strings.HasPrefix(err.Error(), ref+": "+want) {
				t.Errorf("Open(%s) = %v, want %q", ref, err, want)
			}
		}
	})

	t.Run("sbom", func(t *testing.T) {
		r := compareRefs(t, opt, host+"/app:fat", host+"/app:slim")
		s := r.Images[1]
		if s.SBOM == nil || s.PackageSource != compare.PackagesFromSBOM {
			t.Fatalf("no SBOM read: %+v", s.SBOM)
		}
		if s.SBOM.SignatureVerified || !strings.Contains(s.SBOM.Note, "without checking its signature") || s.SBOM.Tag != sign.AttestationTag(slimDigest) {
			t.Errorf("sbom %+v", s.SBOM)
		}
		want := []compare.Package{
			{Name: "example.com/hello", Version: "v1.2.3", Type: "spdx", Location: s.SBOM.Tag},
			{Name: "go", Version: "go1.26.0", Type: "spdx", Location: s.SBOM.Tag},
		}
		if !reflect.DeepEqual(s.Packages, want) {
			t.Errorf("packages %+v", s.Packages)
		}
		var out bytes.Buffer
		if err := compare.Render(&out, r, compare.FormatTable); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "signature not checked") {
			t.Errorf("the table does not say the SBOM signature was not checked:\n%s", out.String())
		}
	})
}

// sbomAttestation is a cosign .att image holding one DSSE envelope with an
// SPDX statement about d (its signature is junk: compare does not check it).
func sbomAttestation(t testing.TB, d v1.Hash) v1.Image {
	doc := map[string]any{
		"spdxVersion": "SPDX-2.3",
		"packages": []map[string]any{
			{"name": "example.com/app", "SPDXID": "SPDXRef-Image", "versionInfo": d.String(), "primaryPackagePurpose": "CONTAINER"},
			{"name": "example.com/hello", "SPDXID": "SPDXRef-Main", "versionInfo": "v1.2.3"},
			{"name": "go", "SPDXID": "SPDXRef-Go", "versionInfo": "go1.26.0"},
		},
	}
	pred, _ := json.Marshal(doc)
	st, _ := json.Marshal(sign.Statement{Type: sign.StatementType, PredicateType: sbom.PredicateType, Predicate: pred,
		Subject: []sign.Subject{{Name: "app", Digest: map[string]string{d.Algorithm: d.Hex}}}})
	env, _ := json.Marshal(map[string]any{
		"payloadType": sign.InTotoPayloadType,
		"payload":     base64.StdEncoding.EncodeToString(st),
		"signatures":  []map[string]string{{"keyid": "", "sig": "bm90IGEgc2lnbmF0dXJl"}},
	})
	img, err := mutate.Append(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON),
		mutate.Addendum{Layer: static.NewLayer(env, sign.DSSEMediaType), Annotations: map[string]string{
			sign.PredicateTypeAnnotation: sbom.PredicateType, sign.SignatureAnnotation: "",
		}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestErrors(t *testing.T) {
	_, slim := fixtures(t)
	tmp := t.TempDir()
	garbage := filepath.Join(tmp, "garbage.tar")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("this is not an archive\n"), 100), 0o644); err != nil {
		t.Fatal(err)
	}
	emptyTar := filepath.Join(tmp, "empty.tar")
	tarDir(t, t.TempDir(), emptyTar)
	two := filepath.Join(tmp, "two")
	writeLayout(t, two, map[string]v1.Image{"a:v1": slim.img, "b:v1": slim.img})
	badLayer := filepath.Join(tmp, "badlayer")
	notTar, _ := mutate.AppendLayers(empty.Image, static.NewLayer([]byte("not a tar stream at all, just some bytes that are long enough to fail"), types.DockerLayer))
	writeLayout(t, badLayer, map[string]v1.Image{"bad:latest": notTar})

	for _, tc := range []struct {
		ref  string
		want string
	}{
		{"oci-archive:" + garbage, "not a tar archive"},
		{"oci-archive:" + emptyTar, "not an OCI archive (no index.json inside)"},
		{"docker-archive:" + garbage, "not a docker archive"},
		{"oci-archive:" + filepath.Join(tmp, "missing.tar"), "missing.tar: no such file"},
		{"docker-archive:" + filepath.Join(tmp, "missing.tar"), "missing.tar: no such file"},
		{"oci:" + filepath.Join(tmp, "nowhere"), "nowhere: no such directory"},
		{"oci:" + tmp, "not an OCI image layout (no index.json)"},
		{"oci:" + two, "2 images (a:v1, b:v1): name one after a colon"},
		{"oci:" + two + ":c", "no image named c (it has a:v1, b:v1)"},
		{"oci:" + two + ":v1", "tag v1 is ambiguous"},
		{"oci:" + badLayer, "layer 1"},
		{"kiln.local/none:v1", "no local store"},
		{"127.0.0.1:1/x:y", "cannot reach the registry 127.0.0.1:1: dial tcp 127.0.0.1:1: connect: connection refused"},
		{"UPPER CASE", "not an image reference"},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			start := time.Now()
			_, err := compare.Compare(context.Background(), []string{tc.ref}, compare.Options{StoreDir: filepath.Join(tmp, "nostore")})
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.HasPrefix(msg, tc.ref+": ") || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line starting with the reference and containing %q", msg, tc.want)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestPlatformMismatch(t *testing.T) {
	_, slim := fixtures(t)
	dir := t.TempDir()
	writeLayout(t, dir, map[string]v1.Image{"s:latest": slim.img})
	_, err := compare.Open(context.Background(), "oci:"+dir, compare.Options{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}})
	if err == nil || !strings.Contains(err.Error(), "the image is linux/amd64, not linux/arm64") {
		t.Errorf("err = %v", err)
	}
}

func TestBudget(t *testing.T) {
	fat, slim := fixtures(t)
	dir := t.TempDir()
	writeLayout(t, dir, map[string]v1.Image{"fat": fat.img, "slim": slim.img})
	fatRef, slimRef := "oci:"+dir+":fat", "oci:"+dir+":slim"
	shrink := compareRefs(t, compare.Options{}, fatRef, slimRef)
	grow := compareRefs(t, compare.Options{}, slimRef, fatRef)
	zero, ten := 0.0, 10.0
	for _, tc := range []struct {
		name   string
		r      *compare.Report
		b      compare.Budget
		failed bool
		want   string
	}{
		{"no budget", grow, compare.Budget{}, false, ""},
		{"smaller passes growth", shrink, compare.Budget{MaxGrowth: &zero}, false, ""},
		{"under max size", shrink, compare.Budget{MaxSize: slim.compressed}, false, ""},
		{"baseline not checked", grow, compare.Budget{MaxSize: fat.compressed}, false, ""},
		{"over max size", shrink, compare.Budget{MaxSize: slim.compressed - 1}, true, slimRef + " is "},
		{"over max growth", grow, compare.Budget{MaxGrowth: &ten}, true, fatRef + " is "},
		{"both", grow, compare.Budget{MaxSize: 1000, MaxGrowth: &ten}, true, "max-size budget of 1.00 kB; " + fatRef},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.r.CheckBudget(tc.b)
			if (err != nil) != tc.failed {
				t.Fatalf("err = %v, want failure %v", err, tc.failed)
			}
			if err == nil {
				return
			}
			if !errors.Is(err, compare.ErrBudget) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err = %q, want one line with %q", err, tc.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	for in, want := range map[string]int64{"10MB": 10_000_000, "10 mb": 10_000_000, "512KiB": 512 << 10, "1.5GB": 1_500_000_000, "2048": 2048, "1GiB": 1 << 30} {
		if got, err := compare.ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "MB", "ten", "-1MB", "10XB", "1e400"} {
		if _, err := compare.ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) succeeded", bad)
		}
	}
	if p, err := compare.ParsePercent("2.5%"); err != nil || p != 2.5 {
		t.Errorf("ParsePercent = %v, %v", p, err)
	}
	if _, err := compare.ParsePercent("x"); err == nil {
		t.Error("ParsePercent(x) succeeded")
	}
	for in, want := range map[int64]string{512: "512 B", 1_210_000: "1.21 MB", 149_000_000: "149 MB", 12_345: "12.3 kB", 999_999: "1.00 MB"} {
		if got := compare.FormatSize(in); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", in, got, want)
		}
	}
	for _, f := range []string{"table", "json", "markdown", "md", "html"} {
		if _, err := compare.ParseFormat(f); err != nil {
			t.Error(err)
		}
	}
	if _, err := compare.ParseFormat("yaml"); err == nil {
		t.Error("ParseFormat(yaml) succeeded")
	}
}

func TestRender(t *testing.T) {
	fat, slim := fixtures(t)
	dir := t.TempDir()
	writeLayout(t, dir, map[string]v1.Image{"fat": fat.img, "slim": slim.img})
	r := compareRefs(t, compare.Options{}, "oci:"+dir+":fat", "oci:"+dir+":slim", "oci:"+dir+":slim")
	render := func(f compare.Format) string {
		var b bytes.Buffer
		if err := compare.Render(&b, r, f); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	pct := *r.Images[1].Delta.CompressedSize.Percent

	table := render(compare.FormatTable)
	if testing.Verbose() {
		t.Log("\n" + table)
	}
	for _, want := range []string{"compressed", "shells", "/bin/bash, /bin/sh", "package managers", "setuid files", "1: /usr/bin/passwd",
		"world-writable dirs (sticky)", "runs as root", "(baseline)", "libc6", "/ko-app/hello", compare.FormatSize(fat.compressed)} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if !strings.Contains(table, compare.FormatSize(slim.compressed)+" (") {
		t.Errorf("table lacks the slim size and its change")
	}
	// Columns line up: the cells of each row start at the same offsets.
	lines := strings.Split(table, "\n")
	col := strings.Index(lines[2], "oci:")
	for _, l := range lines[2:10] {
		if len(l) <= col || l[col-2:col] != "  " || l[col] == ' ' {
			t.Errorf("misaligned row %q (column at %d)", l, col)
		}
	}

	mdown := render(compare.FormatMarkdown)
	for _, want := range []string{"| shells | /bin/bash, /bin/sh | none | none |", "|---|---|---|---|", "| compressed |", "<details>", "| libc6 | 2.36-9+deb12u7 | deb |"} {
		if !strings.Contains(mdown, want) {
			t.Errorf("markdown lacks %q:\n%s", want, mdown)
		}
	}
	if !strings.Contains(mdown, "(-") || !strings.Contains(mdown, "%)") {
		t.Errorf("markdown lacks a percentage (%v)", pct)
	}

	page := render(compare.FormatHTML)
	if !strings.Contains(page, "<svg") || strings.Contains(strings.ToLower(page), "<script") || strings.Contains(page, "javascript:") {
		t.Errorf("html: want an <svg> and no script")
	}
	if n := strings.Count(page, "<rect"); n != 2*len(r.Images)+2 { // a bar per size per image, plus the legend
		t.Errorf("html has %d <rect>, want %d", n, 2*len(r.Images)+2)
	}
	for _, want := range []string{"<th>shells</th>", "<td>/bin/bash, /bin/sh</td>", "world-writable dirs", "runs as root", "<!DOCTYPE html>"} {
		if !strings.Contains(page, want) {
			t.Errorf("html lacks %q", want)
		}
	}

	var back compare.Report
	if err := json.Unmarshal([]byte(render(compare.FormatJSON)), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, r) {
		t.Errorf("json does not round-trip")
	}
	js := render(compare.FormatJSON)
	for _, want := range []string{`"attackSurface"`, `"reductionPercent"`, `"shells": [`, `"setuid": [`} {
		if !strings.Contains(js, want) {
			t.Errorf("json lacks %s", want)
		}
	}
}

func TestCanceled(t *testing.T) {
	fat, _ := fixtures(t)
	dir := t.TempDir()
	writeLayout(t, dir, map[string]v1.Image{"fat": fat.img})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := compare.Compare(ctx, []string{"oci:" + dir}, compare.Options{}); err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Errorf("err = %v", err)
	}
}

func BenchmarkCompareTwo20MB(b *testing.B) {
	var refs []string
	for range 2 {
		img, err := random.Image(20<<20, 1)
		if err != nil {
			b.Fatal(err)
		}
		dir := filepath.Join(b.TempDir(), "img")
		writeLayout(b, dir, map[string]v1.Image{"latest": img})
		refs = append(refs, "oci:"+dir)
	}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		r, err := compare.Compare(ctx, refs, compare.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if r.Images[1].UncompressedSize < 20<<20 {
			b.Fatal("short read")
		}
	}
}

func TestAttestationErrorIsANote(t *testing.T) {
	_, slim := fixtures(t)
	reg := testutil.QuietRegistry()
	host := testutil.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".att") {
			http.Error(w, `{"errors":[{"code":"DENIED","message":"no attestations for you"}]}`, http.StatusForbidden)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	ref := host + "/app:slim"
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, slim.img); err != nil {
		t.Fatal(err)
	}
	rep := compareRefs(t, compare.Options{}, ref)
	im := rep.Images[0]
	if im.SBOM != nil || im.PackageSource != compare.PackagesFromImage || len(im.Notes) != 1 || !strings.Contains(im.Notes[0], "no SBOM read") {
		t.Errorf("sbom %+v, source %s, notes %q", im.SBOM, im.PackageSource, im.Notes)
	}
}

func TestDetectionVariants(t *testing.T) {
	// Merged /usr (bin is a symlink), a shell reached through an absolute
	// symlink via that directory symlink, a symlink loop, a venv's pip,
	// distroless's dpkg status.d, Alpine's apk database and an rpm database.
	l := makeLayer(t, gzip.DefaultCompression, []file{
		symlink("bin", "usr/bin"),
		dir("usr/bin/", 0o755),
		reg("usr/bin/dash", 0o755, "dash"),
		symlink("usr/bin/sh", "/bin/dash"),
		symlink("usr/bin/zsh", "zsh2"),
		symlink("usr/bin/zsh2", "zsh"),
		reg("usr/bin/x86_64-linux-gnu-gcc-12", 0o755, "gcc"),
		reg("opt/venv/bin/pip3.11", 0o755, "pip"),
		reg("var/lib/dpkg/status.d/base", 0o644, "Package: base-files\nVersion: 12.4+deb12u5\n"),
		reg("var/lib/dpkg/status.d/base.md5sums", 0o644, "abc  etc/debian_version\n"),
		reg("lib/apk/db/installed", 0o644, "C:Q1abc=\nP:musl\nV:1.2.4-r2\n\nC:Q1def=\nP:busybox\nV:1.36.1-r5\n"),
		reg("var/lib/rpm/rpmdb.sqlite", 0o644, "sqlite"),
		reg("etc/passwd", 0o644, "toor:x:0:0::/root:/bin/sh\n"),
	})
	fx := makeImage(t, v1.Config{User: "toor:0"}, nil, l)
	dir := t.TempDir()
	writeLayout(t, dir, map[string]v1.Image{"v": fx.img})
	im := compareRefs(t, compare.Options{}, "oci:"+dir).Images[0]
	s := im.Surface
	if want := []string{"/usr/bin/dash", "/usr/bin/sh"}; !slices.Equal(s.Shells, want) {
		t.Errorf("shells %v, want %v", s.Shells, want)
	}
	if want := []string{"/opt/venv/bin/pip3.11"}; !slices.Equal(s.PackageManagers, want) {
		t.Errorf("package managers %v, want %v", s.PackageManagers, want)
	}
	if want := []string{"/usr/bin/x86_64-linux-gnu-gcc-12"}; !slices.Equal(s.Compilers, want) {
		t.Errorf("compilers %v, want %v", s.Compilers, want)
	}
	if want := []string{"/var/lib/dpkg/status.d", "/lib/apk/db/installed", "/var/lib/rpm"}; !slices.Equal(s.PackageDatabases, want) {
		t.Errorf("package databases %v, want %v", s.PackageDatabases, want)
	}
	if !s.RunsAsRoot {
		t.Error("toor (uid 0 in /etc/passwd) is root")
	}
	var got []string
	for _, p := range im.Packages {
		got = append(got, p.Type+":"+p.Name+"@"+p.Version)
	}
	if want := []string{"apk:busybox@1.36.1-r5", "apk:musl@1.2.4-r2", "deb:base-files@12.4+deb12u5"}; !slices.Equal(got, want) {
		t.Errorf("packages %v, want %v", got, want)
	}
}

// TestStreams reads an 8 MB layer with far less than 8 MB of allocation:
// no layer is held in memory.
func TestStreams(t *testing.T) {
	img, err := random.Image(8<<20, 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeLayout(t, dir, map[string]v1.Image{"r": img})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := compareRefs(t, compare.Options{}, "oci:"+dir)
	runtime.ReadMemStats(&after)
	if r.Images[0].UncompressedSize < 8<<20 {
		t.Fatalf("read %d bytes", r.Images[0].UncompressedSize)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 2<<20 {
		t.Errorf("allocated %d bytes to read an 8 MB layer", n)
	}
}

func TestMissingArchiveWithName(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.tar")
	_, err := compare.Open(context.Background(), "oci-archive:"+missing+":example.com/fat:v1", compare.Options{})
	if err == nil || !strings.HasSuffix(err.Error(), ": "+missing+": no such file") {
		t.Errorf("err = %v", err)
	}
}
