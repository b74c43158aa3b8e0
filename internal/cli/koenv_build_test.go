package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	specs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kilnbuild/kiln/internal/testutil"
)

// layoutImage is the one image in the OCI layout dir besides the SBOM
// kiln attaches by default (at cosign's sha256-HEX.sbom tag), validated.
func layoutImage(t *testing.T, dir string) v1.Image {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var built []v1.Descriptor
	for _, d := range m.Manifests {
		if !strings.HasSuffix(d.Annotations[specs.AnnotationRefName], ".sbom") {
			built = append(built, d)
		}
	}
	if len(built) != 1 {
		t.Fatalf("layout %s: %d manifests besides SBOMs, want 1", dir, len(built))
	}
	img, err := idx.Image(built[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatal(err)
	}
	return img
}

// TestKoEnvBuild: one build under ko's environment. GOOS/GOARCH choose the
// platform, KO_DATA_DATE_EPOCH dates kodata (only), a kodata symlink out
// of the module into KO_DATA_PATH_ALLOWED_ROOT is followed, KOCACHE is the
// cache, and KO_GO_PATH is the go command that runs.
func TestKoEnvBuild(t *testing.T) {
	needsCompile(t)
	top := t.TempDir()
	mod := filepath.Join(top, "mod")
	testutil.WriteFiles(t, mod, testutil.HelloModule)
	testutil.WriteFiles(t, top, map[string]string{"shared/LICENSE": "shared license"})
	if err := os.Symlink("../../../../shared/LICENSE", filepath.Join(mod, "cmd/hello/kodata/LICENSE")); err != nil {
		t.Fatal(err)
	}
	realGo, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	goLog := filepath.Join(top, "go.log")
	wrapper := filepath.Join(top, "bin", "mygo")
	testutil.WriteFiles(t, top, map[string]string{"bin/mygo": "#!/bin/sh\necho \"$1\" >> " + goLog + "\nexec " + realGo + " \"$@\"\n"})
	if err := os.Chmod(wrapper, 0o755); err != nil {
		t.Fatal(err)
	}
	kocache := filepath.Join(top, "kocache")
	out := filepath.Join(top, "out")
	env := append(fastEnv(t), "KILN_CACHE=", "KOCACHE="+kocache, "GOOS=linux", "GOARCH=arm64",
		"KO_DATA_DATE_EPOCH=1700000000", "KO_DATA_PATH_ALLOWED_ROOT="+top, "KO_GO_PATH="+wrapper)
	code, _, stderr := kiln(t, mod, env, "build", "--base", "scratch", "-o", "oci:"+out, "./cmd/hello")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	img := layoutImage(t, out)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "arm64" {
		t.Errorf("built %s/%s, want linux/arm64 from GOOS/GOARCH", cf.OS, cf.Architecture)
	}
	hdrs, data := testutil.Files(t, img, "var/run/ko/LICENSE")
	if string(data["var/run/ko/LICENSE"]) != "shared license" {
		t.Errorf("kodata LICENSE = %q, want the file in the allowed root", data["var/run/ko/LICENSE"])
	}
	for p, want := range map[string]time.Time{"var/run/ko/greeting.txt": time.Unix(1700000000, 0), "var/run/ko/LICENSE": time.Unix(1700000000, 0), "ko-app/hello": time.Unix(0, 0)} {
		if h := hdrs[p]; h == nil || !h.ModTime.Equal(want) {
			t.Errorf("%s: header %+v, want mtime %s", p, h, want.UTC())
		}
	}
	if es, err := os.ReadDir(kocache); err != nil || len(es) == 0 {
		t.Errorf("KOCACHE %s holds %v (%v), want the cache", kocache, es, err)
	}
	if log, _ := os.ReadFile(goLog); !strings.Contains(string(log), "build") {
		t.Errorf("KO_GO_PATH ran %q, want a build", log)
	}
}

// TestKindLocal: KO_DOCKER_REPO=kind.local runs `kind load image-archive
// FILE --name $KIND_CLUSTER_NAME` (a stand-in kind on the recorded PATH),
// with an archive ggcr reads, named REPO:HEX and tagged, and prints
// REPO:HEX, as ko does. Two platforms: the linux/amd64 image is loaded.
func TestKindLocal(t *testing.T) {
	needsCompile(t)
	dir := helloDir(t)
	bin, rec := t.TempDir(), t.TempDir()
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + rec + "/args\ncp \"$3\" " + rec + "/loaded.tar || exit 9\n"
	if err := os.WriteFile(filepath.Join(bin, "kind"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(fastEnv(t), "KO_DOCKER_REPO=kind.local", "KIND_CLUSTER_NAME=dev", "PATH="+bin+string(filepath.ListSeparator)+os.Getenv("PATH"))
	ref, _ := koBuild(t, dir, env, "--platform", "linux/amd64,linux/arm64", "-t", "v1,latest")
	repo := helloName("kind.local")
	if !regexp.MustCompile("^" + regexp.QuoteMeta(repo+":") + "[0-9a-f]{64}$").MatchString(ref) {
		t.Fatalf("printed %q, want %s:<hex>", ref, repo)
	}
	raw, err := os.ReadFile(filepath.Join(rec, "args"))
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Fields(string(raw))
	if len(args) != 5 || args[0] != "load" || args[1] != "image-archive" || args[3] != "--name" || args[4] != "dev" {
		t.Fatalf("kind ran with %q", args)
	}
	var first v1.Hash
	for i, s := range []string{ref, repo + ":v1", repo + ":latest"} {
		tag, err := name.NewTag(s)
		if err != nil {
			t.Fatal(err)
		}
		img, err := tarball.ImageFromPath(filepath.Join(rec, "loaded.tar"), &tag)
		if err != nil {
			t.Fatalf("%s in the archive: %v", s, err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Architecture != "amd64" {
			t.Errorf("%s is %s, want the amd64 image", s, cf.Architecture)
		}
		h, _ := img.ConfigName()
		if i == 0 {
			first = h
		} else if h != first {
			t.Errorf("%s is config %s, %s is %s", s, h, ref, first)
		}
	}
}

// TestKoLocalPodman: KO_DOCKER_REPO=ko.local/sub loads into podman as
// REPO:HEX and its tags; a ko.local/… base is read back out of podman.
func TestKoLocalPodman(t *testing.T) {
	needsCompile(t)
	podman := testutil.RequireTool(t, "podman")
	storage := []string{testutil.PodmanStorage(t)}
	dir := helloDir(t)
	env := append(append(fastEnv(t), storage...), "KO_DOCKER_REPO=ko.local/sub")
	ref, _ := koBuild(t, dir, env, "-t", "v1")
	repo := helloName("ko.local/sub")
	if !regexp.MustCompile("^" + regexp.QuoteMeta(repo+":") + "[0-9a-f]{64}$").MatchString(ref) {
		t.Fatalf("printed %q, want %s:<hex>", ref, repo)
	}
	pm := func(args ...string) string {
		cmd := exec.Command(podman, args...)
		cmd.Env = append(os.Environ(), storage...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("podman %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	for _, s := range []string{ref, repo + ":v1"} {
		pm("image", "exists", s)
	}

	// A base with a file of its own, loaded into podman as ko.local/base:v1.
	l, err := crane.Layer(map[string][]byte{"etc/base.txt": []byte("from podman")})
	if err != nil {
		t.Fatal(err)
	}
	base, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := base.ConfigFile()
	cf.OS, cf.Architecture = "linux", "amd64"
	base, _ = mutate.ConfigFile(base, cf)
	tag, _ := name.NewTag("ko.local/base:v1")
	archive := filepath.Join(t.TempDir(), "base.tar")
	if err := tarball.WriteToFile(archive, tag, base); err != nil {
		t.Fatal(err)
	}
	pm("load", "-i", archive)

	out := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := kiln(t, dir, append(append(fastEnv(t), storage...), "KO_DEFAULTBASEIMAGE=ko.local/base:v1"),
		"build", "--platform", "linux/amd64", "--json", "-o", "oci:"+out, "./cmd/hello")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var res []struct{ Base, BaseDigest string }
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || len(res) != 1 || res[0].Base != "ko.local/base:v1" || res[0].BaseDigest == "" {
		t.Errorf("results %s (%v), want base ko.local/base:v1 with its digest", stdout, err)
	}
	_, data := testutil.Files(t, layoutImage(t, out), "etc/base.txt")
	if string(data["etc/base.txt"]) != "from podman" {
		t.Errorf("etc/base.txt = %q, want the podman base's file", data["etc/base.txt"])
	}

	code, _, stderr = kiln(t, dir, append(append(fastEnv(t), storage...), "KO_DEFAULTBASEIMAGE=ko.local/missing:v1"),
		"build", "--platform", "linux/amd64", "-o", "oci:"+t.TempDir(), "./cmd/hello")
	if code != 1 || !strings.Contains(stderr, `base image "ko.local/missing:v1"`) {
		t.Errorf("missing ko.local base: exit %d, %s", code, stderr)
	}
}
