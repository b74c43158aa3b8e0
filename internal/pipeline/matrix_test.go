package pipeline

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kilnbuild/kiln/internal/base"
	"github.com/kilnbuild/kiln/internal/checked"
	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/platform"
	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/store"
	"github.com/kilnbuild/kiln/internal/testutil"
)

var (
	amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = v1.Platform{OS: "linux", Architecture: "arm64"}
)

// matrixBase is one kind of base image, and whether it offers arm64.
type matrixBase struct {
	name  string
	ref   string
	multi bool // offers linux/amd64 and linux/arm64; else linux/amd64 alone
}

// matrixOutput is one kind of destination: how to make its publisher and
// how to read back the artifact it received.
type matrixOutput struct {
	name string
	// single: the destination holds one platform per image and refuses an
	// index with publish.ErrMultiPlatform.
	single bool
	tool   string // an outside program the output needs
	make   func(t *testing.T) (publish.Publisher, string, readBack)
}

// readBack returns what the destination holds of built, after checking
// that it is the same artifact.
type readBack func(t *testing.T, built publish.Artifact) publish.Artifact

// TestEveryBaseToEveryOutput builds one tiny main package on every kind of
// base and publishes it to every kind of destination, for one platform and
// for two, and validates what each destination then holds. Registry bases
// live on a registry other than the output's, so that no layer can be
// mounted: every base blob is read while publishing.
func TestEveryBaseToEveryOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("72 builds and publications")
	}
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, testutil.HelloModule)
	env := testutil.HermeticGoEnv(t)
	cache := t.TempDir() // one layer per binary, reused by every case
	goCmd := &goOnce{dir: t.TempDir(), done: map[string]goAnswer{}}
	bases := matrixBases(t)
	outputs := matrixOutputs()

	for _, b := range bases {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel() // bases apart: one's podman load overlaps another's build
			for _, o := range outputs {
				for _, plats := range [][]v1.Platform{{amd64}, {amd64, arm64}} {
					t.Run(o.name+"/"+map[int]string{1: "one", 2: "two"}[len(plats)], func(t *testing.T) {
						matrixCase(t, b, o, plats, Options{
							Dir: dir, Env: env, Builder: &gobuild.Builder{Env: env, Runner: goCmd}, Jobs: 2,
							Platforms: platform.Spec{Platforms: plats}, CacheDir: cache,
							Config: &config.Config{DefaultBaseImage: b.ref},
						})
					})
				}
			}
		})
	}
}

// matrixCase builds with opts to the output o and checks the outcome.
func matrixCase(t *testing.T, b matrixBase, o matrixOutput, plats []v1.Platform, opts Options) {
	if o.tool != "" {
		testutil.RequireTool(t, o.tool) // Check asks for it, even for what is refused later
	}
	pub, repo, read := o.make(t)
	var progress bytes.Buffer
	opts.Naming = Naming{Repo: repo, BaseImportPaths: true}
	opts.Tags = []string{"v1"}
	opts.Publisher = pub
	opts.Progress = &progress
	res, err := Run(context.Background(), opts, []string{"./cmd/hello"})
	switch {
	case len(plats) > 1 && !b.multi:
		wantOneLine(t, err, base.ErrPlatformMissing)
		return
	case len(plats) > 1 && o.single:
		wantOneLine(t, err, publish.ErrMultiPlatform)
		return
	}
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(res) != 1 {
		t.Fatalf("%d results, want 1", len(res))
	}
	checkArtifact(t, read(t, res[0].Artifact), plats)
	note := strings.Count(progress.String(), "no platform in its config")
	if want := map[bool]int{true: 1}[b.name == "noplatform"]; note != want {
		t.Errorf("progress says %d times that the base names no platform, want %d:\n%s", note, want, progress.String())
	}
}

// wantOneLine checks that err wraps target and is one line.
func wantOneLine(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("Run = %v, want an error wrapping %q", err, target)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
}

// checkArtifact validates a and checks it holds one image per platform.
func checkArtifact(t *testing.T, a publish.Artifact, plats []v1.Platform) {
	t.Helper()
	switch a := a.(type) {
	case v1.ImageIndex:
		if err := validate.Index(a); err != nil {
			t.Fatalf("validate.Index: %v", err)
		}
		im, err := a.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		if len(im.Manifests) != len(plats) {
			t.Fatalf("index holds %d manifests, want %d", len(im.Manifests), len(plats))
		}
		for i, d := range im.Manifests {
			if d.Platform == nil || platform.String(*d.Platform) != platform.String(plats[i]) {
				t.Errorf("manifest %d is for %v, want %s", i, d.Platform, platform.String(plats[i]))
			}
		}
	case v1.Image:
		if len(plats) != 1 {
			t.Fatalf("an image for %d platforms", len(plats))
		}
		if err := validate.Image(a); err != nil {
			t.Fatalf("validate.Image: %v", err)
		}
		cf, err := a.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if got := platform.String(*cf.Platform()); got != platform.String(plats[0]) {
			t.Errorf("image is for %s, want %s", got, platform.String(plats[0]))
		}
	default:
		t.Fatalf("read back a %T", a)
	}
}

// matrixBases pushes the registry bases to a registry of their own and
// writes the layout base.
func matrixBases(t *testing.T) []matrixBase {
	reg := testutil.Registry(t)
	single := platformImage(t, amd64)
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range []v1.Platform{amd64, arm64} {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add: platformImage(t, p), Descriptor: v1.Descriptor{Platform: &p},
		})
	}
	// What `crane append` makes from nothing: a layer on the empty image,
	// whose config names no os or architecture.
	noPlatform, err := mutate.AppendLayers(empty.Image, must(random.Layer(512, types.DockerLayer)))
	if err != nil {
		t.Fatal(err)
	}
	push := func(repo string, a publish.Artifact) string {
		ref := must(name.ParseReference(reg + "/" + repo + ":v1"))
		var err error
		switch a := a.(type) {
		case v1.ImageIndex:
			err = remote.WriteIndex(ref, a)
		case v1.Image:
			err = remote.Write(ref, a)
		}
		if err != nil {
			t.Fatal(err)
		}
		return ref.String()
	}
	lay := t.TempDir()
	if _, err := layout.Write(lay, empty.Index); err != nil {
		t.Fatal(err)
	}
	if err := layout.Path(lay).AppendIndex(idx); err != nil {
		t.Fatal(err)
	}
	return []matrixBase{
		{name: "static", ref: base.StaticName, multi: true},
		{name: "scratch", ref: base.ScratchName, multi: true},
		{name: "image", ref: push("image", single)},
		{name: "index", ref: push("index", idx), multi: true},
		{name: "oci", ref: "oci:" + lay, multi: true},
		{name: "noplatform", ref: push("noplatform", noPlatform)},
	}
}

// platformImage is a small random image whose config names p.
func platformImage(t *testing.T, p v1.Platform) v1.Image {
	t.Helper()
	img := testutil.RandomImage(t, 512, 1)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = p.OS, p.Architecture
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func matrixOutputs() []matrixOutput {
	return []matrixOutput{
		{name: "registry", make: func(t *testing.T) (publish.Publisher, string, readBack) {
			repo := testutil.Registry(t) + "/out"
			return &publish.ToRegistry{Repo: repo}, repo, func(t *testing.T, built publish.Artifact) publish.Artifact {
				h := testutil.Digest(t, built)
				desc, err := remote.Get(must(name.NewDigest(repo + "/hello@" + h.String())))
				if err != nil {
					t.Fatal(err)
				}
				if desc.MediaType.IsIndex() {
					return must(desc.ImageIndex())
				}
				return must(desc.Image())
			}
		}},
		{name: "oci", make: func(t *testing.T) (publish.Publisher, string, readBack) {
			dir := t.TempDir()
			return &publish.ToLayout{Dir: dir}, LocalRepo, func(t *testing.T, built publish.Artifact) publish.Artifact {
				h := testutil.Digest(t, built)
				return fromLayout(t, dir, h)
			}
		}},
		{name: "oci-archive", make: func(t *testing.T) (publish.Publisher, string, readBack) {
			file := filepath.Join(t.TempDir(), "out.tar")
			return &publish.OCIArchive{File: file}, LocalRepo, func(t *testing.T, built publish.Artifact) publish.Artifact {
				h := testutil.Digest(t, built)
				dir := t.TempDir()
				untarTo(t, file, dir)
				return fromLayout(t, dir, h)
			}
		}},
		{name: "docker-archive", single: true, make: func(t *testing.T) (publish.Publisher, string, readBack) {
			file := filepath.Join(t.TempDir(), "out.tar")
			return &publish.DockerArchive{File: file}, LocalRepo, func(t *testing.T, built publish.Artifact) publish.Artifact {
				tag := must(name.NewTag(LocalRepo + "/hello:v1"))
				return sameImage(t, must(tarball.ImageFromPath(file, &tag)), built)
			}
		}},
		{name: "store", make: func(t *testing.T) (publish.Publisher, string, readBack) {
			dir := t.TempDir()
			return &publish.ToLayout{Dir: dir}, LocalRepo, func(t *testing.T, built publish.Artifact) publish.Artifact {
				h := testutil.Digest(t, built)
				s := must(store.Open(dir))
				desc := must(s.Lookup(LocalRepo + "/hello:v1"))
				if desc.Digest != h {
					t.Fatalf("the store's tag names %s, want %s", desc.Digest, h)
				}
				if desc.MediaType.IsIndex() {
					return must(checked.Index(s, desc))
				}
				return must(checked.Image(s, desc))
			}
		}},
		{name: "load", single: true, tool: "podman", make: func(t *testing.T) (publish.Publisher, string, readBack) {
			env := podmanEnv(t)
			return &publish.Load{Tool: "podman", Env: env, TempDir: t.TempDir()}, LocalRepo, func(t *testing.T, built publish.Artifact) publish.Artifact {
				file := filepath.Join(t.TempDir(), "saved.tar")
				cmd := exec.Command("podman", "save", "-o", file, LocalRepo+"/hello:v1")
				cmd.Env = env
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("podman save: %v\n%s", err, out)
				}
				tag := must(name.NewTag(LocalRepo + "/hello:v1"))
				return sameImage(t, must(tarball.ImageFromPath(file, &tag)), built)
			}
		}},
	}
}

// sameImage checks that img, read back from an archive or an engine that
// may re-pack its layers (so its manifest differs), has built's config and
// layers: the config's digest is the image ID docker and podman report.
func sameImage(t *testing.T, img v1.Image, built publish.Artifact) v1.Image {
	t.Helper()
	want, ok := built.(v1.Image)
	if !ok {
		t.Fatalf("built a %T for a one-platform destination", built)
	}
	if got, want := must(img.ConfigName()), must(want.ConfigName()); got != want {
		t.Errorf("read back config %s, want %s", got, want)
	}
	if got, want := must(img.ConfigFile()).RootFS.DiffIDs, must(want.ConfigFile()).RootFS.DiffIDs; len(got) != len(want) {
		t.Errorf("read back %d layers, want %d", len(got), len(want))
	}
	return img
}

// podmanEnv is podman's environment with a storage of the test's own
// (vfs, under a temporary directory), so loads touch no other storage.
func podmanEnv(t *testing.T) []string {
	t.Helper()
	return append(os.Environ(), testutil.PodmanStorage(t))
}

// fromLayout reads the image or index h from the OCI layout dir.
func fromLayout(t *testing.T, dir string, h v1.Hash) publish.Artifact {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("the layout's index.json: %v", err)
	}
	im := must(idx.IndexManifest())
	for _, d := range im.Manifests {
		if d.Digest != h {
			continue
		}
		if d.MediaType.IsIndex() {
			return must(idx.ImageIndex(h))
		}
		return must(idx.Image(h))
	}
	t.Fatalf("%s does not list %s", dir, h)
	return nil
}

// untarTo extracts the archive file into dir.
func untarTo(t *testing.T, file, dir string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			t.Fatalf("archive entry %q leaves the directory", h.Name)
		}
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// goOnce runs each distinct go (or git) command once, for real, and answers
// its repeats from memory; go build's binary is kept and copied to the
// output asked for. The table's time then goes to bases and outputs, not to
// 72 runs of go build that find everything in go's cache.
type goOnce struct {
	mu   sync.Mutex
	dir  string // keeps the binaries
	done map[string]goAnswer
}

type goAnswer struct {
	out []byte
	err error
	bin string // go build's binary
}

var _ gobuild.Runner = (*goOnce)(nil)

func (g *goOnce) Run(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	out := -1 // index of go build's output file in args
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-o" {
			out = i + 1
			break
		}
	}
	key := []string{dir, name}
	for i, a := range args {
		if i == out {
			a = "OUT"
		}
		key = append(key, a)
	}
	for _, kv := range env {
		if strings.HasPrefix(kv, "GO") || strings.HasPrefix(kv, "CGO_") {
			key = append(key, kv)
		}
	}
	k := strings.Join(key, "\x00")

	g.mu.Lock()
	defer g.mu.Unlock()
	a, ok := g.done[k]
	if !ok {
		runArgs := args
		if out >= 0 {
			a.bin = filepath.Join(g.dir, fmt.Sprintf("bin-%d", len(g.done)))
			runArgs = append([]string(nil), args...)
			runArgs[out] = a.bin
		}
		a.out, a.err = gobuild.ExecRunner{}.Run(ctx, dir, env, name, runArgs...)
		if ctx.Err() != nil {
			return a.out, a.err // not remembered: the next run asks again
		}
		g.done[k] = a
	}
	if a.err == nil && out >= 0 {
		data, err := os.ReadFile(a.bin)
		if err != nil {
			return nil, err
		}
		// As the go command does, the output is a new file renamed into
		// place, never the old one rewritten: a build that hard-linked
		// the old binary (privateLink) keeps reading its bytes.
		tmp := args[out] + ".tmp"
		if err := os.WriteFile(tmp, data, 0o755); err != nil {
			return nil, err
		}
		if err := os.Rename(tmp, args[out]); err != nil {
			return nil, err
		}
	}
	return a.out, a.err
}

// A base that never answers does not hold up a build that fails: the
// bases' context, which outlives the build's group, ends when Run returns.
func TestFailedBuildDoesNotWaitForTheBase(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, testutil.HelloModule)
	env := testutil.HermeticGoEnv(t)
	reg := testutil.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/manifests/") {
			<-r.Context().Done() // never answers
			return
		}
		w.WriteHeader(http.StatusOK) // GET /v2/: no auth
	}))
	_, err := Run(context.Background(), Options{
		Dir: dir, Env: env, Builder: &gobuild.Builder{Env: env},
		Platforms: platform.Spec{Platforms: []v1.Platform{amd64}},
		Naming:    Naming{Repo: LocalRepo},
		Publisher: &publish.ToLayout{Dir: t.TempDir()},
		Config:    &config.Config{DefaultBaseImage: reg + "/hangs:v1"},
	}, []string{"./broken"})
	if err == nil || !strings.Contains(err.Error(), "undefined") {
		t.Fatalf("Run = %v, want the compile error", err)
	}
}
