package pipeline

import (
	"bytes"
	"context"
	"debug/elf"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/platform"
	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/testutil"
)

func build(t *testing.T, dir string, environ []string, opts Options, pkgs ...string) []Result {
	t.Helper()
	opts.Dir = dir
	opts.Env = environ
	opts.Builder = &gobuild.Builder{Env: environ}
	if opts.Jobs == 0 {
		opts.Jobs = 2
	}
	res, err := Run(context.Background(), opts, pkgs)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func pull(t *testing.T, ref string) (v1.Image, v1.ImageIndex) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(r)
	if err != nil {
		t.Fatal(err)
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			t.Fatal(err)
		}
		return nil, idx
	}
	img, err := desc.Image()
	if err != nil {
		t.Fatal(err)
	}
	return img, nil
}

func TestBuildPushesAKoStyleImage(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, testutil.HelloModule)
	reg := testutil.Registry(t)
	repo := reg + "/team"
	res := build(t, dir, testutil.GoEnv(t, t.TempDir()), Options{
		Platforms: platform.Spec{Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}}},
		Naming:    Naming{Repo: repo, BaseImportPaths: true},
		Tags:      []string{"v1", "latest"},
		Publisher: &publish.ToRegistry{Repo: repo},
		Config:    &config.Config{DefaultBaseImage: "static"},
	}, "./cmd/hello")

	if len(res) != 1 || !strings.HasPrefix(res[0].Ref, repo+"/hello@sha256:") {
		t.Fatalf("results = %+v", res)
	}
	img, _ := pull(t, res[0].Ref)
	if err := validate.Image(img); err != nil {
		t.Fatalf("validate.Image: %v", err)
	}
	for _, tag := range []string{"v1", "latest"} {
		d, err := remote.Head(must(name.ParseReference(repo + "/hello:" + tag)))
		if err != nil || d.Digest.String() != res[0].Digest {
			t.Errorf("tag %s: %v %v", tag, d, err)
		}
	}
	mf, _ := img.Manifest()
	if mf.MediaType != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("manifest media type %s", mf.MediaType)
	}
	if mf.Annotations["org.opencontainers.image.base.name"] != "static" {
		t.Errorf("annotations = %v", mf.Annotations)
	}
	cf, _ := img.ConfigFile()
	if got := cf.Config.Entrypoint; len(got) != 1 || got[0] != "/ko-app/hello" {
		t.Errorf("entrypoint = %v", got)
	}
	envs := strings.Join(cf.Config.Env, " ")
	for _, want := range []string{"KO_DATA_PATH=/var/run/ko", ":/ko-app", "SSL_CERT_FILE="} {
		if !strings.Contains(envs, want) {
			t.Errorf("env %q lacks %q", envs, want)
		}
	}
	if cf.Config.User != "65532" || !cf.Created.Time.Equal(time.Unix(0, 0)) || cf.Architecture != "amd64" {
		t.Errorf("config: user %q created %v arch %s", cf.Config.User, cf.Created, cf.Architecture)
	}
	hdrs, data := testutil.Files(t, img, "var/run/ko/greeting.txt")
	bin := hdrs["ko-app/hello"]
	if bin == nil || bin.Mode != 0o555 || bin.Uid != 0 || !bin.ModTime.Equal(time.Unix(0, 0)) {
		t.Errorf("binary header = %+v", bin)
	}
	if string(data["var/run/ko/greeting.txt"]) != "hello" {
		t.Errorf("kodata = %q", data["var/run/ko/greeting.txt"])
	}
	if hdrs["etc/ssl/certs/ca-certificates.crt"] == nil {
		t.Error("static base files missing")
	}
}

func TestTwoPlatformsMakeAnIndexWithTheRightBinaries(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, testutil.HelloModule)
	reg := testutil.Registry(t)
	plats := []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}
	res := build(t, dir, testutil.GoEnv(t, t.TempDir()), Options{
		Platforms: platform.Spec{Platforms: plats},
		Naming:    Naming{Repo: reg + "/x"},
		Publisher: &publish.ToRegistry{Repo: reg + "/x"},
		Config:    &config.Config{DefaultBaseImage: "scratch"},
	}, "./cmd/hello")
	_, idx := pull(t, res[0].Ref)
	if idx == nil {
		t.Fatal("two platforms did not give an index")
	}
	if err := validate.Index(idx); err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 2 {
		t.Fatalf("index has %d manifests", len(im.Manifests))
	}
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		_, data := testutil.Files(t, img, "ko-app/hello")
		f, err := elf.NewFile(bytes.NewReader(data["ko-app/hello"]))
		if err != nil {
			t.Fatalf("%s: %v", d.Platform.Architecture, err)
		}
		if f.Machine != machines[d.Platform.Architecture] {
			t.Errorf("%s binary is %v", d.Platform.Architecture, f.Machine)
		}
		cf, _ := img.ConfigFile()
		if cf.Architecture != d.Platform.Architecture {
			t.Errorf("config arch %s under descriptor %s", cf.Architecture, d.Platform.Architecture)
		}
	}
}

func TestReproducible(t *testing.T) {
	plats := platform.Spec{Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}}}
	digest := func(dir, home string) string {
		out := t.TempDir()
		res := build(t, dir, testutil.GoEnv(t, home), Options{
			Platforms: plats,
			Naming:    Naming{Repo: LocalRepo},
			Publisher: &publish.ToLayout{Dir: out},
		}, "./cmd/hello")
		return res[0].Digest
	}
	a, b := t.TempDir(), filepath.Join(t.TempDir(), "elsewhere", "checkout")
	testutil.WriteFiles(t, a, testutil.HelloModule)
	testutil.WriteFiles(t, b, testutil.HelloModule)
	home1, home2 := t.TempDir(), t.TempDir()

	first := digest(a, home1)
	if again := digest(a, home1); again != first {
		t.Errorf("two runs: %s then %s", first, again)
	}
	if other := digest(b, home2); other != first {
		t.Errorf("another checkout with another HOME/GOPATH/GOCACHE: %s, want %s", other, first)
	}
}

func TestSeveralPackagesBuildConcurrently(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, testutil.HelloModule)
	testutil.WriteFiles(t, dir, map[string]string{"cmd/bye/main.go": "package main\nfunc main() {}\n"})
	out := t.TempDir()
	var progress bytes.Buffer
	res := build(t, dir, testutil.GoEnv(t, t.TempDir()), Options{
		Naming:    Naming{Repo: LocalRepo},
		Publisher: &publish.ToLayout{Dir: out},
		Progress:  &progress,
	}, "./cmd/hello", "example.com/hello/cmd/bye")
	if len(res) != 2 || res[0].ImportPath != "example.com/hello/cmd/hello" || res[1].ImportPath != "example.com/hello/cmd/bye" {
		t.Fatalf("results = %+v", res)
	}
	for _, want := range []string{"compiled", "layered", "published"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, progress.String())
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
