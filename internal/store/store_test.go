package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	specs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kilnbuild/kiln/internal/store"
	"github.com/kilnbuild/kiln/internal/testutil"
)

func randomImage(t testing.TB) v1.Image { return testutil.RandomImage(t, 512, 2) }

// platformImage is a random image whose config names linux/arm64/v8.
func platformImage(t testing.TB) v1.Image {
	t.Helper()
	img := randomImage(t)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = "linux", "arm64", "v8"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func open(t testing.TB) (*store.Layout, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	l, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return l, dir
}

func TestOpen(t *testing.T) {
	_, dir := open(t)
	raw, err := os.ReadFile(filepath.Join(dir, "oci-layout"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(raw), `{"imageLayoutVersion":"1.0.0"}`; got != want {
		t.Errorf("oci-layout = %s, want %s", got, want)
	}
	if st, err := os.Stat(filepath.Join(dir, "blobs", "sha256")); err != nil || !st.IsDir() {
		t.Errorf("blobs/sha256: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "index.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("index.json exists before the first Put: %v", err)
	}
	l, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := l.Index()
	if err != nil {
		t.Fatal(err)
	}
	if im.SchemaVersion != 2 || im.MediaType != types.OCIImageIndex || len(im.Manifests) != 0 {
		t.Errorf("empty Index() = %+v", im)
	}
}

func TestPutImage(t *testing.T) {
	l, dir := open(t)
	img := platformImage(t)
	desc, err := l.Put(context.Background(), img, []string{"example.com/app:v1"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := img.RawManifest()
	mt, _ := img.MediaType()
	want := v1.Descriptor{
		MediaType: mt,
		Size:      int64(len(raw)),
		Digest:    testutil.Digest(t, img),
		Platform:  &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"},
	}
	if desc.MediaType != want.MediaType || desc.Size != want.Size || desc.Digest != want.Digest || !desc.Platform.Equals(*want.Platform) {
		t.Errorf("Put = %+v, want %+v", desc, want)
	}

	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	ii, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(ii); err != nil {
		t.Errorf("validate.Index(layout): %v", err)
	}
	im, _ := ii.IndexManifest()
	if len(im.Manifests) != 1 {
		t.Fatalf("index.json lists %d manifests, want 1", len(im.Manifests))
	}
	d := im.Manifests[0]
	if d.Digest != want.Digest || d.MediaType != mt || d.Size != want.Size || d.Platform == nil || d.Platform.Architecture != "arm64" {
		t.Errorf("index.json descriptor = %+v", d)
	}
	if got := d.Annotations; len(got) != 1 || got[specs.AnnotationRefName] != "example.com/app:v1" {
		t.Errorf("annotations = %v", got)
	}
	back, err := p.Image(want.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(back); err != nil {
		t.Errorf("validate.Image: %v", err)
	}

	// Every blob and only those: 2 layers, config, manifest.
	layers, _ := img.Layers()
	cfg, _ := img.ConfigName()
	wantBlobs := []string{want.Digest.Hex, cfg.Hex}
	for _, l := range layers {
		wantBlobs = append(wantBlobs, testutil.Digest(t, l).Hex)
	}
	slices.Sort(wantBlobs)
	if got := listBlobs(t, dir); !slices.Equal(got, wantBlobs) {
		t.Errorf("blobs = %q, want %q", got, wantBlobs)
	}
	// Readable by the server and by other users, like any layout.
	for _, f := range append(blobPaths(dir, wantBlobs), filepath.Join(dir, "index.json"), filepath.Join(dir, "oci-layout")) {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v, want -rw-r--r--", strings.TrimPrefix(f, dir), st.Mode())
		}
	}
	assertNoTemp(t, dir)
}

func blobPaths(dir string, hexes []string) []string {
	var out []string
	for _, h := range hexes {
		out = append(out, filepath.Join(dir, "blobs", "sha256", h))
	}
	return out
}

func listBlobs(t testing.TB, dir string) []string {
	t.Helper()
	return testutil.DirNames(t, filepath.Join(dir, "blobs", "sha256"))
}

func assertNoTemp(t testing.TB, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(d.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
}

func TestPutIndex(t *testing.T) {
	l, dir := open(t)
	idx, err := random.Index(256, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := l.Put(context.Background(), idx, []string{"app:multi"})
	if err != nil {
		t.Fatal(err)
	}
	mt, _ := idx.MediaType()
	if desc.Digest != testutil.Digest(t, idx) || desc.MediaType != mt || desc.Platform != nil {
		t.Errorf("Put = %+v, want the index's digest and media type %s, no platform", desc, mt)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	root, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(root); err != nil {
		t.Errorf("validate.Index(layout): %v", err)
	}
	back, err := root.ImageIndex(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(back); err != nil {
		t.Errorf("validate.Index(stored index): %v", err)
	}
	if _, got := testutil.RefNames(t, dir); len(got) != 1 || got["app:multi"] != desc.Digest {
		t.Errorf("tags = %v", got)
	}
	// 3 images × (2 layers + config + manifest) + the index.
	if n := len(listBlobs(t, dir)); n != 3*4+1 {
		t.Errorf("%d blobs, want 13", n)
	}
	assertNoTemp(t, dir)
}

func TestTagging(t *testing.T) {
	ctx := context.Background()
	a, b := randomImage(t), randomImage(t)
	da, db := testutil.Digest(t, a), testutil.Digest(t, b)
	for _, tc := range []struct {
		name string
		puts []struct {
			img   v1.Image
			names []string
		}
		want     map[string]v1.Hash
		unnamed  int
		manifest int
	}{
		{
			name: "re-tagging a name moves it",
			puts: []struct {
				img   v1.Image
				names []string
			}{{a, []string{"app:latest"}}, {b, []string{"app:latest"}}},
			want: map[string]v1.Hash{"app:latest": db}, manifest: 1,
		},
		{
			name: "two names are both kept",
			puts: []struct {
				img   v1.Image
				names []string
			}{{a, []string{"app:v1"}}, {b, []string{"app:v2"}}},
			want: map[string]v1.Hash{"app:v1": da, "app:v2": db}, manifest: 2,
		},
		{
			name: "one image, two names at once",
			puts: []struct {
				img   v1.Image
				names []string
			}{{a, []string{"app:v1", "app:latest"}}},
			want: map[string]v1.Hash{"app:v1": da, "app:latest": da}, manifest: 2,
		},
		{
			name: "a name repeated in one call is listed once",
			puts: []struct {
				img   v1.Image
				names []string
			}{{a, []string{"app:v1", "app:v1"}}},
			want: map[string]v1.Hash{"app:v1": da}, manifest: 1,
		},
		{
			name: "moving one of two names keeps the other",
			puts: []struct {
				img   v1.Image
				names []string
			}{{a, []string{"app:v1", "app:latest"}}, {b, []string{"app:latest"}}},
			want: map[string]v1.Hash{"app:v1": da, "app:latest": db}, manifest: 2,
		},
		{
			name: "unnamed is added once",
			puts: []struct {
				img   v1.Image
				names []string
			}{{a, nil}, {a, nil}, {b, []string{"app:v2"}}},
			want: map[string]v1.Hash{"": da, "app:v2": db}, manifest: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, dir := open(t)
			for _, p := range tc.puts {
				if _, err := l.Put(ctx, p.img, p.names); err != nil {
					t.Fatal(err)
				}
			}
			im, err := l.Index()
			if err != nil {
				t.Fatal(err)
			}
			if len(im.Manifests) != tc.manifest {
				t.Errorf("index.json lists %d manifests, want %d", len(im.Manifests), tc.manifest)
			}
			if _, got := testutil.RefNames(t, dir); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("tags = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestConcurrentPut: eight writers (each with its own Layout, as separate
// processes would have) lose no tag, and a reader never sees a partial
// index.json.
func TestConcurrentPut(t *testing.T) {
	_, dir := open(t)
	const n = 8
	imgs := make([]v1.Image, n)
	for i := range imgs {
		imgs[i] = randomImage(t)
	}

	var stop atomic.Bool
	var reads atomic.Int64
	readerDone := make(chan error)
	go func() {
		for !stop.Load() {
			raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				readerDone <- err
				return
			}
			var im v1.IndexManifest
			if err := json.Unmarshal(raw, &im); err != nil {
				readerDone <- fmt.Errorf("index.json is not valid JSON (%d bytes): %v", len(raw), err)
				return
			}
			reads.Add(1)
		}
		readerDone <- nil
	}()

	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			l, err := store.Open(dir)
			if err != nil {
				errs[i] = err
				return
			}
			_, errs[i] = l.Put(context.Background(), imgs[i], []string{fmt.Sprintf("app:t%d", i)})
		})
	}
	wg.Wait()
	stop.Store(true)
	if err := <-readerDone; err != nil {
		t.Error(err)
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	_, got := testutil.RefNames(t, dir)
	if len(got) != n {
		t.Errorf("%d tags survived, want %d: %v", len(got), n, got)
	}
	for i, img := range imgs {
		if name := fmt.Sprintf("app:t%d", i); got[name] != testutil.Digest(t, img) {
			t.Errorf("%s = %s, want %s", name, got[name], testutil.Digest(t, img))
		}
	}
	assertNoTemp(t, dir)
	t.Logf("%d reads of index.json while writing", reads.Load())
}

// lyingLayer is a layer whose Digest does not match its bytes.
type lyingLayer struct {
	v1.Layer
	digest v1.Hash
}

func (l *lyingLayer) Digest() (v1.Hash, error) { return l.digest, nil }

func TestPutRejectsBadBlobs(t *testing.T) {
	real := static.NewLayer([]byte("layer bytes"), types.OCILayer)
	for _, tc := range []struct {
		name   string
		digest v1.Hash
		is     error
		want   string
	}{
		{"digest of other bytes", v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}, store.ErrDigestMismatch, "does not match its digest"},
		{"short hex", v1.Hash{Algorithm: "sha256", Hex: "abc"}, nil, "malformed sha256 digest"},
		{"path in hex", v1.Hash{Algorithm: "sha256", Hex: "../../../../../../../../../../../../../../../../../../../../etc/x"}, nil, "malformed sha256 digest"},
		{"upper-case hex", v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("AB", 32)}, nil, "malformed sha256 digest"},
		{"sha384", v1.Hash{Algorithm: "sha384", Hex: strings.Repeat("ab", 48)}, nil, "only sha256 and sha512 digests are supported"},
		{"short sha512", v1.Hash{Algorithm: "sha512", Hex: strings.Repeat("ab", 32)}, nil, "malformed sha512 digest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, dir := open(t)
			img, err := mutate.AppendLayers(empty.Image, &lyingLayer{Layer: real, digest: tc.digest})
			if err != nil {
				t.Fatal(err)
			}
			_, err = l.Put(context.Background(), img, []string{"app:bad"})
			if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Fatalf("Put = %v, want an error containing %q (is %v)", err, tc.want, tc.is)
			}
			if got := listBlobs(t, dir); len(got) != 0 {
				t.Errorf("blobs left after a failed Put: %q", got)
			}
			if _, err := os.Stat(filepath.Join(dir, "index.json")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("index.json written for a failed Put: %v", err)
			}
			assertNoTemp(t, dir)
		})
	}
}

func TestPutCanceled(t *testing.T) {
	l, dir := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Put(ctx, randomImage(t), []string{"app:x"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put = %v, want context.Canceled", err)
	}
	if got := listBlobs(t, dir); len(got) != 0 {
		t.Errorf("blobs written after cancellation: %q", got)
	}
}

// A blob already present is not rewritten (content-addressed).
func TestPutSkipsPresentBlobs(t *testing.T) {
	l, dir := open(t)
	img := randomImage(t)
	if _, err := l.Put(context.Background(), img, []string{"a:1"}); err != nil {
		t.Fatal(err)
	}
	before := map[string]fs.FileInfo{}
	for _, b := range listBlobs(t, dir) {
		st, _ := os.Stat(filepath.Join(dir, "blobs", "sha256", b))
		before[b] = st
	}
	if _, err := l.Put(context.Background(), img, []string{"a:2"}); err != nil {
		t.Fatal(err)
	}
	for _, b := range listBlobs(t, dir) {
		st, _ := os.Stat(filepath.Join(dir, "blobs", "sha256", b))
		if !os.SameFile(before[b], st) {
			t.Errorf("blob %s was rewritten", b)
		}
	}
	if _, got := testutil.RefNames(t, dir); len(got) != 2 {
		t.Errorf("tags = %v", got)
	}
}

func TestIndexRejectsCorruptIndex(t *testing.T) {
	l, dir := open(t)
	if err := os.WriteFile(filepath.Join(dir, "index.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Index(); err == nil || !strings.Contains(err.Error(), "index.json") {
		t.Errorf("Index() = %v, want an error naming index.json", err)
	}
	if _, err := l.Put(context.Background(), randomImage(t), []string{"a:1"}); err == nil {
		t.Errorf("Put over a corrupt index.json succeeded (it would drop every tag)")
	}
}
