package e2e

import (
	"bytes"
	"debug/elf"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kilnbuild/kiln/internal/delve"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// TestDebugImage: kiln build --debug puts Delve (built from its module
// through the environment's GOPROXY, once) into the image and starts the
// program under it with ko's arguments; a second build takes Delve from
// the cache; in podman, the image's dlv runs.
func TestDebugImage(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end, builds Delve: not in -short")
	}
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, testutil.HelloModule)
	// The machine's Go environment (GOPROXY, GOMODCACHE) fetches Delve.
	env := append(os.Environ(), "KILN_STORE="+t.TempDir(), "KILN_CACHE="+t.TempDir(), "KO_DOCKER_REPO=",
		"KO_CONFIG_PATH=", "KO_DEFAULTBASEIMAGE=", "SOURCE_DATE_EPOCH=")
	out := filepath.Join(t.TempDir(), "oci")
	var ref string
	build := func() string {
		t.Helper()
		code, stdout, stderr := kilnExit(t, dir, env, "build", "--debug", "--base", "scratch", "--platform", "linux/amd64", "-B", "-o", "oci:"+out, "./cmd/hello")
		if code != 0 {
			t.Fatalf("kiln build --debug: exit %d\n%s", code, stderr)
		}
		ref = strings.TrimSpace(stdout)
		return stderr
	}
	if log := build(); !strings.Contains(log, "debugger built in") {
		t.Errorf("first build did not build Delve:\n%s", log)
	}
	if log := build(); !strings.Contains(log, "debugger from the cache") {
		t.Errorf("second build did not take Delve from the cache:\n%s", log)
	}

	p, err := layout.FromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	idx, _ := p.ImageIndex()
	img, err := idx.Image(digestOf(t, ref))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	want := append(append([]string{"/ko-app/dlv"}, delve.Args...), "/ko-app/hello")
	if !slices.Equal(cf.Config.Entrypoint, want) {
		t.Errorf("entrypoint %q, want ko's %q", cf.Config.Entrypoint, want)
	}
	hdrs, files := testutil.Files(t, img, "ko-app/dlv", "ko-app/hello")
	if h := hdrs["ko-app/dlv"]; h == nil || h.Mode&0o111 == 0 || h.Size < 1<<20 {
		t.Errorf("ko-app/dlv in the image: %+v, want an executable", h)
	}
	// The program keeps its DWARF (kiln's default -s -w would drop it).
	if f, err := elf.NewFile(bytes.NewReader(files["ko-app/hello"])); err != nil {
		t.Error(err)
	} else if _, err := f.DWARF(); err != nil {
		t.Errorf("/ko-app/hello has no DWARF for Delve: %v", err)
	}

	testutil.RequireTool(t, "podman")
	testutil.RequireTool(t, "runc")
	ref = kiln(t, dir, env, "build", "--debug", "--base", "scratch", "--platform", "linux/amd64", "-B", "--load", "--tag", "e2e-debug", "./cmd/hello")
	image := strings.SplitN(ref, "@", 2)[0]
	v := podman(t, append(runFlags(image, "--entrypoint", "/ko-app/dlv"), "version")...)
	if !strings.Contains(v, "Delve Debugger") || !strings.Contains(v, "Version: "+strings.TrimPrefix(delve.Version, "v")) {
		t.Errorf("dlv version in the container:\n%s", v)
	}
	// Started as the image says, Delve listens on its port (unless another
	// program on this host holds it).
	if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", delve.Port)); err != nil {
		t.Logf("port %d is taken on this host: not starting the container: %v", delve.Port, err)
		return
	} else {
		l.Close()
	}
	cname := fmt.Sprintf("kiln-e2e-debug-%d", os.Getpid())
	podman(t, runFlags(image, "-d", "--name", cname, "--network", "host")...)
	t.Cleanup(func() { exec.Command("podman", "rm", "-f", cname).Run() })
	var conn net.Conn
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if conn, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", delve.Port)); err == nil {
			conn.Close()
			break
		}
	}
	if err != nil {
		logs, _ := exec.Command("podman", "logs", cname).CombinedOutput()
		t.Fatalf("Delve never listened on %d: %v\n%s", delve.Port, err, logs)
	}
	if logs, _ := exec.Command("podman", "logs", cname).CombinedOutput(); strings.Contains(string(logs), "no debug info found") {
		t.Errorf("Delve found no debug info:\n%s", logs)
	}
}
