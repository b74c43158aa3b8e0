package layer_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/layer"
	"github.com/kilnbuild/kiln/internal/testutil"
)

var none = layer.Compression{Algorithm: layer.None}

// writeSource writes a source file of b in its own directory.
func writeSource(t testing.TB, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// rawCases are entry sets whose uncompressed layer (made again at each
// read) must be byte for byte the tar that tar.Writer writes for them (the
// diffID stream of a compressed layer, the way every layer was written
// before).
func rawCases(t *testing.T) []struct {
	name    string
	entries []layer.Entry
} {
	bin := writeSource(t, bytes.Repeat([]byte("\x7fELF binary "), 5000))
	return []struct {
		name    string
		entries []layer.Entry
	}{
		{"one file", []layer.Entry{{Path: "/ko-app/server", Kind: layer.File, Mode: 0o555, Source: bin}}},
		{"dirs and a symlink", []layer.Entry{
			{Path: "/a/b/c", Kind: layer.Dir, Mode: 0o700, UID: 7},
			{Path: "/a/link", Kind: layer.Symlink, Mode: 0o777, Linkname: "b/c"},
			{Path: "/d", Kind: layer.Dir, Mode: 0o755},
		}},
		{"PAX records and xattrs", []layer.Entry{
			{Path: "/ko-app/server", Kind: layer.File, Mode: 0o555, Source: bin,
				PAXRecords: map[string]string{"SCHILY.xattr.security.capability": capXattr, "SCHILY.xattr.user.k": "v"}},
			{Path: "/etc", Kind: layer.Dir, Mode: 0o755, PAXRecords: map[string]string{"SCHILY.xattr.user.dir": "1"}},
		}},
		{"an empty source file", []layer.Entry{{Path: "/empty", Kind: layer.File, Mode: 0o644, Source: writeSource(t, nil)}}},
		{"an empty Data file", []layer.Entry{{Path: "/empty", Kind: layer.File, Mode: 0o644}}},
		{"a source of exactly 512 bytes", []layer.Entry{{Path: "/f", Kind: layer.File, Mode: 0o644, Source: writeSource(t, bytes.Repeat([]byte{'x'}, 512))}}},
		{"sources of 511 and 513 bytes", []layer.Entry{
			{Path: "/f511", Kind: layer.File, Mode: 0o644, Source: writeSource(t, bytes.Repeat([]byte{'y'}, 511))},
			{Path: "/f513", Kind: layer.File, Mode: 0o644, Source: writeSource(t, bytes.Repeat([]byte{'z'}, 513))},
		}},
		{"Data entries", []layer.Entry{
			{Path: "/etc/passwd", Kind: layer.File, Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/sbin/nologin\n")},
			{Path: "/etc/block", Kind: layer.File, Mode: 0o600, UID: 65532, GID: 65532, Data: make([]byte, 1024)},
		}},
		{"a name longer than 100 bytes", []layer.Entry{{Path: "/" + strings.Repeat("long/", 30) + "f", Kind: layer.File, Mode: 0o644, Data: []byte("deep")}}},
		{"every kind (the golden fixture)", fixture(t)},
	}
}

func TestRawLayerIsTheTarWriterTar(t *testing.T) {
	for _, tc := range rawCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			raw, err := layer.Build(context.Background(), tc.entries, layer.Options{Compression: none, ModTime: epoch, Dir: out})
			if err != nil {
				t.Fatal(err)
			}
			assertEmpty(t, out) // no copy is written
			cache := &layer.Cache{Dir: t.TempDir()}
			fromCache := func() v1.Layer {
				l, err := cache.Build(context.Background(), "key", tc.entries, layer.Options{Compression: none, ModTime: epoch})
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			missed, hit := fromCache(), fromCache()
			want := testutil.ReadAll(t, build(t, tc.entries, layer.Compression{Algorithm: layer.Gzip}).Uncompressed)
			for name, l := range map[string]v1.Layer{"Build": raw, "the cache's miss": missed, "the cache's hit": hit} {
				digest, _ := l.Digest()
				diffID, _ := l.DiffID()
				size, _ := l.Size()
				if digest.String() != sha(want) || diffID != digest || size != int64(len(want)) {
					t.Errorf("%s: digest %s, diffID %s, size %d; the tar.Writer tar: %s, %d bytes", name, digest, diffID, size, sha(want), len(want))
				}
				for _, open := range []func() (io.ReadCloser, error){l.Compressed, l.Uncompressed} {
					if got := testutil.ReadAll(t, open); !bytes.Equal(got, want) {
						t.Errorf("%s: read %d bytes that differ from the tar.Writer tar's %d", name, len(got), len(want))
					}
				}
			}
			files, _ := os.ReadDir(cache.Dir)
			for _, f := range files {
				if !strings.HasSuffix(f.Name(), ".json") {
					t.Errorf("the cache holds %s: an uncompressed layer keeps only its metadata", f.Name())
				}
			}
		})
	}
}

// A source that changes after its layer is built makes every read end in
// an error naming it, never in other bytes served as the layer's; through
// the cache too, whose hit checks the current file against the stored
// digest.
func TestRawLayerReadChecksItsSource(t *testing.T) {
	orig := bytes.Repeat([]byte("\x7fELF binary "), 5000)
	flipped := bytes.Clone(orig)
	flipped[3000] ^= 1
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, src string)
		want   string
	}{
		{"same size, one bit flipped", func(t *testing.T, src string) { rewrite(t, src, flipped) }, "changed after the layer was built"},
		{"shorter", func(t *testing.T, src string) { rewrite(t, src, orig[:len(orig)-1]) }, "changed size while being read"},
		{"longer", func(t *testing.T, src string) { rewrite(t, src, append(bytes.Clone(orig), 'x')) }, "changed size while being read"},
		{"removed", func(t *testing.T, src string) { os.Remove(src) }, "no such file or directory"},
		{"replaced by a directory", func(t *testing.T, src string) {
			os.Remove(src)
			os.Mkdir(src, 0o755)
		}, "is not a regular file"},
	} {
		for _, via := range []string{"Build", "a cache hit"} {
			t.Run(tc.name+" via "+via, func(t *testing.T) {
				src := writeSource(t, orig)
				entries := []layer.Entry{{Path: "/ko-app/server", Kind: layer.File, Mode: 0o555, Source: src}}
				opts := layer.Options{Compression: none, ModTime: epoch}
				var l v1.Layer
				var err error
				if via == "Build" {
					l, err = layer.Build(context.Background(), entries, opts)
				} else {
					c := &layer.Cache{Dir: t.TempDir()}
					if _, err = c.Build(context.Background(), "go-buildid:x", entries, opts); err != nil {
						t.Fatal(err)
					}
					if tc.name == "same size, one bit flipped" {
						tc.change(t, src) // before the hit: its size still matches the cached one
					}
					l, err = c.Build(context.Background(), "go-buildid:x", entries, opts)
				}
				if err != nil {
					t.Fatal(err)
				}
				tc.change(t, src)
				for _, open := range []func() (io.ReadCloser, error){l.Compressed, l.Uncompressed} {
					rc, err := open()
					if err != nil {
						t.Fatal(err)
					}
					_, err = io.ReadAll(rc)
					rc.Close()
					if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), src) {
						t.Fatalf("reading the layer: %v; want an error naming %s and containing %q", err, src, tc.want)
					}
					if tc.name != "removed" && tc.name != "replaced by a directory" && !errors.Is(err, layer.ErrSourceChanged) {
						t.Errorf("%v: not ErrSourceChanged", err)
					}
				}
				// Put back, it reads as built again.
				os.Remove(src)
				rewrite(t, src, orig)
				d, _ := l.Digest()
				if got := sha(testutil.ReadAll(t, l.Compressed)); got != d.String() {
					t.Errorf("restored: read %s, want %s", got, d)
				}
			})
		}
	}
}

func rewrite(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A cached digest whose size the current entries do not have is not used:
// the layer is hashed again and described by its own bytes.
func TestRawCacheHitNeedsTheSameSize(t *testing.T) {
	c := &layer.Cache{Dir: t.TempDir()}
	opts := layer.Options{Compression: none, ModTime: epoch}
	src := writeSource(t, []byte("first"))
	entries := []layer.Entry{{Path: "/f", Kind: layer.File, Mode: 0o644, Source: src}}
	first, err := c.Build(context.Background(), "k", entries, opts)
	if err != nil {
		t.Fatal(err)
	}
	rewrite(t, src, bytes.Repeat([]byte("second"), 200)) // the same key: a stale entry
	l, err := c.Build(context.Background(), "k", entries, opts)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := first.Digest()
	d2, _ := l.Digest()
	if got := sha(testutil.ReadAll(t, l.Compressed)); d1 == d2 || got != d2.String() {
		t.Errorf("after a size change: digest %s (first %s), bytes hash to %s", d2, d1, got)
	}
}

func TestRawBuildErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		entries []layer.Entry
		want    string
	}{
		{"missing source", []layer.Entry{{Path: "/x", Kind: layer.File, Source: filepath.Join(dir, "missing")}}, "layer entry /x: stat " + filepath.Join(dir, "missing") + ": no such file or directory"},
		{"source is a directory", []layer.Entry{{Path: "/x", Kind: layer.File, Source: dir}}, "layer entry /x: source " + dir + " is not a regular file"},
		{"unknown kind", []layer.Entry{{Path: "/x", Kind: layer.Kind(7)}}, "layer entry /x: unknown kind 7"},
		{"relative path", []layer.Entry{{Path: "x", Kind: layer.File}}, `"x": path must be absolute`},
		// procfs reports size 0 and then yields bytes.
		{"source grew", []layer.Entry{{Path: "/f", Kind: layer.File, Source: "/proc/self/status"}}, "changed size while being read (more than 0 bytes)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			for _, build := range []func() (v1.Layer, error){
				func() (v1.Layer, error) {
					return layer.Build(context.Background(), tc.entries, layer.Options{Compression: none, ModTime: epoch, Dir: out})
				},
				func() (v1.Layer, error) {
					return (&layer.Cache{Dir: out}).Build(context.Background(), "k", tc.entries, layer.Options{Compression: none, ModTime: epoch})
				},
			} {
				if l, err := build(); err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Build = %v, %v; want an error containing %q", l, err, tc.want)
				}
			}
			assertEmpty(t, out)
		})
	}
}

func TestRawBuildCanceled(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	entries := []layer.Entry{{Path: "/big", Kind: layer.File, Mode: 0o644, Source: writeSource(t, make([]byte, 1<<20))}}
	if _, err := layer.Build(canceled, entries, layer.Options{Compression: none}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Build = %v, want context.Canceled", err)
	}
}

// Readers of one layer are independent: each opens its own sources, and
// one closed early leaves the others whole.
func TestRawLayerConcurrentReads(t *testing.T) {
	l := build(t, fixture(t), none)
	want := testutil.ReadAll(t, l.Compressed)
	early, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(early, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	early.Close()
	if _, err := early.Read(make([]byte, 10)); err == nil {
		t.Error("a read after Close succeeded")
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			rc, err := l.Uncompressed()
			if err != nil {
				t.Error(err)
				return
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("a concurrent read: %d bytes, %v", len(got), err)
			}
		})
	}
	wg.Wait()
}
