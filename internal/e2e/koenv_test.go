package e2e

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kilnbuild/kiln/internal/cli"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// platformsOf lists the platforms of the image or index ref names, sorted.
func platformsOf(t *testing.T, ref string) []string {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatalf("%q: %v", ref, err)
	}
	desc, err := remote.Get(r)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			t.Fatal(err)
		}
		m, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range m.Manifests {
			out = append(out, d.Platform.String())
		}
	} else {
		img, err := desc.Image()
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, cf.Platform().String())
	}
	sort.Strings(out)
	return out
}

// TestKoEnvDifferential: under ko's environment variables, kiln builds
// the platforms the real ko v0.19.1 builds, refuses what ko refuses, and
// names what it loads into the local engine (ko.local, through podman's
// docker API for ko) as ko does.
func TestKoEnvDifferential(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: not in -short")
	}
	d := newKoDiff(t)
	goEnv := d.goEnv

	for _, tc := range []struct {
		name string
		env  []string
		want []string
	}{
		{"KO_DEFAULTPLATFORMS", []string{"KO_DEFAULTPLATFORMS=linux/arm64,linux/amd64"}, []string{"linux/amd64", "linux/arm64"}},
		{"GOOS and GOARCH", []string{"GOOS=linux", "GOARCH=arm64"}, []string{"linux/arm64"}},
		{"GOARM", []string{"GOOS=linux", "GOARCH=arm", "GOARM=6"}, []string{"linux/arm/v6"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d.goEnv = append(slices.Clone(goEnv), tc.env...)
			defer func() { d.goEnv = goEnv }()
			ko, kiln, _, _ := d.run()
			if ko != kiln {
				t.Errorf("ko printed %q, kiln %q", ko, kiln)
			}
			koP := platformsOf(t, d.koRepo+"/"+helloName()+":latest")
			kilnP := platformsOf(t, d.kilnRepo+"/"+helloName()+":latest")
			if !slices.Equal(koP, tc.want) || !slices.Equal(kilnP, tc.want) {
				t.Errorf("platforms: ko %v, kiln %v, want %v", koP, kilnP, tc.want)
			}
		})
	}

	t.Run("GOARCH beside --platform is refused by both", func(t *testing.T) {
		env := append(d.env(d.koRepo), "GOARCH=arm64")
		cmd := exec.Command(d.ko, "build", "--platform", "linux/amd64", "./cmd/hello")
		cmd.Dir, cmd.Env = d.dir, env
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), `combined with GOARCH="arm64"`) {
			t.Errorf("ko: %v\n%s", err, out)
		}
		var kout, kerr bytes.Buffer
		code := cli.Run(context.Background(), cli.Invocation{Args: []string{"build", "--platform", "linux/amd64", "./cmd/hello"},
			Env: append(d.env(d.kilnRepo), "GOARCH=arm64"), Dir: d.dir, Stdout: &kout, Stderr: &kerr})
		if code != 1 || kout.Len() != 0 || !strings.Contains(kerr.String(), `GOARCH="arm64" cannot go with --platform`) {
			t.Errorf("kiln: exit %d, stdout %q, stderr %q", code, kout.String(), kerr.String())
		}
	})

	t.Run("ko.local", func(t *testing.T) {
		podman := testutil.RequireTool(t, "podman")
		storage, sock := podmanService(t, podman)
		d.goEnv = append(slices.Clone(goEnv), storage, "DOCKER_HOST=unix://"+sock)
		koRepo, kilnRepo := d.koRepo, d.kilnRepo
		d.koRepo, d.kilnRepo = "ko.local/ko", "ko.local/kiln"
		defer func() { d.goEnv, d.koRepo, d.kilnRepo = goEnv, koRepo, kilnRepo }()
		ko, kiln, _, _ := d.run("--platform", "linux/amd64", "-t", "v1")
		hex := regexp.MustCompile(`:[0-9a-f]{64}$`)
		if want := "REPO/" + helloName() + ":HEX"; hex.ReplaceAllString(ko, ":HEX") != want || hex.ReplaceAllString(kiln, ":HEX") != want {
			t.Errorf("printed: ko %q, kiln %q, want %s", ko, kiln, want)
		}
		cmd := exec.Command(podman, "images", "--format", "{{.Repository}}:{{.Tag}}")
		cmd.Env = append(os.Environ(), storage)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("podman images: %v\n%s", err, out)
		}
		names := map[string][]string{}
		for _, line := range strings.Fields(string(out)) {
			for _, repo := range []string{d.koRepo, d.kilnRepo} {
				if rest, ok := strings.CutPrefix(line, repo+"/"); ok {
					names[repo] = append(names[repo], hex.ReplaceAllString(rest, ":HEX"))
				}
			}
		}
		sort.Strings(names[d.koRepo])
		sort.Strings(names[d.kilnRepo])
		want := []string{helloName() + ":HEX", helloName() + ":v1"}
		if !slices.Equal(names[d.koRepo], want) || !slices.Equal(names[d.kilnRepo], want) {
			t.Errorf("names in podman: ko %v, kiln %v, want %v each", names[d.koRepo], names[d.kilnRepo], want)
		}
	})
}

// podmanService starts `podman system service` on a socket of the test's
// own, socket-activated (so that it is ready as soon as it is listening),
// over a storage of the test's own; it returns the storage setting for
// podman's CLI and the socket.
func podmanService(t *testing.T, podman string) (storage, sock string) {
	t.Helper()
	storage = testutil.PodmanStorage(t)
	sock = filepath.Join(t.TempDir(), "podman.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ul := l.(*net.UnixListener)
	ul.SetUnlinkOnClose(false) // podman holds the socket on
	f, err := ul.File()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", `LISTEN_PID=$$ exec "$0" system service --time=0`, podman)
	cmd.Env = append(os.Environ(), storage, "LISTEN_FDS=1")
	cmd.ExtraFiles = []*os.File{f}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	l.Close()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return storage, sock
}
