package layer_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kilnbuild/kiln/internal/layer"
	"github.com/kilnbuild/kiln/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.json")

// epoch is a SOURCE_DATE_EPOCH-style build time.
var epoch = time.Unix(1700000000, 0).UTC()

// capXattr is security.capability granting CAP_NET_BIND_SERVICE: binary, with NULs.
var capXattr = string([]byte{1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})

// fixture is a layer's entries: every kind, a file from disk, special mode
// bits and an xattr.
func fixture(t testing.TB) []layer.Entry {
	t.Helper()
	src := filepath.Join(t.TempDir(), "server")
	if err := os.WriteFile(src, bytes.Repeat([]byte("\x7fELF binary "), 5000), 0o600); err != nil {
		t.Fatal(err)
	}
	return []layer.Entry{
		{Path: "/ko-app/server", Kind: layer.File, Mode: 0o555, Source: src,
			PAXRecords: map[string]string{"SCHILY.xattr.security.capability": capXattr}},
		{Path: "/ko-app", Kind: layer.Dir, Mode: 0o555},
		{Path: "/var/run/ko/static/index.html", Kind: layer.File, Mode: 0o644, Data: []byte("<h1>hi</h1>\n")},
		{Path: "/var/run/ko/latest", Kind: layer.Symlink, Mode: 0o777, Linkname: "static/index.html"},
		{Path: "/usr/bin/su", Kind: layer.File, Mode: 0o755 | fs.ModeSetuid, Data: []byte("#!")},
		{Path: "/tmp", Kind: layer.Dir, Mode: 0o777 | fs.ModeSticky},
		{Path: "/srv/shared", Kind: layer.Dir, Mode: 0o775 | fs.ModeSetgid, UID: 1000, GID: 1001},
		{Path: "/etc/app/config.json", Kind: layer.File, Mode: 0o640, UID: 65532, GID: 65532, Data: []byte(`{"a":1}`)},
	}
}

var compressions = []struct {
	name string
	c    layer.Compression
}{
	{"gzip-default", layer.Compression{Algorithm: layer.Gzip}},
	{"gzip-9", layer.Compression{Algorithm: layer.Gzip, Level: 9}},
	{"zstd-default", layer.Compression{Algorithm: layer.Zstd}},
	{"zstd-19", layer.Compression{Algorithm: layer.Zstd, Level: 19}},
	{"none", layer.Compression{Algorithm: layer.None}},
}

func build(t testing.TB, entries []layer.Entry, c layer.Compression) v1.Layer {
	t.Helper()
	l, err := layer.Build(context.Background(), entries, layer.Options{Compression: c, ModTime: epoch, Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return l
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

type tarEntry struct {
	hdr  *tar.Header
	data []byte
}

func readTar(t testing.TB, l v1.Layer) []tarEntry {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(testutil.ReadAll(t, l.Uncompressed)))
	var out []tarEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarEntry{h, b})
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	golden := map[string]map[string]string{}
	goldenFile := filepath.Join("testdata", "golden.json")
	if !*update {
		raw, err := os.ReadFile(goldenFile)
		if err != nil {
			t.Fatalf("%v (run go test -update to create it)", err)
		}
		if err := json.Unmarshal(raw, &golden); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range compressions {
		t.Run(tc.name, func(t *testing.T) {
			entries := fixture(t)
			reversed := slices.Clone(entries)
			slices.Reverse(reversed)
			a := build(t, entries, tc.c)
			b := build(t, entries, tc.c)
			r := build(t, reversed, tc.c)

			ab := testutil.ReadAll(t, a.Compressed)
			for name, other := range map[string]v1.Layer{"second run": b, "reversed input": r} {
				if got := testutil.ReadAll(t, other.Compressed); !bytes.Equal(got, ab) {
					t.Errorf("%s: compressed bytes differ (%d vs %d bytes)", name, len(got), len(ab))
				}
				for _, f := range []func(v1.Layer) (v1.Hash, error){v1.Layer.Digest, v1.Layer.DiffID} {
					want, _ := f(a)
					if got, _ := f(other); got != want {
						t.Errorf("%s: %s, want %s", name, got, want)
					}
				}
			}

			digest, _ := a.Digest()
			diffID, _ := a.DiffID()
			size, _ := a.Size()
			got := map[string]string{"digest": digest.String(), "diffID": diffID.String(), "size": fmt.Sprint(size)}
			if *update {
				golden[tc.name] = got
				return
			}
			// The fixture's source path differs per run but is not in the
			// tar, so these pin the tar writer and the compressor versions.
			if want := golden[tc.name]; !maps.Equal(got, want) {
				t.Errorf("golden values changed:\n got %v\nwant %v\n(run go test -update if intended)", got, want)
			}
		})
	}
	if *update {
		raw, _ := json.MarshalIndent(golden, "", "  ")
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenFile, append(raw, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLayerDescribesItsBytes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		c         layer.Compression
		mediaType types.MediaType
		magic     []byte
	}{
		{"empty algorithm is gzip", layer.Compression{}, types.OCILayer, []byte{0x1f, 0x8b}},
		{"gzip", layer.Compression{Algorithm: layer.Gzip, Level: 6}, types.OCILayer, []byte{0x1f, 0x8b}},
		{"zstd", layer.Compression{Algorithm: layer.Zstd}, types.OCILayerZStd, []byte{0x28, 0xb5, 0x2f, 0xfd}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.c.MediaType(); got != tc.mediaType {
				t.Errorf("Compression.MediaType() = %s, want %s", got, tc.mediaType)
			}
			l := build(t, fixture(t), tc.c)
			comp := testutil.ReadAll(t, l.Compressed)
			uncomp := testutil.ReadAll(t, l.Uncompressed)
			digest, _ := l.Digest()
			diffID, _ := l.DiffID()
			size, _ := l.Size()
			mt, _ := l.MediaType()
			if digest.String() != sha(comp) {
				t.Errorf("Digest() = %s, sha256(Compressed()) = %s", digest, sha(comp))
			}
			if diffID.String() != sha(uncomp) {
				t.Errorf("DiffID() = %s, sha256(Uncompressed()) = %s", diffID, sha(uncomp))
			}
			if size != int64(len(comp)) {
				t.Errorf("Size() = %d, len(Compressed()) = %d", size, len(comp))
			}
			if mt != tc.mediaType {
				t.Errorf("MediaType() = %s, want %s", mt, tc.mediaType)
			}
			if !bytes.HasPrefix(comp, tc.magic) {
				t.Errorf("compressed stream starts % x, want % x", comp[:4], tc.magic)
			}
			// A tar ends with two zero blocks and is a multiple of 512 bytes.
			if len(uncomp)%512 != 0 || !bytes.Equal(uncomp[len(uncomp)-1024:], make([]byte, 1024)) {
				t.Errorf("uncompressed stream (%d bytes) is not a finished tar", len(uncomp))
			}
			// validate.Layer gunzips, so it can only check gzip layers.
			if tc.c.Algorithm == layer.Zstd {
				return
			}
			if err := validate.Layer(l); err != nil {
				t.Errorf("validate.Layer: %v", err)
			}
		})
	}
}

func TestBuildEntries(t *testing.T) {
	for _, tc := range compressions {
		t.Run(tc.name, func(t *testing.T) {
			got := readTar(t, build(t, fixture(t), tc.c))
			type row struct {
				name     string
				typ      byte
				mode     int64
				uid, gid int
				link     string
				size     int64
			}
			want := []row{
				{"etc/", tar.TypeDir, 0o755, 0, 0, "", 0}, // added parent
				{"etc/app/", tar.TypeDir, 0o755, 0, 0, "", 0},
				{"etc/app/config.json", tar.TypeReg, 0o640, 65532, 65532, "", 7},
				{"ko-app/", tar.TypeDir, 0o555, 0, 0, "", 0},
				{"ko-app/server", tar.TypeReg, 0o555, 0, 0, "", 60000},
				{"srv/", tar.TypeDir, 0o755, 0, 0, "", 0},
				{"srv/shared/", tar.TypeDir, 0o2775, 1000, 1001, "", 0},
				{"tmp/", tar.TypeDir, 0o1777, 0, 0, "", 0},
				{"usr/", tar.TypeDir, 0o755, 0, 0, "", 0},
				{"usr/bin/", tar.TypeDir, 0o755, 0, 0, "", 0},
				{"usr/bin/su", tar.TypeReg, 0o4755, 0, 0, "", 2},
				{"var/", tar.TypeDir, 0o755, 0, 0, "", 0},
				{"var/run/", tar.TypeDir, 0o755, 0, 0, "", 0},
				{"var/run/ko/", tar.TypeDir, 0o755, 0, 0, "", 0},
				{"var/run/ko/latest", tar.TypeSymlink, 0o777, 0, 0, "static/index.html", 0},
				{"var/run/ko/static/", tar.TypeDir, 0o755, 0, 0, "", 0},
				{"var/run/ko/static/index.html", tar.TypeReg, 0o644, 0, 0, "", 12},
			}
			if len(got) != len(want) {
				var names []string
				for _, e := range got {
					names = append(names, e.hdr.Name)
				}
				t.Fatalf("got %d entries %q, want %d", len(got), names, len(want))
			}
			for i, w := range want {
				h := got[i].hdr
				g := row{h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.Linkname, h.Size}
				if g != w {
					t.Errorf("entry %d = %+v, want %+v", i, g, w)
				}
				if !h.ModTime.Equal(epoch) {
					t.Errorf("%s: mtime %s, want %s", h.Name, h.ModTime, epoch)
				}
				if h.Uname != "" || h.Gname != "" {
					t.Errorf("%s: owner names %q/%q leak the build machine", h.Name, h.Uname, h.Gname)
				}
				if _, ok := h.PAXRecords["mtime"]; ok {
					t.Errorf("%s: has a sub-second PAX mtime", h.Name)
				}
			}
			server := got[4]
			if v := server.hdr.PAXRecords["SCHILY.xattr.security.capability"]; v != capXattr {
				t.Errorf("capability xattr = % x, want % x", v, capXattr)
			}
			if want := bytes.Repeat([]byte("\x7fELF binary "), 5000); !bytes.Equal(server.data, want) {
				t.Errorf("binary content differs from its source")
			}
			if string(got[16].data) != "<h1>hi</h1>\n" {
				t.Errorf("Data entry content = %q", got[16].data)
			}
		})
	}
}

func TestBuildModTime(t *testing.T) {
	pax := map[string]string{"SCHILY.xattr.user.k": "v"}
	entries := []layer.Entry{
		{Path: "/a", Kind: layer.File, Mode: 0o644, Data: []byte("a")},
		{Path: "/b", Kind: layer.File, Mode: 0o644, Data: []byte("b"), PAXRecords: pax},
	}
	for _, tc := range []struct {
		name string
		in   time.Time
		want time.Time
	}{
		{"zero time is the epoch", time.Time{}, time.Unix(0, 0)},
		{"whole seconds kept", epoch, epoch},
		{"sub-second dropped in every header", epoch.Add(987654321 * time.Nanosecond), epoch},
		{"time zone ignored", epoch.In(time.FixedZone("X", 3600)), epoch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := layer.Build(context.Background(), entries, layer.Options{ModTime: tc.in, Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range readTar(t, l) {
				if !e.hdr.ModTime.Equal(tc.want) {
					t.Errorf("%s: mtime %s, want %s", e.hdr.Name, e.hdr.ModTime.UTC(), tc.want.UTC())
				}
				if v, ok := e.hdr.PAXRecords["mtime"]; ok {
					t.Errorf("%s: PAX mtime record %q", e.hdr.Name, v)
				}
			}
		})
	}
}

func TestBuildNormalizesPaths(t *testing.T) {
	l := build(t, []layer.Entry{
		{Path: "/a/./b/../c", Kind: layer.File, Mode: 0o600, Data: []byte("x")},
		{Path: "/", Kind: layer.Dir, Mode: 0o700}, // the root is never an entry
		{Path: "/d/", Kind: layer.Dir, Mode: 0o750},
		{Path: "/d", Kind: layer.Dir, Mode: 0o750}, // the same directory twice is fine
	}, layer.Compression{})
	var got []string
	for _, e := range readTar(t, l) {
		got = append(got, fmt.Sprintf("%s %o", e.hdr.Name, e.hdr.Mode))
	}
	want := []string{"a/ 755", "a/c 600", "d/ 750"}
	if !slices.Equal(got, want) {
		t.Errorf("entries = %q, want %q", got, want)
	}
}

func TestBuildErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		entries []layer.Entry
		c       layer.Compression
		want    string
	}{
		{"relative path", []layer.Entry{{Path: "ko-app/x", Kind: layer.File}}, layer.Compression{}, `"ko-app/x": path must be absolute`},
		{"empty path", []layer.Entry{{Path: "", Kind: layer.File}}, layer.Compression{}, `"": path must be absolute`},
		{"file twice", []layer.Entry{
			{Path: "/x", Kind: layer.File, Data: []byte("1")},
			{Path: "/x", Kind: layer.File, Data: []byte("1")},
		}, layer.Compression{}, `"/x": given twice`},
		{"file and dir at one path", []layer.Entry{
			{Path: "/x", Kind: layer.Dir, Mode: 0o755},
			{Path: "/x/", Kind: layer.File},
		}, layer.Compression{}, `"/x": given twice`},
		{"dir twice with different modes", []layer.Entry{
			{Path: "/x", Kind: layer.Dir, Mode: 0o755},
			{Path: "/x", Kind: layer.Dir, Mode: 0o700},
		}, layer.Compression{}, `"/x": given twice`},
		{"dir twice with different owners", []layer.Entry{
			{Path: "/x", Kind: layer.Dir, Mode: 0o755},
			{Path: "/x", Kind: layer.Dir, Mode: 0o755, UID: 1},
		}, layer.Compression{}, `"/x": given twice`},
		{"file under a file", []layer.Entry{
			{Path: "/bin", Kind: layer.File, Data: []byte("x")},
			{Path: "/bin/sh", Kind: layer.File, Data: []byte("y")},
		}, layer.Compression{}, `"/bin/sh": parent "/bin" is not a directory`},
		{"file under a symlink", []layer.Entry{
			{Path: "/lib", Kind: layer.Symlink, Linkname: "usr/lib"},
			{Path: "/lib/x/y", Kind: layer.File},
		}, layer.Compression{}, `parent "/lib" is not a directory`},
		{"missing source", []layer.Entry{{Path: "/x", Kind: layer.File, Source: filepath.Join(dir, "missing")}}, layer.Compression{}, "no such file or directory"},
		{"source is a directory", []layer.Entry{{Path: "/x", Kind: layer.File, Source: dir}}, layer.Compression{}, "is not a regular file"},
		{"unknown kind", []layer.Entry{{Path: "/x", Kind: layer.Kind(7)}}, layer.Compression{}, "unknown kind 7"},
		{"gzip level out of range", []layer.Entry{{Path: "/x", Kind: layer.File, Source: file}}, layer.Compression{Algorithm: layer.Gzip, Level: 12}, "gzip level 12"},
		{"unknown algorithm", []layer.Entry{{Path: "/x", Kind: layer.File, Source: file}}, layer.Compression{Algorithm: "lz4"}, `unknown compression "lz4"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			l, err := layer.Build(context.Background(), tc.entries, layer.Options{Compression: tc.c, ModTime: epoch, Dir: out})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Build = %v, %v; want an error containing %q", l, err, tc.want)
			}
			assertEmpty(t, out)
		})
	}
}

func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("left behind: %s", e.Name())
	}
}

func TestBuildSourceChangesSize(t *testing.T) {
	for _, tc := range []struct {
		name, source string
	}{
		// procfs reports size 0 and then yields bytes: the file "grew".
		{"grew", "/proc/self/status"},
		// sysfs reports 4096 bytes and yields a few: the file "shrank".
		{"shrank", "/sys/kernel/mm/transparent_hugepage/enabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := os.ReadFile(tc.source); err != nil {
				if os.Getenv("CI") == "true" {
					t.Fatalf("needs %s under CI=true: %v", tc.source, err)
				}
				t.Skipf("needs %s: %v (this fails under CI=true)", tc.source, err)
			}
			out := t.TempDir()
			_, err := layer.Build(context.Background(), []layer.Entry{{Path: "/f", Kind: layer.File, Source: tc.source}}, layer.Options{ModTime: epoch, Dir: out})
			if err == nil || !strings.Contains(err.Error(), "changed size while being read") {
				t.Fatalf("Build = %v, want a changed-size error", err)
			}
			assertEmpty(t, out)
		})
	}
}

// countdownCtx reports cancellation from its n-th Err call on, so a test can
// cancel at an exact point of a build.
type countdownCtx struct {
	context.Context
	n atomic.Int64
}

func (c *countdownCtx) Err() error {
	if c.n.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

func TestBuildCanceled(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(big, make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	entries := []layer.Entry{{Path: "/big", Kind: layer.File, Mode: 0o644, Source: big}}

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	mid := &countdownCtx{Context: context.Background()}
	mid.n.Store(5) // a few reads into the 8 MiB file
	for _, tc := range []struct {
		name string
		ctx  context.Context
	}{
		{"before the first entry", canceled},
		{"while a file is copied", mid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			_, err := layer.Build(tc.ctx, entries, layer.Options{ModTime: epoch, Dir: out})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Build = %v, want context.Canceled", err)
			}
			assertEmpty(t, out)
		})
	}
}

// TestBuildFailureStopsCompressor: a failed build must not leave the
// parallel gzip writer's goroutines behind.
func TestBuildFailureStopsCompressor(t *testing.T) {
	entries := []layer.Entry{
		{Path: "/a", Kind: layer.File, Mode: 0o644, Data: bytes.Repeat([]byte("a"), 3<<20)},
		{Path: "/b", Kind: layer.File, Mode: 0o644, Source: filepath.Join(t.TempDir(), "missing")},
	}
	before := runtime.NumGoroutine()
	for range 10 {
		if _, err := layer.Build(context.Background(), entries, layer.Options{ModTime: epoch, Dir: t.TempDir()}); err == nil {
			t.Fatal("Build succeeded with a missing source")
		}
	}
	var after int
	for range 100 {
		if after = runtime.NumGoroutine(); after <= before+2 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("goroutines: %d before 10 failed builds, %d after", before, after)
}

// TestBuildStreams: the source is streamed, not held in memory: layering
// four times the bytes costs (almost) no more allocation.
func TestBuildStreams(t *testing.T) {
	if raceEnabled {
		// make test runs this test again without -race (CI included).
		t.Skip("the race detector's sync.Pool drops items; allocation counts mean nothing (CI runs it without -race)")
	}
	dir := t.TempDir()
	small := sparseRandomFile(t, filepath.Join(dir, "small"), 16<<20)
	large := sparseRandomFile(t, filepath.Join(dir, "large"), 64<<20)
	alloc := func(c layer.Compression, src string) uint64 {
		entries := []layer.Entry{{Path: "/big", Kind: layer.File, Mode: 0o644, Source: src}}
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		_, err := layer.Build(context.Background(), entries, layer.Options{Compression: c, ModTime: epoch, Dir: t.TempDir()})
		runtime.ReadMemStats(&m1)
		if err != nil {
			t.Fatal(err)
		}
		return m1.TotalAlloc - m0.TotalAlloc
	}
	for _, c := range []layer.Compression{{Algorithm: layer.Gzip}, {Algorithm: layer.Zstd}} {
		t.Run(string(c.Algorithm), func(t *testing.T) {
			s, l := alloc(c, small), alloc(c, large)
			t.Logf("allocated %d KiB for 16 MiB, %d KiB for 64 MiB", s>>10, l>>10)
			if l > 32<<20 {
				t.Errorf("layering 64 MiB allocated %d MiB", l>>20)
			}
			if l > s+8<<20 {
				t.Errorf("allocation grows with the file: %d KiB for 16 MiB, %d KiB for 64 MiB", s>>10, l>>10)
			}
		})
	}
}

// sparseRandomFile writes size bytes: one MiB of seeded random bytes, then
// a hole of zeros, in turn, like a binary's code and its padding.
func sparseRandomFile(t testing.TB, p string, size int64) string {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	chunk := make([]byte, 1<<20)
	for off := int64(0); off < size; off += 2 << 20 {
		for i := range chunk {
			chunk[i] = byte(rng.Uint32())
		}
		if _, err := f.WriteAt(chunk, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseAlgorithm(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    layer.Algorithm
		wantErr bool
	}{
		{"", layer.Gzip, false},
		{"gzip", layer.Gzip, false},
		{"zstd", layer.Zstd, false},
		{"GZIP", "", true},
		{"zst", "", true},
		{"lz4", "", true},
		{" gzip", "", true},
	} {
		got, err := layer.ParseAlgorithm(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("ParseAlgorithm(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "use gzip, zstd, none or auto") {
			t.Errorf("ParseAlgorithm(%q) error %q does not say what to use", tc.in, err)
		}
	}
}

func TestCompressionValidate(t *testing.T) {
	for _, tc := range []struct {
		c    layer.Compression
		want string // "" means valid
	}{
		{layer.Compression{}, ""},
		{layer.Compression{Algorithm: layer.Gzip}, ""},
		{layer.Compression{Algorithm: layer.Gzip, Level: 1}, ""},
		{layer.Compression{Algorithm: layer.Gzip, Level: 9}, ""},
		{layer.Compression{Algorithm: layer.Gzip, Level: 10}, "gzip compression level 10 is out of range: use 1 to 9"},
		{layer.Compression{Algorithm: layer.Gzip, Level: -1}, "gzip compression level -1 is out of range"},
		{layer.Compression{Algorithm: layer.Zstd}, ""},
		{layer.Compression{Algorithm: layer.Zstd, Level: 1}, ""},
		{layer.Compression{Algorithm: layer.Zstd, Level: 22}, ""},
		{layer.Compression{Algorithm: layer.Zstd, Level: 23}, "zstd compression level 23 is out of range: use 1 to 22"},
		{layer.Compression{Algorithm: layer.Zstd, Level: -3}, "zstd compression level -3 is out of range"},
		{layer.Compression{Algorithm: "brotli"}, `unknown compression "brotli"`},
	} {
		err := tc.c.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v.Validate() = %v, want %q", tc.c, err, tc.want)
		}
	}
}

// Valid levels build layers that read back: every gzip level, and zstd at
// the edges of each of its four encoder speeds.
func TestBuildLevels(t *testing.T) {
	entries := []layer.Entry{{Path: "/x", Kind: layer.File, Mode: 0o644, Data: bytes.Repeat([]byte("kiln "), 1000)}}
	levels := map[layer.Algorithm][]int{
		layer.Gzip: {0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
		layer.Zstd: {0, 1, 2, 3, 5, 6, 9, 10, 22},
	}
	for alg, ls := range levels {
		for _, level := range ls {
			c := layer.Compression{Algorithm: alg, Level: level}
			if err := c.Validate(); err != nil {
				t.Errorf("%+v.Validate() = %v", c, err)
			}
			l := build(t, entries, c)
			if got := readTar(t, l); len(got) != 1 || len(got[0].data) != 5000 {
				t.Errorf("%+v: read back %d entries", c, len(got))
			}
		}
	}
}

func BenchmarkBuild100MB(b *testing.B) {
	const size = 100 << 20
	src := sparseRandomFile(b, filepath.Join(b.TempDir(), "big"), size)
	entries := []layer.Entry{{Path: "/ko-app/big", Kind: layer.File, Mode: 0o555, Source: src}}
	for _, c := range []layer.Compression{{Algorithm: layer.Gzip}, {Algorithm: layer.Zstd}} {
		b.Run(string(c.Algorithm), func(b *testing.B) {
			out := b.TempDir()
			b.ReportAllocs()
			b.SetBytes(size)
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			for b.Loop() {
				l, err := layer.Build(context.Background(), entries, layer.Options{Compression: c, ModTime: epoch, Dir: out})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				removeLayer(b, out)
				b.StartTimer()
				_ = l
			}
			runtime.ReadMemStats(&m1)
			if perOp := (m1.TotalAlloc - m0.TotalAlloc) / uint64(b.N); perOp > size/4 {
				b.Errorf("allocated %d MiB per 100 MiB layer: the source is not streamed", perOp>>20)
			}
		})
	}
}

func removeLayer(b *testing.B, dir string) {
	es, _ := os.ReadDir(dir)
	for _, e := range es {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			b.Fatal(err)
		}
	}
}

var benchBinary = flag.String("binary", "", "the Go binary BenchmarkCompression and BenchmarkUncompressedEditLoop layer (default: this test binary)")

// benchEntries is a layer of the -binary file (or this test binary) and its stat.
func benchEntries(b *testing.B) ([]layer.Entry, os.FileInfo) {
	exe, err := os.Executable()
	if *benchBinary != "" {
		exe, err = *benchBinary, nil
	}
	if err != nil {
		b.Fatal(err)
	}
	st, err := os.Stat(exe)
	if err != nil {
		b.Fatal(err)
	}
	return []layer.Entry{{Path: "/ko-app/app", Kind: layer.File, Mode: 0o555, Source: exe}}, st
}

// BenchmarkCompression compares the algorithms on a real Go binary (this
// test binary, or -binary FILE), reporting throughput and
// compressed/uncompressed ratio.
func BenchmarkCompression(b *testing.B) {
	entries, st := benchEntries(b)
	for _, tc := range []struct {
		name string
		c    layer.Compression
	}{
		{"gzip-1", layer.Compression{Algorithm: layer.Gzip, Level: 1}},
		{"gzip-6", layer.Compression{Algorithm: layer.Gzip, Level: 6}},
		{"zstd-default", layer.Compression{Algorithm: layer.Zstd}},
		{"none", layer.Compression{Algorithm: layer.None}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			out := b.TempDir()
			b.SetBytes(st.Size())
			b.ReportAllocs()
			var size int64
			for b.Loop() {
				l, err := layer.Build(context.Background(), entries, layer.Options{Compression: tc.c, ModTime: epoch, Dir: out})
				if err != nil {
					b.Fatal(err)
				}
				size, _ = l.Size()
				b.StopTimer()
				removeLayer(b, out)
				b.StartTimer()
			}
			b.ReportMetric(float64(size)/float64(st.Size()), "ratio")
			b.ReportMetric(float64(size)/(1<<20), "MB-out")
		})
	}
}
