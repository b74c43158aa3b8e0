package publish_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/testutil"
)

type item struct {
	a    publish.Artifact
	repo string
	tags []string
}

// untar extracts an archive and returns its headers in order.
func untar(t testing.TB, file, dir string) []*tar.Header {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var hdrs []*tar.Header
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return hdrs
		}
		if err != nil {
			t.Fatal(err)
		}
		hdrs = append(hdrs, h)
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOCIArchive(t *testing.T) {
	ctx := context.Background()
	img, idx := randomImage(t), randomIndex(t)
	items := []item{
		{img, "kiln.local/app", []string{"v1", "latest"}},
		{idx, "kiln.local/multi", nil},
	}
	write := func(t *testing.T, file string) {
		t.Helper()
		p := &publish.OCIArchive{File: file}
		if err := p.Check(ctx); err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			d, err := p.Publish(ctx, it.a, it.repo, it.tags)
			if err != nil {
				t.Fatal(err)
			}
			if want := it.repo + "@" + testutil.Digest(t, it.a).String(); d.String() != want {
				t.Errorf("Publish = %s, want %s", d, want)
			}
		}
		if got := testutil.DirNames(t, filepath.Dir(file)); len(got) != 0 {
			t.Fatalf("before Close the directory holds %q", got)
		}
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if got := testutil.DirNames(t, filepath.Dir(file)); !slices.Equal(got, []string{filepath.Base(file)}) {
			t.Errorf("after Close the directory holds %q, want only the archive", got)
		}
	}
	a := filepath.Join(t.TempDir(), "app.tar")
	b := filepath.Join(t.TempDir(), "app.tar")
	write(t, a)
	write(t, b)

	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ab, bb) {
		t.Errorf("two runs wrote different archives (%d and %d bytes)", len(ab), len(bb))
	}
	if st, _ := os.Stat(a); st.Mode().Perm() != 0o644 {
		t.Errorf("archive mode %v, want -rw-r--r--", st.Mode())
	}

	dir := t.TempDir()
	hdrs := untar(t, a, dir)
	var names []string
	for _, h := range hdrs {
		names = append(names, h.Name)
		wantMode := int64(0o644)
		if h.Typeflag == tar.TypeDir {
			wantMode = 0o755
		}
		if h.Mode != wantMode || h.Uid != 0 || h.Gid != 0 || h.ModTime.Unix() != 0 || h.Uname != "" {
			t.Errorf("%s: mode %o uid %d gid %d mtime %s uname %q", h.Name, h.Mode, h.Uid, h.Gid, h.ModTime, h.Uname)
		}
		if strings.Contains(h.Name, ".tmp-") || strings.Contains(h.Name, ".lock") {
			t.Errorf("staging file %s in the archive", h.Name)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("entries not sorted: %q", names)
	}
	if names[0] != "blobs/" || names[1] != "blobs/sha256/" || names[len(names)-2] != "index.json" || names[len(names)-1] != "oci-layout" {
		t.Errorf("entries = %q", names)
	}
	ii, got := testutil.RefNames(t, dir)
	want := map[string]v1.Hash{
		"kiln.local/app:v1":       testutil.Digest(t, img),
		"kiln.local/app:latest":   testutil.Digest(t, img),
		"kiln.local/multi:latest": testutil.Digest(t, idx),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ref names = %v, want %v", got, want)
	}
	if err := validate.Index(ii); err != nil {
		t.Errorf("validate.Index: %v", err)
	}
}

func TestArchivesWithNothingPublished(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []publish.Publisher{
		&publish.OCIArchive{File: filepath.Join(dir, "a.tar")},
		&publish.DockerArchive{File: filepath.Join(dir, "b.tar")},
	} {
		if err := p.Close(context.Background()); err != nil {
			t.Errorf("%T.Close = %v", p, err)
		}
	}
	if got := testutil.DirNames(t, dir); len(got) != 0 {
		t.Errorf("empty archives wrote %q", got)
	}
}

func TestDockerArchiveRefusesIndex(t *testing.T) {
	dir := t.TempDir()
	p := &publish.DockerArchive{File: filepath.Join(dir, "x.tar")}
	if _, err := p.Publish(context.Background(), randomIndex(t), "kiln.local/app", nil); !errors.Is(err, publish.ErrMultiPlatform) {
		t.Fatalf("Publish(index) = %v, want ErrMultiPlatform", err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := testutil.DirNames(t, dir); len(got) != 0 {
		t.Errorf("a refused index left %q", got)
	}
}

func TestDockerArchive(t *testing.T) {
	ctx := context.Background()
	a, b := randomImage(t), randomImage(t)
	items := []item{
		{a, "kiln.local/app", []string{"v1", "v2", "v1"}},
		{b, "kiln.local/other", nil},
		{a, "kiln.local/again", []string{"x"}},
	}
	write := func(t *testing.T, file string) {
		t.Helper()
		p := &publish.DockerArchive{File: file}
		for _, it := range items {
			d, err := p.Publish(ctx, it.a, it.repo, it.tags)
			if err != nil {
				t.Fatal(err)
			}
			if want := it.repo + "@" + testutil.Digest(t, it.a).String(); d.String() != want {
				t.Errorf("Publish = %s, want %s", d, want)
			}
		}
		if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("archive exists before Close: %v", err)
		}
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "images.tar")
	write(t, file)

	// Same items, same bytes: run it a few times, since map order varies.
	first, _ := os.ReadFile(file)
	for i := range 5 {
		again := filepath.Join(t.TempDir(), "images.tar")
		write(t, again)
		if b, _ := os.ReadFile(again); !bytes.Equal(b, first) {
			t.Fatalf("run %d wrote a different archive", i+2)
		}
	}

	for _, tc := range []struct {
		tag  string
		want v1.Image
	}{
		{"kiln.local/app:v1", a},
		{"kiln.local/app:v2", a},
		{"kiln.local/again:x", a},
		{"kiln.local/other:latest", b},
	} {
		t.Run(tc.tag, func(t *testing.T) {
			tag, err := name.NewTag(tc.tag)
			if err != nil {
				t.Fatal(err)
			}
			back, err := tarball.ImageFromPath(file, &tag)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Image(back); err != nil {
				t.Errorf("validate.Image: %v", err)
			}
			wantCfg, _ := tc.want.RawConfigFile()
			gotCfg, err := back.RawConfigFile()
			if err != nil || !bytes.Equal(gotCfg, wantCfg) {
				t.Errorf("config differs from the published image's (%v)", err)
			}
			wl, _ := tc.want.Layers()
			gl, err := back.Layers()
			if err != nil || len(gl) != len(wl) {
				t.Fatalf("read %d layers (%v), want %d", len(gl), err, len(wl))
			}
			for i := range wl {
				if testutil.Digest(t, gl[i]) != testutil.Digest(t, wl[i]) {
					t.Errorf("layer %d = %s, want %s", i, testutil.Digest(t, gl[i]), testutil.Digest(t, wl[i]))
				}
			}
		})
	}

	// manifest.json: one entry per image, in publication order, tags in order and once.
	dir := t.TempDir()
	hdrs := untar(t, file, dir)
	if last := hdrs[len(hdrs)-1].Name; last != "manifest.json" {
		t.Errorf("last entry %s, want manifest.json", last)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m tarball.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	cfgA, _ := a.ConfigName()
	cfgB, _ := b.ConfigName()
	type entry struct {
		Config string
		Tags   []string
		Layers int
	}
	var got []entry
	for _, d := range m {
		got = append(got, entry{d.Config, d.RepoTags, len(d.Layers)})
		for _, l := range d.Layers {
			if !strings.HasSuffix(l, ".tar.gz") || len(l) != 64+len(".tar.gz") {
				t.Errorf("layer file %q, want <hex>.tar.gz", l)
			}
		}
	}
	want := []entry{
		{cfgA.String(), []string{"kiln.local/app:v1", "kiln.local/app:v2", "kiln.local/again:x"}, 2},
		{cfgB.String(), []string{"kiln.local/other:latest"}, 2},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("manifest.json = %+v, want %+v", got, want)
	}
	// Configs and layers each once: 2 configs + 4 layers + manifest.json.
	if len(hdrs) != 7 {
		t.Errorf("%d entries, want 7", len(hdrs))
	}
}

// A tag given to two images names the one published last; the first,
// left untagged, is not written.
func TestDockerArchiveTagMoves(t *testing.T) {
	a, b := randomImage(t), randomImage(t)
	file := filepath.Join(t.TempDir(), "x.tar")
	p := &publish.DockerArchive{File: file}
	for _, img := range []v1.Image{a, b} {
		if _, err := p.Publish(context.Background(), img, "kiln.local/app", []string{"latest"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(file) })
	if err != nil {
		t.Fatal(err)
	}
	var tags [][]string
	for _, d := range m {
		tags = append(tags, d.RepoTags)
	}
	if fmt.Sprint(tags) != "[[kiln.local/app:latest]]" {
		t.Errorf("RepoTags = %v, want only the second image, tagged", tags)
	}
	tag, _ := name.NewTag("kiln.local/app:latest")
	back, err := tarball.ImageFromPath(file, &tag)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := testutil.Digest(t, mustConfigName(t, back)), testutil.Digest(t, mustConfigName(t, b)); got != want {
		t.Errorf("latest has config %s, want %s", got, want)
	}
}

type hashed v1.Hash

func (h hashed) Digest() (v1.Hash, error) { return v1.Hash(h), nil }

func mustConfigName(t testing.TB, img v1.Image) hashed {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return hashed(h)
}

// zstd and uncompressed layers get the file names `docker load` expects.
func TestDockerArchiveLayerNames(t *testing.T) {
	zl := static.NewLayer([]byte("not really zstd"), types.OCILayerZStd)
	ul := static.NewLayer([]byte("plain tar"), types.OCIUncompressedLayer)
	img, err := mutate.AppendLayers(empty.Image, zl, ul)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "x.tar")
	p := &publish.DockerArchive{File: file}
	if _, err := p.Publish(context.Background(), img, "kiln.local/app", []string{"z"}); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(file) })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{testutil.Digest(t, zl).Hex + ".tar.zst", testutil.Digest(t, ul).Hex + ".tar"}
	if len(m) != 1 || !slices.Equal(m[0].Layers, want) {
		t.Errorf("manifest.json = %+v, want layers %q", m, want)
	}
}

// failingLayer fails to open its bytes.
type failingLayer struct{ v1.Layer }

func (failingLayer) Compressed() (io.ReadCloser, error) { return nil, errors.New("disk on fire") }

// An archive that fails half-way leaves neither the file nor a temporary.
func TestArchiveFailureLeavesNothing(t *testing.T) {
	good := static.NewLayer([]byte("ok"), types.OCILayer)
	bad := failingLayer{static.NewLayer([]byte("bad"), types.OCILayer)}
	img, err := mutate.AppendLayers(empty.Image, good, bad)
	if err != nil {
		t.Fatal(err)
	}
	for _, mk := range []func(string) publish.Publisher{
		func(f string) publish.Publisher { return &publish.OCIArchive{File: f} },
		func(f string) publish.Publisher { return &publish.DockerArchive{File: f} },
	} {
		dir := t.TempDir()
		p := mk(filepath.Join(dir, "out.tar"))
		if _, err := p.Publish(context.Background(), img, "kiln.local/app", nil); err != nil {
			t.Fatal(err)
		}
		if err := p.Close(context.Background()); err == nil || !strings.Contains(err.Error(), "disk on fire") {
			t.Errorf("%T.Close = %v, want the layer's error", p, err)
		}
		if got := testutil.DirNames(t, dir); len(got) != 0 {
			t.Errorf("%T left %q", p, got)
		}
	}
}
