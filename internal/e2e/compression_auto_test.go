package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/request"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// TestCompressionAuto builds with --compression auto to each destination
// kind: the binary's layer is uncompressed where the destination is on this
// machine and gzip where it is a file to carry; every image reads back,
// validates, and has the same digest on a second build. The image pushed
// uncompressed to a loopback registry is then copied to another registry,
// and crane and podman pull it from there (podman also runs it).
func TestCompressionAuto(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles with the real go command")
	}
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, testutil.HelloModule)
	store := t.TempDir()
	env := append(kilnEnv(t), "KILN_STORE="+store)
	reg := testutil.Registry(t)
	out := t.TempDir()
	var pushed string // the loopback registry's ref, copied below
	for _, tc := range []struct {
		name, output string
		gzip         bool
		read         func(t *testing.T, ref string) v1.Image
	}{
		{"the local store", "", false, func(t *testing.T, ref string) v1.Image { return imageInLayout(t, store, ref) }},
		{"oci:", "oci:" + out + "/layout", false, func(t *testing.T, ref string) v1.Image { return imageInLayout(t, out+"/layout", ref) }},
		{"loopback registry", reg + "/hello", false, imageInRegistry},
		{"oci-archive:", "oci-archive:" + out + "/oci.tar", true, func(t *testing.T, ref string) v1.Image {
			return imageInLayout(t, untarToDir(t, out+"/oci.tar"), ref)
		}},
		{"docker-archive:", "docker-archive:" + out + "/docker.tar", true, func(t *testing.T, _ string) v1.Image {
			img, err := tarball.ImageFromPath(out+"/docker.tar", nil)
			if err != nil {
				t.Fatal(err)
			}
			return img // its manifest is the archive's (Docker media types): no digest to compare
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"build", "--bare", "--compression", "auto", "./cmd/hello"}
			if tc.output != "" {
				args = append(args, "--output", tc.output)
			}
			first := kiln(t, dir, env, args...)
			second := kiln(t, dir, env, args...)
			if first != second {
				t.Fatalf("a second build gave %s, the first %s", second, first)
			}
			img := tc.read(t, first)
			if tc.output != "" && strings.HasPrefix(tc.output, "docker-archive:") {
				validateAnyLayers(t, img, "")
			} else {
				validateAnyLayers(t, img, first)
			}
			if got := binaryLayerIsGzip(t, img); got != tc.gzip {
				t.Errorf("binary layer gzip = %v, want %v", got, tc.gzip)
			}
			if tc.name == "loopback registry" {
				pushed = first
			}
		})
	}

	t.Run("copied to another registry, pulled by crane and podman", func(t *testing.T) {
		if pushed == "" {
			t.Fatal("nothing to copy: the push to the loopback registry failed (see the subtest above)")
		}
		crane := testutil.RequireTool(t, "crane")
		dst := testutil.Registry(t) + "/copied/hello:v1"
		runTool(t, crane, "copy", pushed, dst)
		pulled := t.TempDir()
		runTool(t, crane, "pull", "--format", "oci", dst, pulled)
		validateAnyLayers(t, imageInLayout(t, pulled, pushed), pushed)

		testutil.RequireTool(t, "podman")
		testutil.RequireTool(t, "runc")
		podman(t, "pull", "--tls-verify=false", dst)
		t.Cleanup(func() { exec.Command("podman", "rmi", "-f", dst).Run() })
		if got := podman(t, runFlags(dst)...); !strings.Contains(got, "hello dev") {
			t.Errorf("podman run %s printed %q, want hello dev", dst, got)
		}
	})

	// --load hands podman a docker archive of the uncompressed layers.
	t.Run("--load", func(t *testing.T) {
		testutil.RequireTool(t, "podman")
		testutil.RequireTool(t, "runc")
		loaded := "kiln.local/compression-auto:e2e"
		kiln(t, dir, env, "build", "--bare", "--compression", "auto", "--load", "--output", "kiln.local/compression-auto", "--tags", "e2e", "--push=false", "./cmd/hello")
		t.Cleanup(func() { exec.Command("podman", "rmi", "-f", loaded).Run() })
		if got := podman(t, runFlags(loaded)...); !strings.Contains(got, "hello dev") {
			t.Errorf("podman run %s printed %q, want hello dev", loaded, got)
		}
	})
}

// TestCompressionAutoFarRegistry: a registry named by a host that is not a
// loopback address gets gzip layers. The name is carried to a loopback test
// registry by the transport, as a registry elsewhere would receive it.
func TestCompressionAutoFarRegistry(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles with the real go command")
	}
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, testutil.HelloModule)
	reg := testutil.Registry(t)
	tr := &redirectTransport{to: reg}
	repo := "kiln.test/hello"
	build := func() string {
		outs, err := request.Run(context.Background(), request.Env{
			Dir: dir, Env: testutil.HermeticGoEnv(t), Publisher: &publish.ToRegistry{Repo: repo, Transport: tr}, Repo: repo,
			CacheDir: filepath.Join(dir, ".cache"), Transport: tr,
		}, request.Build{Packages: []string{"./cmd/hello"}, Bare: true, Compression: "auto"})
		if err != nil {
			t.Fatal(err)
		}
		return outs[0].Digest
	}
	first, second := build(), build()
	if first != second {
		t.Fatalf("a second build gave %s, the first %s", second, first)
	}
	img, err := remote.Image(mustRef(t, reg+"/hello@"+first))
	if err != nil {
		t.Fatal(err)
	}
	validateAnyLayers(t, img, reg+"/hello@"+first)
	if !binaryLayerIsGzip(t, img) {
		t.Error("the binary layer pushed to kiln.test is not gzip")
	}
}

// redirectTransport sends every registry call to the loopback registry at to, over
// plain http, whatever host the request names.
type redirectTransport struct{ to string }

func (r *redirectTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.URL.Scheme, req.URL.Host = "http", r.to
	return http.DefaultTransport.RoundTrip(req)
}

func imageInRegistry(t *testing.T, ref string) v1.Image {
	t.Helper()
	img, err := remote.Image(mustRef(t, ref))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// imageInLayout is the image of ref's digest in the OCI layout at dir.
func imageInLayout(t *testing.T, dir, ref string) v1.Image {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, hex, _ := strings.Cut(ref, "@")
	h, err := v1.NewHash(hex)
	if err != nil {
		t.Fatal(err)
	}
	img, err := p.Image(h)
	if err != nil {
		t.Fatalf("image %s in %s: %v", h, dir, err)
	}
	return img
}

// validateAnyLayers validates img with ggcr, and when want (a ref with a digest)
// is given, that img has its digest. ggcr's validate gunzips every layer,
// so an image with uncompressed layers gets its fast form (manifest,
// config, layers present) and each uncompressed layer the same checks by
// hand: its digest, diffID and size are its bytes', and it reads as a tar.
func validateAnyLayers(t *testing.T, img v1.Image, want string) {
	t.Helper()
	if want != "" {
		_, hex, _ := strings.Cut(want, "@")
		if d, _ := img.Digest(); d.String() != hex {
			t.Errorf("read back %s, want %s", d, hex)
		}
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var uncompressed []v1.Layer
	for _, l := range layers {
		if mt, _ := l.MediaType(); mt == types.OCIUncompressedLayer || mt == types.DockerUncompressedLayer {
			uncompressed = append(uncompressed, l)
		}
	}
	if len(uncompressed) == 0 {
		if err := validate.Image(img); err != nil {
			t.Fatalf("validate.Image: %v", err)
		}
		return
	}
	if err := validate.Image(img, validate.Fast); err != nil {
		t.Fatalf("validate.Image (fast): %v", err)
	}
	for _, l := range uncompressed {
		raw := testutil.ReadAll(t, l.Compressed)
		sum := sha256.Sum256(raw)
		d, _ := l.Digest()
		diffID, _ := l.DiffID()
		size, _ := l.Size()
		if d.Hex != hex.EncodeToString(sum[:]) || diffID != d || size != int64(len(raw)) {
			t.Errorf("uncompressed layer %s: diffID %s, size %d; its bytes: sha256:%x, %d bytes", d, diffID, size, sum, len(raw))
		}
		tr := tar.NewReader(bytes.NewReader(raw))
		for {
			if _, err := tr.Next(); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("uncompressed layer %s is not a tar: %v", d, err)
			}
		}
	}
	testutil.Files(t, img, "ko-app/hello")
}

// binaryLayerIsGzip reports whether the last layer (the binary's) is gzip;
// otherwise it must be a plain tar.
func binaryLayerIsGzip(t *testing.T, img v1.Image) bool {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	raw := testutil.ReadAll(t, layers[len(layers)-1].Compressed)
	if bytes.HasPrefix(raw, []byte{0x1f, 0x8b}) {
		return true
	}
	if _, err := tar.NewReader(bytes.NewReader(raw)).Next(); err != nil {
		t.Fatalf("the binary layer is neither gzip nor a tar: %v", err)
	}
	return false
}

// untarToDir extracts an archive to a new directory, with tar(1).
func untarToDir(t *testing.T, file string) string {
	t.Helper()
	dir := t.TempDir()
	runTool(t, "tar", "-xf", file, "-C", dir)
	return dir
}

func runTool(t *testing.T, prog string, args ...string) string {
	t.Helper()
	out, err := exec.Command(prog, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", filepath.Base(prog), args, err, out)
	}
	return strings.TrimSpace(string(out))
}
