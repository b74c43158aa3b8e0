package base

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"

	"github.com/kilnbuild/kiln/internal/layer"
	"github.com/kilnbuild/kiln/internal/platform"
)

// Identity of the users and groups in the static base.
const (
	nonrootID = 65532
	nobodyID  = 65534

	staticUser    = "65532"
	staticWorkDir = "/home/nonroot"
	caBundlePath  = "/etc/ssl/certs/ca-certificates.crt"
	zoneinfoDir   = "/usr/share/zoneinfo"

	fallbackModule = "golang.org/x/crypto/x509roots/fallback"
)

var (
	epoch = time.Unix(0, 0).UTC()

	staticEnv = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"SSL_CERT_FILE=" + caBundlePath,
	}

	// staticPlatforms are the platforms of the static index, in index
	// order: every platform kiln compiles for, in platform.Supported's
	// order (the index's digest depends on it).
	staticPlatforms = platform.Supported
)

const passwd = `root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
`

const group = `root:x:0:
nobody:x:65534:
nonroot:x:65532:
`

const nsswitch = "hosts: files dns\n"

// Static builds the built-in static base index: one shared layer holding
// passwd/group, the Mozilla CA bundle and the Go toolchain's zoneinfo, and one
// image per platform in staticPlatforms. The result depends only on the Go
// toolchain at opts.GOROOT and kiln's own dependencies, so it is byte-for-byte
// identical on every run. The layer is written under opts.Dir, which must
// outlive the returned index.
func Static(ctx context.Context, opts Options) (v1.ImageIndex, error) {
	if opts.GOROOT == "" {
		return nil, errors.New("static base: no GOROOT given (needed for lib/time/zoneinfo.zip)")
	}
	if opts.Dir == "" {
		return nil, errors.New("static base: no scratch directory given for its layer")
	}
	entries, err := staticEntries(opts.GOROOT)
	if err != nil {
		return nil, fmt.Errorf("static base: %w", err)
	}
	// Every entry is in memory, so the cache key covers their bytes.
	l, err := opts.LayerCache.Build(ctx, "kiln-static-base-v1", entries, layer.Options{
		Compression: layer.Compression{Algorithm: layer.Gzip},
		ModTime:     epoch,
		Dir:         opts.Dir,
	})
	if err != nil {
		return nil, fmt.Errorf("static base: building layer: %w", err)
	}

	adds := make([]mutate.IndexAddendum, 0, len(staticPlatforms))
	for _, p := range staticPlatforms {
		img, err := staticImage(l, p)
		if err != nil {
			return nil, fmt.Errorf("static base: %s image: %w", platformString(p), err)
		}
		adds = append(adds, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &p},
		})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	return idx, nil
}

// staticImage puts the shared layer l into an image configured for p.
func staticImage(l v1.Layer, p v1.Platform) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: p.Architecture,
		OS:           p.OS,
		Variant:      p.Variant,
		Created:      v1.Time{Time: epoch},
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			User:       staticUser,
			WorkingDir: staticWorkDir,
			Env:        append([]string(nil), staticEnv...),
		},
	})
	if err != nil {
		return nil, err
	}
	return mutate.Append(img, mutate.Addendum{
		Layer: l,
		History: v1.History{
			Created:   v1.Time{Time: epoch},
			CreatedBy: "kiln static base",
			Comment:   "users root, nobody and nonroot; CA certificates; Go zoneinfo",
		},
	})
}

// staticEntries lists the files of the static layer. Zoneinfo data stored
// uncompressed in zoneinfo.zip (as Go ships it) is referenced in place, not
// copied.
func staticEntries(goroot string) ([]layer.Entry, error) {
	entries := []layer.Entry{
		{Path: "/etc/passwd", Kind: layer.File, Mode: 0o644, Data: []byte(passwd)},
		{Path: "/etc/group", Kind: layer.File, Mode: 0o644, Data: []byte(group)},
		{Path: "/etc/nsswitch.conf", Kind: layer.File, Mode: 0o644, Data: []byte(nsswitch)},
		{Path: "/etc/os-release", Kind: layer.File, Mode: 0o644, Data: osRelease()},
		{Path: caBundlePath, Kind: layer.File, Mode: 0o644, Data: caBundle()},
		{Path: "/home/nonroot", Kind: layer.Dir, Mode: 0o700, UID: nonrootID, GID: nonrootID},
		{Path: "/root", Kind: layer.Dir, Mode: 0o700},
		{Path: "/tmp", Kind: layer.Dir, Mode: fs.ModeSticky | 0o777},
		{Path: zoneinfoDir, Kind: layer.Dir, Mode: 0o755},
	}
	zones, err := zoneinfoEntries(filepath.Join(goroot, "lib", "time", "zoneinfo.zip"))
	if err != nil {
		return nil, err
	}
	return append(entries, zones...), nil
}

// zoneinfoEntries expands the toolchain's zoneinfo.zip under zoneinfoDir.
// The zip is read once; stored entries are sliced out of it without copying.
func zoneinfoEntries(zipPath string) ([]layer.Entry, error) {
	data, err := os.ReadFile(zipPath)
	if err != nil {
		return nil, fmt.Errorf("reading zoneinfo: %w", err)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", zipPath, err)
	}
	entries := make([]layer.Entry, 0, len(zr.File))
	for _, f := range zr.File {
		name := f.Name
		isDir := strings.HasSuffix(name, "/")
		name = strings.TrimSuffix(name, "/")
		if name == "" || !fs.ValidPath(name) {
			return nil, fmt.Errorf("%s: unsafe entry name %q", zipPath, f.Name)
		}
		p := path.Join(zoneinfoDir, name)
		if isDir {
			entries = append(entries, layer.Entry{Path: p, Kind: layer.Dir, Mode: 0o755})
			continue
		}
		content, err := zipContent(data, f)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", zipPath, f.Name, err)
		}
		entries = append(entries, layer.Entry{Path: p, Kind: layer.File, Mode: 0o644, Data: content})
	}
	return entries, nil
}

// zipContent returns f's bytes: a subslice of data when f is stored, else
// the decompressed bytes.
func zipContent(data []byte, f *zip.File) ([]byte, error) {
	if f.Method == zip.Store && f.CompressedSize64 == f.UncompressedSize64 {
		off, err := f.DataOffset()
		if err != nil {
			return nil, err
		}
		end := off + int64(f.UncompressedSize64)
		if off < 0 || end > int64(len(data)) || end < off {
			return nil, errors.New("entry runs past the end of the archive")
		}
		b := data[off:end:end]
		if crc32.ChecksumIEEE(b) != f.CRC32 {
			return nil, zip.ErrChecksum
		}
		return b, nil
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b := make([]byte, 0, f.UncompressedSize64)
	buf := bytes.NewBuffer(b)
	if _, err := io.Copy(buf, rc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// caBundle is every root of the fallback bundle as PEM, in bundle order.
// It is computed once per process; callers must not modify it.
var caBundle = sync.OnceValue(func() []byte {
	var buf bytes.Buffer
	buf.Grow(256 << 10)
	for r := range bundle.Roots() {
		// Writing to a bytes.Buffer cannot fail.
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate})
	}
	return buf.Bytes()
})

func osRelease() []byte {
	v := fallbackVersion()
	return []byte("ID=kiln-static\n" +
		"NAME=\"kiln static\"\n" +
		"PRETTY_NAME=\"kiln static (CA roots " + v + ")\"\n" +
		"VERSION_ID=" + v + "\n")
}

// fallbackVersion names the version of the CA bundle module built into this
// binary, or "1" when the build carries no module information.
func fallbackVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "1"
	}
	for _, d := range bi.Deps {
		if d.Path != fallbackModule {
			continue
		}
		v := d.Version
		if d.Replace != nil && d.Replace.Version != "" {
			v = d.Replace.Version
		}
		if v == "" || v == "(devel)" {
			return "1"
		}
		return v
	}
	return "1"
}
