package base

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"golang.org/x/crypto/x509roots/fallback/bundle"

	"github.com/kilnbuild/kiln/internal/testutil"
)

var (
	gorootOnce sync.Once
	gorootDir  string
)

// testGOROOT finds the toolchain the tests run with.
func testGOROOT(tb testing.TB) string {
	gorootOnce.Do(func() {
		if g := os.Getenv("GOROOT"); g != "" {
			gorootDir = g
			return
		}
		if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
			gorootDir = strings.TrimSpace(string(out))
			return
		}
		gorootDir = runtime.GOROOT() //nolint:staticcheck // last resort
	})
	if _, err := os.Stat(filepath.Join(gorootDir, "lib", "time", "zoneinfo.zip")); err != nil {
		tb.Fatalf("no zoneinfo.zip under GOROOT %q: %v", gorootDir, err)
	}
	return gorootDir
}

func staticOpts(tb testing.TB) Options {
	return Options{GOROOT: testGOROOT(tb), Dir: tb.TempDir()}
}

func anon() authn.Keychain { return authn.NewMultiKeychain() }

func plat(s string) v1.Platform {
	p, err := v1.ParsePlatform(s)
	if err != nil {
		panic(err)
	}
	return *p
}

// ---- static ----

func TestStaticDeterministic(t *testing.T) {
	ctx := context.Background()
	a, err := Static(ctx, staticOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Static(ctx, staticOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	if da, db := testutil.Digest(t, a), testutil.Digest(t, b); da != db {
		t.Fatalf("static index digest differs between runs: %s vs %s", da, db)
	}
	if err := validate.Index(a); err != nil {
		t.Fatalf("validate.Index: %v", err)
	}
	mt, err := a.MediaType()
	if err != nil || mt != types.OCIImageIndex {
		t.Fatalf("index media type = %q, %v", mt, err)
	}
}

func TestStaticNeedsGOROOTAndDir(t *testing.T) {
	ctx := context.Background()
	if _, err := Static(ctx, Options{Dir: t.TempDir()}); err == nil {
		t.Error("Static without GOROOT succeeded")
	}
	if _, err := Static(ctx, Options{GOROOT: testGOROOT(t)}); err == nil {
		t.Error("Static without Dir succeeded")
	}
	if _, err := Static(ctx, Options{GOROOT: t.TempDir(), Dir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "zoneinfo") {
		t.Errorf("Static with a GOROOT lacking zoneinfo.zip: %v", err)
	}
}

func TestStaticConfigs(t *testing.T) {
	idx, err := Static(context.Background(), staticOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"linux/amd64", "linux/arm64", "linux/arm/v7", "linux/arm/v6", "linux/386", "linux/ppc64le", "linux/s390x", "linux/riscv64"}
	if len(im.Manifests) != len(want) {
		t.Fatalf("index has %d manifests, want %d", len(im.Manifests), len(want))
	}
	var layerDigest v1.Hash
	for i, d := range im.Manifests {
		if d.Platform == nil || d.Platform.String() != want[i] {
			t.Errorf("manifest %d platform = %v, want %s", i, d.Platform, want[i])
			continue
		}
		if d.MediaType != types.OCIManifestSchema1 {
			t.Errorf("%s: descriptor media type %s", want[i], d.MediaType)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
			t.Errorf("%s: media types %s / %s", want[i], m.MediaType, m.Config.MediaType)
		}
		if len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
			t.Fatalf("%s: layers %+v", want[i], m.Layers)
		}
		if i == 0 {
			layerDigest = m.Layers[0].Digest
		} else if m.Layers[0].Digest != layerDigest {
			t.Errorf("%s: layer %s differs from the shared layer %s", want[i], m.Layers[0].Digest, layerDigest)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if got := cf.Platform().String(); got != want[i] {
			t.Errorf("config platform = %s, want %s", got, want[i])
		}
		if cf.Config.User != "65532" || cf.Config.WorkingDir != "/home/nonroot" {
			t.Errorf("%s: user %q workdir %q", want[i], cf.Config.User, cf.Config.WorkingDir)
		}
		wantEnv := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}
		if !slices.Equal(cf.Config.Env, wantEnv) {
			t.Errorf("%s: env %q", want[i], cf.Config.Env)
		}
		if !cf.Created.Time.Equal(time.Unix(0, 0)) {
			t.Errorf("%s: created %v", want[i], cf.Created)
		}
		if len(cf.History) != 1 || cf.History[0].CreatedBy == "" {
			t.Errorf("%s: history %+v", want[i], cf.History)
		}
		if len(cf.RootFS.DiffIDs) != 1 {
			t.Errorf("%s: diff ids %v", want[i], cf.RootFS.DiffIDs)
		}
		if err := validate.Image(img); err != nil {
			t.Errorf("%s: validate.Image: %v", want[i], err)
		}
	}
}

type tarFile struct {
	hdr  *tar.Header
	data []byte
}

func TestStaticLayerContents(t *testing.T) {
	opts := staticOpts(t)
	idx, err := Static(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()

	files := map[string]tarFile{}
	var prev string
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name <= prev {
			t.Errorf("entry %q follows %q: not sorted", hdr.Name, prev)
		}
		prev = hdr.Name
		if hdr.ModTime.Unix() != 0 {
			t.Errorf("%s: mtime %v, want the epoch", hdr.Name, hdr.ModTime)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[hdr.Name] = tarFile{hdr, data}
	}

	get := func(name string, typ byte) tarFile {
		t.Helper()
		f, ok := files[name]
		if !ok {
			t.Fatalf("layer lacks %s", name)
		}
		if f.hdr.Typeflag != typ {
			t.Fatalf("%s: type %c, want %c", name, f.hdr.Typeflag, typ)
		}
		return f
	}

	passwd := string(get("etc/passwd", tar.TypeReg).data)
	for _, want := range []string{
		"root:x:0:0:root:/root:/sbin/nologin",
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin",
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin",
	} {
		if !slices.Contains(strings.Split(passwd, "\n"), want) {
			t.Errorf("passwd lacks %q:\n%s", want, passwd)
		}
	}
	group := string(get("etc/group", tar.TypeReg).data)
	for _, want := range []string{"root:x:0:", "nobody:x:65534:", "nonroot:x:65532:"} {
		if !slices.Contains(strings.Split(group, "\n"), want) {
			t.Errorf("group lacks %q:\n%s", want, group)
		}
	}
	if got := string(get("etc/nsswitch.conf", tar.TypeReg).data); got != "hosts: files dns\n" {
		t.Errorf("nsswitch.conf = %q", got)
	}
	osr := string(get("etc/os-release", tar.TypeReg).data)
	if !strings.Contains(osr, "ID=kiln-static\n") || !strings.Contains(osr, "VERSION_ID=") || !strings.Contains(osr, "PRETTY_NAME=") {
		t.Errorf("os-release = %q", osr)
	}

	if h := get("tmp/", tar.TypeDir).hdr; h.Mode != 0o1777 {
		t.Errorf("/tmp mode %o, want 1777", h.Mode)
	}
	if h := get("home/nonroot/", tar.TypeDir).hdr; h.Mode != 0o700 || h.Uid != 65532 || h.Gid != 65532 {
		t.Errorf("/home/nonroot mode %o owner %d:%d", h.Mode, h.Uid, h.Gid)
	}
	if h := get("root/", tar.TypeDir).hdr; h.Mode != 0o700 || h.Uid != 0 {
		t.Errorf("/root mode %o owner %d", h.Mode, h.Uid)
	}
	for name, f := range files {
		if name == "home/nonroot/" {
			continue
		}
		if f.hdr.Uid != 0 || f.hdr.Gid != 0 {
			t.Errorf("%s owned by %d:%d, want root", name, f.hdr.Uid, f.hdr.Gid)
		}
		if f.hdr.Typeflag == tar.TypeReg && f.hdr.Mode != 0o644 {
			t.Errorf("%s mode %o, want 644", name, f.hdr.Mode)
		}
		if f.hdr.Typeflag == tar.TypeDir && strings.HasPrefix(name, "usr/") && f.hdr.Mode != 0o755 {
			t.Errorf("%s mode %o, want 755", name, f.hdr.Mode)
		}
	}

	// CA bundle: every root of the fallback bundle, in order, as parseable PEM.
	rest := get("etc/ssl/certs/ca-certificates.crt", tar.TypeReg).data
	var certs []*x509.Certificate
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatalf("cert %d: %v", len(certs), err)
		}
		certs = append(certs, c)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		t.Errorf("CA bundle has %d trailing bytes that are not PEM", len(rest))
	}
	if len(certs) < 100 {
		t.Errorf("CA bundle holds %d certificates, want ≥100", len(certs))
	}
	i := 0
	for r := range bundle.Roots() {
		if i >= len(certs) || !bytes.Equal(certs[i].Raw, r.Certificate) {
			t.Fatalf("CA bundle entry %d differs from bundle.Roots()", i)
		}
		i++
	}
	if i != len(certs) {
		t.Errorf("CA bundle has %d certs, bundle.Roots() %d", len(certs), i)
	}

	// Zoneinfo: every zip entry is there and loads.
	berlin := get("usr/share/zoneinfo/Europe/Berlin", tar.TypeReg).data
	loc, err := time.LoadLocationFromTZData("Europe/Berlin", berlin)
	if err != nil {
		t.Fatalf("Europe/Berlin: %v", err)
	}
	if _, off := time.Date(2024, 7, 1, 12, 0, 0, 0, loc).Zone(); off != 2*3600 {
		t.Errorf("Europe/Berlin summer offset %d, want 7200", off)
	}
	get("usr/share/zoneinfo/", tar.TypeDir)
	get("usr/share/zoneinfo/Europe/", tar.TypeDir)
	zr, err := zip.OpenReader(filepath.Join(opts.GOROOT, "lib", "time", "zoneinfo.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, zf := range zr.File {
		f, ok := files["usr/share/zoneinfo/"+zf.Name]
		if !ok {
			t.Errorf("layer lacks zone %s", zf.Name)
			continue
		}
		if uint64(len(f.data)) != zf.UncompressedSize64 {
			t.Errorf("zone %s: %d bytes, want %d", zf.Name, len(f.data), zf.UncompressedSize64)
		}
	}
}

func TestResolveStatic(t *testing.T) {
	b, err := Resolve(context.Background(), "static", staticOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	if b.Name() != "static" {
		t.Errorf("Name = %q", b.Name())
	}
	idx, ok := b.Index()
	if !ok {
		t.Fatal("static is not an index")
	}
	d, ok := b.Digest()
	if !ok || d != testutil.Digest(t, idx) {
		t.Errorf("Digest = %v, %v; index digest %v", d, ok, testutil.Digest(t, idx))
	}
	ps, err := b.Platforms()
	if err != nil || len(ps) != 8 {
		t.Fatalf("Platforms = %v, %v", ps, err)
	}
	for _, tc := range []struct{ req, want string }{
		{"linux/arm/v6", "linux/arm/v6"},
		{"linux/arm/v7", "linux/arm/v7"},
		{"linux/arm", "linux/arm/v7"}, // no variant: first arm in the index
		{"linux/arm64/v8", "linux/arm64"},
		{"linux/riscv64", "linux/riscv64"},
	} {
		img, err := b.Image(plat(tc.req))
		if err != nil {
			t.Errorf("Image(%s): %v", tc.req, err)
			continue
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if got := cf.Platform().String(); got != tc.want {
			t.Errorf("Image(%s) is %s, want %s", tc.req, got, tc.want)
		}
	}
	_, err = b.Image(plat("linux/mips64le"))
	if !errors.Is(err, ErrPlatformMissing) {
		t.Fatalf("Image(linux/mips64le) = %v, want ErrPlatformMissing", err)
	}
	want := `base "static" has no linux/mips64le image (it has linux/amd64, linux/arm64, linux/arm/v7, linux/arm/v6, linux/386, linux/ppc64le, linux/s390x, linux/riscv64)`
	if err.Error() != want {
		t.Errorf("error:\n got %s\nwant %s", err, want)
	}
}

// ---- scratch ----

func TestScratch(t *testing.T) {
	b, err := Resolve(context.Background(), "scratch", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Digest(); ok {
		t.Error("scratch has a digest")
	}
	if _, ok := b.Index(); ok {
		t.Error("scratch is an index")
	}
	if ps, err := b.Platforms(); err != nil || len(ps) == 0 {
		t.Errorf("Platforms = %v, %v", ps, err)
	}
	for _, p := range []string{"linux/amd64", "linux/arm/v7", "linux/loong64"} {
		img, err := b.Image(plat(p))
		if err != nil {
			t.Fatalf("Image(%s): %v", p, err)
		}
		if err := validate.Image(img); err != nil {
			t.Errorf("%s: validate.Image: %v", p, err)
		}
		ls, err := img.Layers()
		if err != nil || len(ls) != 0 {
			t.Errorf("%s: layers %v, %v", p, ls, err)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
			t.Errorf("%s: media types %s / %s", p, m.MediaType, m.Config.MediaType)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Config.User != "65532:65532" {
			t.Errorf("%s: scratch runs as %q, want 65532:65532 (not root)", p, cf.Config.User)
		}
		if cf.Platform().String() != p || len(cf.RootFS.DiffIDs) != 0 || cf.RootFS.Type != "layers" {
			t.Errorf("%s: config platform %s rootfs %+v", p, cf.Platform(), cf.RootFS)
		}
	}
	if _, err := b.Image(plat("windows/amd64")); !errors.Is(err, ErrPlatformMissing) {
		t.Errorf("Image(windows/amd64) = %v, want ErrPlatformMissing", err)
	}
}

// ---- remote ----

// platformImage is a random image whose config names p.
func platformImage(t *testing.T, p string) v1.Image {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	return withPlatform(t, img, p)
}

// withPlatform sets the platform in img's config.
func withPlatform(t *testing.T, img v1.Image, p string) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	pp := plat(p)
	cf.OS, cf.Architecture, cf.Variant = pp.OS, pp.Architecture, pp.Variant
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

type remoteFixture struct {
	host      string
	index     v1.ImageIndex
	children  map[string]v1.Hash // platform → manifest digest
	single    v1.Image
	indexRef  string
	singleRef string
}

func newRemoteFixture(t *testing.T) *remoteFixture {
	t.Helper()
	host := testutil.Registry(t)
	f := &remoteFixture{host: host, children: map[string]v1.Hash{}}

	// A random.Index gives an index of images without platforms; rebuild it
	// with platforms set, plus an attestation entry and one entry whose
	// platform is known only from its config.
	ri, err := random.Index(128, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(ri); err != nil {
		t.Fatal(err)
	}
	var adds []mutate.IndexAddendum
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		img := platformImage(t, p)
		pp := plat(p)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &pp}})
		f.children[p] = testutil.Digest(t, img)
	}
	rim, err := ri.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	att, err := ri.Image(rim.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	att = withPlatform(t, att, "unknown/unknown")
	adds = append(adds, mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
		Platform:    &v1.Platform{OS: "unknown", Architecture: "unknown"},
		Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest"},
	}})
	noPlat := platformImage(t, "linux/ppc64le")
	adds = append(adds, mutate.IndexAddendum{Add: noPlat})
	f.children["linux/ppc64le"] = testutil.Digest(t, noPlat)
	f.index = mutate.AppendManifests(empty.Index, adds...)
	if err := validate.Index(f.index); err != nil {
		t.Fatal(err)
	}

	f.indexRef = host + "/b:v1"
	ref, err := name.ParseReference(f.indexRef)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, f.index); err != nil {
		t.Fatal(err)
	}

	f.single = platformImage(t, "linux/arm/v7")
	f.singleRef = host + "/single:latest"
	ref, err = name.ParseReference(f.singleRef)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, f.single); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestRemoteIndex(t *testing.T) {
	f := newRemoteFixture(t)
	b, err := Resolve(context.Background(), f.indexRef, Options{Keychain: anon()})
	if err != nil {
		t.Fatal(err)
	}
	if b.Name() != f.indexRef {
		t.Errorf("Name = %q", b.Name())
	}
	if d, ok := b.Digest(); !ok || d != testutil.Digest(t, f.index) {
		t.Errorf("Digest = %v, %v, want %v", d, ok, testutil.Digest(t, f.index))
	}
	idx, ok := b.Index()
	if !ok || testutil.Digest(t, idx) != testutil.Digest(t, f.index) {
		t.Fatalf("Index = %v, %v", idx, ok)
	}
	if err := validate.Index(idx); err != nil {
		t.Errorf("validate.Index: %v", err)
	}
	ps, err := b.Platforms()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.String())
	}
	if want := []string{"linux/amd64", "linux/arm64", "linux/ppc64le"}; !slices.Equal(got, want) {
		t.Errorf("Platforms = %v, want %v", got, want)
	}

	var wg sync.WaitGroup
	for p, want := range f.children {
		wg.Add(1)
		go func() {
			defer wg.Done()
			img, err := b.Image(plat(p))
			if err != nil {
				t.Errorf("Image(%s): %v", p, err)
				return
			}
			if d, err := img.Digest(); err != nil || d != want {
				t.Errorf("Image(%s) digest %v, %v, want %v", p, d, err, want)
			}
			if err := validate.Image(img); err != nil {
				t.Errorf("Image(%s): validate.Image: %v", p, err)
			}
		}()
	}
	wg.Wait()

	_, err = b.Image(plat("linux/s390x"))
	if !errors.Is(err, ErrPlatformMissing) {
		t.Fatalf("Image(linux/s390x) = %v, want ErrPlatformMissing", err)
	}
	want := fmt.Sprintf(`base "%s" has no linux/s390x image (it has linux/amd64, linux/arm64, linux/ppc64le)`, f.indexRef)
	if err.Error() != want {
		t.Errorf("error:\n got %s\nwant %s", err, want)
	}
	if _, err := b.Image(plat("linux/amd64/v3")); !errors.Is(err, ErrPlatformMissing) {
		t.Errorf("Image(linux/amd64/v3) = %v, want ErrPlatformMissing (variant must match when given)", err)
	}
}

func TestRemoteDigestRef(t *testing.T) {
	f := newRemoteFixture(t)
	ref := f.host + "/b@" + testutil.Digest(t, f.index).String()
	b, err := Resolve(context.Background(), ref, Options{Keychain: anon(), Transport: http.DefaultTransport})
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := b.Digest(); d != testutil.Digest(t, f.index) {
		t.Errorf("Digest = %v", d)
	}
}

func TestRemoteSingleImage(t *testing.T) {
	f := newRemoteFixture(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // exercise the default keychain, without the user's config
	b, err := Resolve(context.Background(), f.singleRef, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Index(); ok {
		t.Error("single image resolved as an index")
	}
	if d, ok := b.Digest(); !ok || d != testutil.Digest(t, f.single) {
		t.Errorf("Digest = %v, %v", d, ok)
	}
	ps, err := b.Platforms()
	if err != nil || len(ps) != 1 || ps[0].String() != "linux/arm/v7" {
		t.Errorf("Platforms = %v, %v", ps, err)
	}
	for _, p := range []string{"linux/arm/v7", "linux/arm"} {
		img, err := b.Image(plat(p))
		if err != nil {
			t.Fatalf("Image(%s): %v", p, err)
		}
		if testutil.Digest(t, img) != testutil.Digest(t, f.single) {
			t.Errorf("Image(%s) is not the pushed image", p)
		}
		if err := validate.Image(img); err != nil {
			t.Errorf("validate.Image: %v", err)
		}
	}
	_, err = b.Image(plat("linux/amd64"))
	want := fmt.Sprintf(`base "%s" has no linux/amd64 image (it has linux/arm/v7)`, f.singleRef)
	if !errors.Is(err, ErrPlatformMissing) || err.Error() != want {
		t.Errorf("Image(linux/amd64) = %v, want %s", err, want)
	}
	if _, err := b.Image(plat("linux/arm/v6")); !errors.Is(err, ErrPlatformMissing) {
		t.Errorf("Image(linux/arm/v6) = %v, want ErrPlatformMissing", err)
	}
}

func wantKind(t *testing.T, err error, kind Kind, ref string, substrs ...string) {
	t.Helper()
	var be *Error
	if !errors.As(err, &be) {
		t.Fatalf("error %v (%T) is not a *base.Error", err, err)
	}
	if be.Kind != kind {
		t.Errorf("kind = %v, want %v (%v)", be.Kind, kind, err)
	}
	if be.Ref != ref {
		t.Errorf("Ref = %q, want %q", be.Ref, ref)
	}
	msg := err.Error()
	t.Log(msg)
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	if prefix := fmt.Sprintf("base image %q: ", ref); !strings.HasPrefix(msg, prefix) {
		t.Errorf("error %q lacks prefix %q", msg, prefix)
	}
	for _, s := range substrs {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q lacks %q", msg, s)
		}
	}
}

func TestRemoteNotFound(t *testing.T) {
	f := newRemoteFixture(t)
	for _, ref := range []string{f.host + "/nope:v1", f.host + "/b:v2"} {
		_, err := Resolve(context.Background(), ref, Options{Keychain: anon()})
		wantKind(t, err, NotFound, ref, "not found")
	}
}

func TestRemoteUnauthorized(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
	}))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/b:v1"
	_, err := Resolve(context.Background(), ref, Options{Keychain: anon()})
	wantKind(t, err, Unauthorized, ref, "docker login", "podman login")
}

func TestRemoteForbidden(t *testing.T) {
	// 403 without a structured body from an otherwise working registry.
	reg := testutil.QuietRegistry()
	host := testutil.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/manifests/") {
			http.Error(w, "forbidden\n<html>\n</html>", http.StatusForbidden)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	ref := host + "/b:v1"
	_, err := Resolve(context.Background(), ref, Options{Keychain: anon()})
	wantKind(t, err, Unauthorized, ref, "docker login")
}

func TestRemoteUnreachable(t *testing.T) {
	addr := testutil.FreeAddr(t)
	ref := addr + "/b:v1"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := Resolve(ctx, ref, Options{Keychain: anon()})
	wantKind(t, err, Unreachable, ref, "check the name and that the registry is reachable")
}

func TestInvalidReference(t *testing.T) {
	for _, ref := range []string{"", "UPPER/case:tag", "a:b:c:d", "reg/repo@sha256:nothex"} {
		_, err := Resolve(context.Background(), ref, Options{Keychain: anon()})
		wantKind(t, err, Invalid, ref, "invalid")
	}
}

func TestKindOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want Kind
	}{
		{&transport.Error{StatusCode: 401}, Unauthorized},
		{&transport.Error{StatusCode: 403}, Unauthorized},
		{&transport.Error{StatusCode: 400, Errors: []transport.Diagnostic{{Code: transport.DeniedErrorCode}}}, Unauthorized},
		{&transport.Error{StatusCode: 404}, NotFound},
		{&transport.Error{StatusCode: 400, Errors: []transport.Diagnostic{{Code: transport.ManifestUnknownErrorCode}}}, NotFound},
		{fmt.Errorf("get: %w", &transport.Error{StatusCode: 404, Errors: []transport.Diagnostic{{Code: transport.NameUnknownErrorCode}}}), NotFound},
		{&transport.Error{StatusCode: 502}, Unreachable},
		{&transport.Error{StatusCode: 400}, Invalid},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, Unreachable},
		{&net.DNSError{Err: "no such host", Name: "x"}, Unreachable},
		{context.DeadlineExceeded, Unreachable},
		{errors.New("something odd"), Invalid},
	} {
		if got := kindOf(tc.err); got != tc.want {
			t.Errorf("kindOf(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestErrorOneLine(t *testing.T) {
	e := &Error{Ref: "r/x:1", Kind: NotFound, Err: errors.New("line one\nline two\r\n" + strings.Repeat("é", 400))}
	msg := e.Error()
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("not one line: %q", msg)
	}
	if !strings.HasPrefix(msg, `base image "r/x:1": not found: line one line two`) || !strings.HasSuffix(msg, "; check the repository, tag or digest") {
		t.Errorf("message %q", msg)
	}
	if len(msg) > maxCause+200 {
		t.Errorf("message not shortened: %d bytes", len(msg))
	}
	if !strings.Contains(msg, "é…") {
		t.Errorf("truncation split a rune or lacks the ellipsis: %q", msg)
	}
	if !errors.Is(e, e.Err) {
		t.Error("Error does not unwrap")
	}
}

// ---- oci layout ----

// TestLayoutRefGrammar: oci:DIR[:NAME] follows internal/imageref, so a
// directory whose last element holds ':' and a name holding '/' both work
// (the old split at the last ':' after the last '/' got both wrong).
func TestLayoutRefGrammar(t *testing.T) {
	root := filepath.Join(t.TempDir(), "my:dir")
	lp, err := layout.Write(root, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	img := platformImage(t, "linux/amd64")
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{refNameAnnotation: "kiln.local/app:v1"})); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"oci:" + root, "oci:" + root + ":kiln.local/app:v1", "oci:" + root + ":v1"} {
		b, err := Resolve(context.Background(), ref, Options{})
		if err != nil {
			t.Errorf("%s: %v", ref, err)
			continue
		}
		if d, _ := b.Digest(); d != testutil.Digest(t, img) {
			t.Errorf("%s: digest %v", ref, d)
		}
	}
}

func writeLayout(t *testing.T) (dir string, amd, arm v1.Image, multi v1.ImageIndex) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "lay:out", "img")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	amd = platformImage(t, "linux/amd64")
	arm = platformImage(t, "linux/arm64")
	if err := lp.AppendImage(amd, layout.WithAnnotations(map[string]string{refNameAnnotation: "example.com/app:v1"})); err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(arm, layout.WithAnnotations(map[string]string{refNameAnnotation: "v2"})); err != nil {
		t.Fatal(err)
	}
	multi = mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	if err := lp.AppendIndex(multi, layout.WithAnnotations(map[string]string{refNameAnnotation: "multi"})); err != nil {
		t.Fatal(err)
	}
	return dir, amd, arm, multi
}

func TestLayoutTagged(t *testing.T) {
	dir, amd, arm, multi := writeLayout(t)
	ctx := context.Background()

	for _, tc := range []struct {
		tag  string
		img  v1.Image
		plat string
	}{{"v1", amd, "linux/amd64"}, {"v2", arm, "linux/arm64"}} {
		ref := "oci:" + dir + ":" + tc.tag
		b, err := Resolve(ctx, ref, Options{})
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if b.Name() != ref {
			t.Errorf("Name = %q", b.Name())
		}
		if d, ok := b.Digest(); !ok || d != testutil.Digest(t, tc.img) {
			t.Errorf("%s: Digest = %v, %v", ref, d, ok)
		}
		if _, ok := b.Index(); ok {
			t.Errorf("%s resolved as an index", ref)
		}
		img, err := b.Image(plat(tc.plat))
		if err != nil {
			t.Fatalf("%s: Image: %v", ref, err)
		}
		if err := validate.Image(img); err != nil {
			t.Errorf("%s: validate.Image: %v", ref, err)
		}
		if testutil.Digest(t, img) != testutil.Digest(t, tc.img) {
			t.Errorf("%s: wrong image", ref)
		}
	}

	ref := "oci:" + dir + ":multi"
	b, err := Resolve(ctx, ref, Options{})
	if err != nil {
		t.Fatal(err)
	}
	idx, ok := b.Index()
	if !ok {
		t.Fatalf("%s is not an index", ref)
	}
	if err := validate.Index(idx); err != nil {
		t.Errorf("validate.Index: %v", err)
	}
	if d, _ := b.Digest(); d != testutil.Digest(t, multi) {
		t.Errorf("index digest %v, want %v", d, testutil.Digest(t, multi))
	}
	img, err := b.Image(plat("linux/arm64"))
	if err != nil || testutil.Digest(t, img) != testutil.Digest(t, arm) {
		t.Errorf("Image(linux/arm64) = %v, %v", img, err)
	}

	ref = "oci:" + dir + ":v9"
	_, err = Resolve(ctx, ref, Options{})
	wantKind(t, err, NotFound, ref, `"v9"`, "example.com/app:v1, v2, multi")
}

func TestLayoutUntagged(t *testing.T) {
	dir, _, _, _ := writeLayout(t)
	ref := "oci:" + dir
	_, err := Resolve(context.Background(), ref, Options{})
	wantKind(t, err, Invalid, ref, "example.com/app:v1, v2, multi")

	// A layout holding one image needs no tag.
	one := t.TempDir()
	lp, err := layout.Write(one, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	img := platformImage(t, "linux/s390x")
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	b, err := Resolve(context.Background(), "oci:"+one, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.Image(plat("linux/s390x"))
	if err != nil || testutil.Digest(t, got) != testutil.Digest(t, img) {
		t.Errorf("Image = %v, %v", got, err)
	}
}

func TestLayoutBroken(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	for _, ref := range []string{"oci:" + missing, "oci:" + missing + ":v1", "oci:", "oci:" + missing + ":"} {
		_, err := Resolve(context.Background(), ref, Options{})
		wantKind(t, err, Invalid, ref, "oci:DIR")
	}

	// index.json naming a blob that is absent.
	dir, amd, _, _ := writeLayout(t)
	d := testutil.Digest(t, amd)
	if err := os.Remove(filepath.Join(dir, "blobs", d.Algorithm, d.Hex)); err != nil {
		t.Fatal(err)
	}
	ref := "oci:" + dir + ":v1"
	_, err := Resolve(context.Background(), ref, Options{})
	wantKind(t, err, Invalid, ref)

	// Unparsable index.json.
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "index.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Resolve(context.Background(), "oci:"+bad, Options{})
	wantKind(t, err, Invalid, "oci:"+bad)
}

// ---- benchmark ----

func BenchmarkStatic(b *testing.B) {
	ctx := context.Background()
	goroot := testGOROOT(b)
	dir := b.TempDir()
	b.ReportAllocs()
	for b.Loop() {
		idx, err := Static(ctx, Options{GOROOT: goroot, Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := idx.Digest(); err != nil {
			b.Fatal(err)
		}
	}
}
