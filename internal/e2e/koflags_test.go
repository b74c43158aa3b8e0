package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kilnbuild/kiln/internal/cli"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// koDiff runs the real ko and kiln on the same module with the same flags,
// each publishing under its own repository of one loopback registry.
type koDiff struct {
	t        *testing.T
	ko       string
	dir      string
	reg      string
	baseRef  string
	goEnv    []string
	koRepo   string
	kilnRepo string
}

func newKoDiff(t *testing.T) *koDiff {
	t.Helper()
	ko := testutil.RequireTool(t, "ko")
	reg := testutil.Registry(t)
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, testutil.HelloModule)
	return &koDiff{t: t, ko: ko, dir: dir, reg: reg, baseRef: pushStaticBase(t, reg), goEnv: testutil.HermeticGoEnv(t),
		koRepo: reg + "/ko", kilnRepo: reg + "/kiln"}
}

// env is the environment both tools get: the same Go, base and epoch,
// and KO_DOCKER_REPO set to repo.
func (d *koDiff) env(repo string) []string {
	return append(slices.Clone(d.goEnv), "GOFLAGS=-modcacherw", "KO_DOCKER_REPO="+repo, "KO_DEFAULTBASEIMAGE="+d.baseRef,
		"KO_CONFIG_PATH=", "SOURCE_DATE_EPOCH=1700000000", "KILN_STORE="+d.t.TempDir(), "KILN_CACHE="+d.t.TempDir())
}

// run runs ko build and kiln build with args (files named with {out}
// land in a directory of each tool's own) and returns what each printed,
// with its repository replaced by REPO, and each tool's output directory.
func (d *koDiff) run(args ...string) (koOut, kilnOut, koDir, kilnDir string) {
	t := d.t
	t.Helper()
	koDir, kilnDir = t.TempDir(), t.TempDir()
	with := func(dir string) []string {
		out := make([]string, len(args))
		for i, a := range args {
			out[i] = strings.ReplaceAll(a, "{out}", dir)
		}
		return out
	}
	cmd := exec.Command(d.ko, append(append([]string{"build"}, with(koDir)...), "./cmd/hello")...)
	cmd.Dir, cmd.Env = d.dir, d.env(d.koRepo)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ko build %v: %v\n%s", args, err, stderr.String())
	}
	var kout, kerr bytes.Buffer
	code := cli.Run(context.Background(), cli.Invocation{Args: append(append([]string{"build"}, with(kilnDir)...), "./cmd/hello"),
		Env: d.env(d.kilnRepo), Dir: d.dir, Stdout: &kout, Stderr: &kerr})
	if code != 0 {
		t.Fatalf("kiln build %v: exit %d\n%s", args, code, kerr.String())
	}
	return d.generic(stdout.String(), d.koRepo), d.generic(kout.String(), d.kilnRepo), koDir, kilnDir
}

var anyDigest = regexp.MustCompile(`sha256:[0-9a-f]{64}`)

// generic is s with repo replaced by REPO and digests by DIGEST.
func (d *koDiff) generic(s, repo string) string {
	return anyDigest.ReplaceAllString(strings.ReplaceAll(strings.TrimSpace(s), repo, "REPO"), "DIGEST")
}

// koConfig is what both tools must agree on in an image.
type koConfig struct {
	Entrypoint, Env []string
	User            string
	Labels          map[string]string
	Annotations     map[string]string
}

func (d *koDiff) config(ref string) koConfig {
	d.t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		d.t.Fatalf("%q: %v", ref, err)
	}
	img, err := remote.Image(r)
	if err != nil {
		d.t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		d.t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		d.t.Fatal(err)
	}
	return koConfig{Entrypoint: cf.Config.Entrypoint, Env: cf.Config.Env, User: cf.Config.User, Labels: cf.Config.Labels, Annotations: m.Annotations}
}

// TestKoFlagsDifferential: kiln build names, tags and configures images as
// the real ko v0.19.1 does for ko's publishing and image flags.
func TestKoFlagsDifferential(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: not in -short")
	}
	d := newKoDiff(t)

	t.Run("tag-only", func(t *testing.T) {
		ko, kiln, _, _ := d.run("--tag-only", "-t", "v1", "--platform", "linux/amd64")
		if ko != kiln || !strings.HasSuffix(ko, ":v1") {
			t.Errorf("--tag-only: ko printed %q, kiln %q", ko, kiln)
		}
	})
	t.Run("tag-only with several platforms", func(t *testing.T) {
		// ko v0.19.1 does not refuse this: it pushes the index under the
		// tag and prints REPO:TAG. kiln does the same.
		ko, kiln, _, _ := d.run("--tag-only", "-t", "v2", "--platform", "linux/amd64,linux/arm64")
		if ko != kiln || !strings.HasSuffix(ko, ":v2") {
			t.Errorf("--tag-only with two platforms: ko printed %q, kiln %q", ko, kiln)
		}
	})
	t.Run("push=false with a tarball", func(t *testing.T) {
		ko, kiln, koDir, kilnDir := d.run("--push=false", "--tarball", "{out}/images.tar", "-t", "v1", "--platform", "linux/amd64")
		if ko != kiln {
			t.Errorf("--push=false --tarball: ko printed %q, kiln %q", ko, kiln)
		}
		koTags, kilnTags := repoTags(t, filepath.Join(koDir, "images.tar"), d.koRepo), repoTags(t, filepath.Join(kilnDir, "images.tar"), d.kilnRepo)
		if !reflect.DeepEqual(koTags, kilnTags) {
			t.Errorf("tarball RepoTags: ko %v, kiln %v", koTags, kilnTags)
		}
	})
	t.Run("image-refs", func(t *testing.T) {
		for _, platforms := range []string{"linux/amd64", "linux/amd64,linux/arm64"} {
			_, _, koDir, kilnDir := d.run("--image-refs", "{out}/refs.txt", "--platform", platforms)
			ko, kiln := d.readGeneric(filepath.Join(koDir, "refs.txt"), d.koRepo), d.readGeneric(filepath.Join(kilnDir, "refs.txt"), d.kilnRepo)
			if ko != kiln {
				t.Errorf("--image-refs for %s: ko wrote\n%s\nkiln wrote\n%s", platforms, ko, kiln)
			}
		}
	})
	t.Run("image label, annotation and user", func(t *testing.T) {
		args := []string{"--image-label", "team=payments,tier=web", "--image-annotation", "note=hello", "--image-user", "1234:1234", "-t", "cfg", "--platform", "linux/amd64"}
		d.run(args...)
		ko, kiln := d.config(d.koRepo+"/"+helloName()+":cfg"), d.config(d.kilnRepo+"/"+helloName()+":cfg")
		// From an index base, both record the platform image's digest
		// as the base digest of a single-platform image.
		if !reflect.DeepEqual(ko, kiln) {
			t.Errorf("image config:\nko   %+v\nkiln %+v", ko, kiln)
		}
		if ko.User != "1234:1234" || ko.Labels["team"] != "payments" || ko.Annotations["note"] != "hello" {
			t.Errorf("ko did not apply the flags: %+v", ko)
		}
	})
}

// helloName is the image name both tools give example.com/hello/cmd/hello.
func helloName() string { return "hello-20224deb52929e35ecb74c0e57f6ee11" }

func (d *koDiff) readGeneric(file, repo string) string {
	d.t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		d.t.Fatal(err)
	}
	return d.generic(string(b), repo)
}

// repoTags are the RepoTags of a docker archive's manifest.json, with
// repo replaced by REPO, sorted.
func repoTags(t *testing.T, file, repo string) []string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("%s has no manifest.json", file)
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name != "manifest.json" {
			continue
		}
		var m []struct{ RepoTags []string }
		if err := json.NewDecoder(tr).Decode(&m); err != nil {
			t.Fatal(err)
		}
		var tags []string
		for _, e := range m {
			for _, tag := range e.RepoTags {
				tags = append(tags, strings.ReplaceAll(tag, repo, "REPO"))
			}
		}
		slices.Sort(tags)
		return tags
	}
}
