package cli

import (
	"bytes"
	"crypto/md5"
	"debug/buildinfo"
	"encoding/hex"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kilnbuild/kiln/internal/testutil"
)

// helloName is ko's default name for example.com/hello/cmd/hello under repo.
func helloName(repo string) string {
	const ip = "example.com/hello/cmd/hello"
	h := md5.Sum([]byte(ip))
	return repo + "/hello-" + hex.EncodeToString(h[:])
}

// TestBuildKoFlagsBadInput: each refusal of ko's flags is one line on
// stderr, exit 1, nothing on stdout, before anything compiles.
func TestBuildKoFlagsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		files map[string]string
		want  string
	}{
		{"tag-only with latest", []string{"--tag-only"}, nil, "cannot use the latest tag"},
		{"tag-only with two tags", []string{"--tag-only", "-t", "v1,v2"}, nil, "exactly one tag"},
		{"label without =", []string{"--image-label", "team"}, nil, `--image-label "team": give KEY=VALUE`},
		{"label with an empty key", []string{"--image-label", "=x"}, nil, `--image-label "=x"`},
		{"annotation without =", []string{"--image-annotation", "note"}, nil, `--image-annotation "note"`},
		{"user with a newline", []string{"--image-user", "root\nx"}, nil, "is not a user"},
		{"local with a tarball", []string{"-L", "--tarball", "x.tar"}, nil, "drop --tarball"},
		{"local with an output", []string{"--local", "-o", "oci:out"}, nil, "drop --output"},
		{"local with push=false", []string{"-L", "--push=false"}, nil, "drop --push=false"},
		{"tarball with --remote", []string{"--remote", "http://127.0.0.1:1", "--tarball", "x.tar"}, nil, "--tarball does not go with --remote"},
		{"image-refs with --remote", []string{"--remote", "http://127.0.0.1:1", "--image-refs", "refs.txt"}, nil, "--image-refs does not go with --remote"},
		{"tarball directory missing", []string{"--push=false", "--tarball", "missing/x.tar"}, nil, "not writable"},
		{"unknown sbom kind", []string{"--sbom", "xml"}, nil, `--sbom "xml": unknown SBOM kind: use spdx, cyclonedx, go.version-m or none`},
		{"sbom kind in capitals", []string{"--sbom", "SPDX"}, nil, `--sbom "SPDX"`},
		{"sbom-dir not writable", []string{"--sbom-dir", "file.txt/sboms"}, map[string]string{"file.txt": "x"}, "--sbom-dir file.txt/sboms: "},
		{"sbom-dir with --remote", []string{"--remote", "http://127.0.0.1:1", "--sbom-dir", "sboms"}, nil, "--sbom-dir does not go with --remote"},
		{"debug on no platform Delve runs on", []string{"--debug", "--platform", "linux/s390x,linux/arm/v7"}, nil, "--debug: Delve runs on linux/amd64 and linux/arm64 only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			testutil.WriteFiles(t, dir, testutil.HelloModule)
			testutil.WriteFiles(t, dir, tc.files)
			args := append(append([]string{"build"}, tc.args...), "./cmd/hello")
			code, stdout, stderr := kiln(t, dir, testEnv(t), args...)
			badInput(t, code, stdout, stderr, tc.want)
		})
	}
}

func needsCompile(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("compiles: not in -short")
	}
}

// koBuild runs kiln build on the hello module with a scratch base for
// linux/amd64 (unless args say otherwise), with env added, and returns
// stdout and stderr; it fails the test unless kiln exits 0.
func koBuild(t *testing.T, dir string, env []string, args ...string) (string, string) {
	t.Helper()
	full := append([]string{"build", "--base", "scratch"}, args...)
	if !slices.Contains(args, "--platform") {
		full = append(full, "--platform", "linux/amd64")
	}
	code, stdout, stderr := kiln(t, dir, append(fastEnv(t), env...), append(full, "./cmd/hello")...)
	if code != 0 {
		t.Fatalf("kiln %v: exit %d\n%s", full, code, stderr)
	}
	return strings.TrimSpace(stdout), stderr
}

// fastEnv is testEnv with the host's Go build cache, so that a test that
// builds many times does not compile the runtime each time.
func fastEnv(t *testing.T) []string {
	t.Helper()
	home := t.TempDir()
	return append(testutil.HermeticGoEnv(t), "GOFLAGS=-modcacherw",
		"KILN_STORE="+filepath.Join(home, "store"), "KILN_CACHE="+filepath.Join(home, "cache"),
		"KO_DOCKER_REPO=", "KO_CONFIG_PATH=", "KO_DEFAULTBASEIMAGE=")
}

func helloDir(t *testing.T) string {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, testutil.HelloModule)
	return dir
}

var digestRE = `sha256:[0-9a-f]{64}`

// TestBuildPushFalse: --push=false writes nothing and prints ko's
// REPO:TAG@DIGEST; with --tarball it writes the docker archive, tagged.
func TestBuildPushFalse(t *testing.T) {
	needsCompile(t)
	dir := helloDir(t)
	store := filepath.Join(t.TempDir(), "store")
	env := []string{"KILN_STORE=" + store}

	ref, _ := koBuild(t, dir, env, "--push=false")
	if !regexp.MustCompile("^" + regexp.QuoteMeta(helloName("kiln.local")+":latest@") + digestRE + "$").MatchString(ref) {
		t.Errorf("--push=false printed %q, want %s:latest@sha256:…", ref, helloName("kiln.local"))
	}
	if _, err := os.Stat(store); err == nil {
		t.Errorf("--push=false wrote the store %s", store)
	}

	tb := filepath.Join(t.TempDir(), "images.tar")
	ref, _ = koBuild(t, dir, env, "--push=false", "--tarball", tb, "-t", "v1")
	if !regexp.MustCompile("^" + regexp.QuoteMeta(helloName("kiln.local")+":v1@") + digestRE + "$").MatchString(ref) {
		t.Errorf("--push=false --tarball -t v1 printed %q", ref)
	}
	tag, _ := name.NewTag(helloName("kiln.local") + ":v1")
	img, err := tarball.ImageFromPath(tb, &tag)
	if err != nil {
		t.Fatalf("the tarball has no %s: %v", tag, err)
	}
	if err := validate.Image(img); err != nil {
		t.Error(err)
	}
	// A docker archive holds Docker media types, so the digest differs
	// from the OCI image's; the image is the program's.
	if cf, err := img.ConfigFile(); err != nil || !slices.Equal(cf.Config.Entrypoint, []string{"/ko-app/hello"}) {
		t.Errorf("tarball image config: %v, %v", cf, err)
	}
	if _, err := os.Stat(store); err == nil {
		t.Errorf("--push=false --tarball wrote the store %s", store)
	}
}

// TestBuildKoPublishFlags: --tag-only, --oci-layout-path, --image-refs,
// the --tag alias and the image flags, against a loopback registry.
func TestBuildKoPublishFlags(t *testing.T) {
	needsCompile(t)
	dir := helloDir(t)
	reg := testutil.Registry(t)
	env := []string{"KO_DOCKER_REPO=" + reg + "/team"}
	repo := helloName(reg + "/team")

	t.Run("tag-only", func(t *testing.T) {
		ref, _ := koBuild(t, dir, env, "--tag-only", "-t", "v1")
		if ref != repo+":v1" {
			t.Fatalf("--tag-only printed %q, want %s:v1", ref, repo)
		}
		if _, err := remote.Head(mustRef(t, ref)); err != nil {
			t.Errorf("the tag was not pushed: %v", err)
		}
	})
	t.Run("tag alias and one release tag", func(t *testing.T) {
		ref, _ := koBuild(t, dir, env, "--tag", "v2")
		if !regexp.MustCompile("^" + regexp.QuoteMeta(repo+":v2@") + digestRE + "$").MatchString(ref) {
			t.Errorf("--tag v2 printed %q, want %s:v2@sha256:…", ref, repo)
		}
	})
	t.Run("oci-layout-path and image-refs for an index", func(t *testing.T) {
		lay := filepath.Join(t.TempDir(), "lay")
		refs := filepath.Join(t.TempDir(), "refs.txt")
		ref, _ := koBuild(t, dir, env, "--oci-layout-path", lay, "--image-refs", refs, "--platform", "linux/amd64,linux/arm64")
		d, err := name.NewDigest(ref)
		if err != nil {
			t.Fatalf("printed %q: %v", ref, err)
		}
		idx, err := remote.Index(d)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := idx.IndexManifest()
		want := []string{repo + "@" + d.DigestStr()}
		for _, desc := range m.Manifests {
			want = append(want, repo+"@"+desc.Digest.String())
		}
		got, err := os.ReadFile(refs)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != strings.Join(want, "\n")+"\n" {
			t.Errorf("--image-refs wrote\n%s\nwant\n%s", got, strings.Join(want, "\n"))
		}
		lp, err := layout.FromPath(lay)
		if err != nil {
			t.Fatalf("--oci-layout-path wrote no layout: %v", err)
		}
		h, _ := v1.NewHash(d.DigestStr())
		if _, err := lp.ImageIndex(); err != nil {
			t.Fatal(err)
		}
		li, _ := lp.ImageIndex()
		if _, err := li.ImageIndex(h); err != nil {
			t.Errorf("the layout lacks %s: %v", h, err)
		}
	})
	t.Run("image label, annotation, user over the config", func(t *testing.T) {
		d := helloDir(t)
		testutil.WriteFiles(t, d, map[string]string{".ko.yaml": "kiln:\n  defaults:\n    user: \"1000\"\n    labels: {team: config, keep: k}\n"})
		refs := filepath.Join(t.TempDir(), "refs.txt")
		ref, _ := koBuild(t, d, env, "--image-label", "team=flag,extra=e", "--image-annotation", "note=n", "--image-user", "65532:65532", "--image-refs", refs)
		img, err := remote.Image(mustRef(t, ref))
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := img.ConfigFile()
		if cf.Config.User != "65532:65532" || cf.Config.Labels["team"] != "flag" || cf.Config.Labels["extra"] != "e" || cf.Config.Labels["keep"] != "k" {
			t.Errorf("config user %q labels %v: want the flags over .ko.yaml's", cf.Config.User, cf.Config.Labels)
		}
		m, _ := img.Manifest()
		if m.Annotations["note"] != "n" {
			t.Errorf("manifest annotations %v lack note=n", m.Annotations)
		}
		if got, _ := os.ReadFile(refs); string(got) != ref+"\n" {
			t.Errorf("--image-refs wrote %q, want %q", got, ref+"\n")
		}
	})
	t.Run("disable-optimizations", func(t *testing.T) {
		ref, _ := koBuild(t, dir, env, "--disable-optimizations", "-t", "debug")
		img, err := remote.Image(mustRef(t, ref))
		if err != nil {
			t.Fatal(err)
		}
		_, files := testutil.Files(t, img, "ko-app/hello")
		info, err := buildinfo.Read(bytes.NewReader(files["ko-app/hello"]))
		if err != nil {
			t.Fatal(err)
		}
		var gcflags string
		for _, s := range info.Settings {
			if s.Key == "-gcflags" {
				gcflags = s.Value
			}
		}
		if gcflags != "all=-N -l" {
			t.Errorf("binary built with -gcflags=%q, want all=-N -l", gcflags)
		}
	})
	t.Run("verbose", func(t *testing.T) {
		_, stderr := koBuild(t, dir, env, "-v", "-t", "verbose")
		if !strings.Contains(stderr, "--> PUT") && !strings.Contains(stderr, "--> HEAD") {
			t.Errorf("-v logged no registry calls:\n%s", stderr)
		}
	})
}

// TestBuildInsecureRegistry: a push to a registry whose certificate no
// one trusts fails, and works with --insecure-registry.
func TestBuildInsecureRegistry(t *testing.T) {
	needsCompile(t)
	srv := httptest.NewUnstartedServer(testutil.QuietRegistry())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	defer srv.Close()
	reg := strings.TrimPrefix(srv.URL, "https://")
	dir := helloDir(t)
	env := append(fastEnv(t), "KO_DOCKER_REPO="+reg+"/team")
	code, stdout, stderr := kiln(t, dir, env, "build", "--base", "scratch", "--platform", "linux/amd64", "./cmd/hello")
	if code != 1 || stdout != "" {
		t.Fatalf("a push to an untrusted registry: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	ref, _ := koBuild(t, dir, []string{"KO_DOCKER_REPO=" + reg + "/team"}, "--insecure-registry")
	if !strings.HasPrefix(ref, helloName(reg+"/team")+"@sha256:") {
		t.Errorf("--insecure-registry printed %q", ref)
	}
}

// TestKoRef: how each flag combination prints a reference, as ko does.
func TestKoRef(t *testing.T) {
	const repo, dig = "r.example/app", "sha256:abcd"
	for _, tc := range []struct {
		k         koFlags
		tags      []string
		published bool
		want      string
	}{
		{koFlags{}, []string{"latest"}, true, repo + "@" + dig},
		{koFlags{}, []string{"v1"}, true, repo + ":v1@" + dig},
		{koFlags{}, []string{"v1", "v2"}, true, repo + "@" + dig},
		{koFlags{}, []string{"latest"}, false, repo + ":latest@" + dig},
		{koFlags{tagOnly: true}, []string{"v1"}, true, repo + ":v1"},
		{koFlags{tagOnly: true}, []string{"v1"}, false, repo + ":v1"},
		{koFlags{local: true}, []string{"latest"}, true, repo + ":abcd"},
	} {
		if got := tc.k.ref(repo, dig, tc.tags, tc.published); got != tc.want {
			t.Errorf("%+v tags %v published %v: %q, want %q", tc.k, tc.tags, tc.published, got, tc.want)
		}
	}
}

func TestPrintVersion(t *testing.T) {
	var b bytes.Buffer
	printVersion(&b, &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "true"}, {Key: "vcs.time", Value: "2026-11-30T00:00:00Z"},
	}})
	want := "v1.2.3\ngo: go1.26.8\nrevision: 0123abcd (modified)\ntime: 2026-11-30T00:00:00Z\n"
	if b.String() != want {
		t.Errorf("printVersion:\n%s\nwant\n%s", b.String(), want)
	}
	code, stdout, _ := kiln(t, t.TempDir(), nil, "version")
	if code != 0 || !strings.Contains(stdout, "go: go1.") {
		t.Errorf("kiln version: exit %d, %q", code, stdout)
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatalf("printed %q: %v", s, err)
	}
	return r
}

// TestBuildLocal: -L loads the image into podman as REPO:HEX and its
// tags, and prints REPO:HEX, as ko --local does.
func TestBuildLocal(t *testing.T) {
	needsCompile(t)
	podman := testutil.RequireTool(t, "podman")
	dir := helloDir(t)
	repo := "ko.local/kiln-koflags-test"
	ref, _ := koBuild(t, dir, []string{"KO_DOCKER_REPO=" + repo}, "-L", "-t", "koflags")
	if !regexp.MustCompile("^" + regexp.QuoteMeta(helloName(repo)+":") + "[0-9a-f]{64}$").MatchString(ref) {
		t.Fatalf("-L printed %q, want %s:<hex>", ref, helloName(repo))
	}
	t.Cleanup(func() { exec.Command(podman, "rmi", "-f", ref, helloName(repo)+":koflags").Run() })
	for _, img := range []string{ref, helloName(repo) + ":koflags"} {
		if out, err := exec.Command(podman, "image", "exists", img).CombinedOutput(); err != nil {
			t.Errorf("podman has no %s: %v %s", img, err, out)
		}
	}
}
