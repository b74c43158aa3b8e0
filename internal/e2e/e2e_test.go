package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kilnbuild/kiln/internal/base"
	"github.com/kilnbuild/kiln/internal/cli"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// repoRoot is the kiln checkout these tests run in.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func kiln(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), cli.Invocation{Args: args, Env: env, Dir: dir, Stdout: &out, Stderr: &errb})
	if code != 0 {
		t.Fatalf("kiln %v: exit %d\n%s", args, code, errb.String())
	}
	return strings.TrimSpace(out.String())
}

func podmanArgs(args ...string) []string {
	return append([]string{"--runtime", "runc"}, args...)
}

func podman(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("podman", podmanArgs(args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("podman %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func runFlags(image string, extra ...string) []string {
	args := []string{"run", "--rm", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}
	return append(append(args, extra...), image)
}

func freePort(t *testing.T) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(testutil.FreeAddr(t))
	n, _ := strconv.Atoi(port)
	return n
}

func kilnEnv(t *testing.T) []string {
	return append(os.Environ(), "KILN_STORE="+t.TempDir(), "KO_DOCKER_REPO=", "KO_DEFAULTBASEIMAGE=")
}

// TestServerRunsInPodman builds ./cmd/server with kiln, loads it into podman,
// runs it and asks it for /healthz; a probe built the same way proves what
// the static base gives a program inside the container.
func TestServerRunsInPodman(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: not in -short")
	}
	testutil.RequireTool(t, "podman")
	testutil.RequireTool(t, "runc")
	root := repoRoot(t)
	env := kilnEnv(t)

	ref := kiln(t, root, env, "build", "--load", "--platform", "linux/amd64", "-B", "--tag", "e2e", "./cmd/server")
	image := strings.SplitN(ref, "@", 2)[0] // REPO:e2e, as ko prints one release tag

	port := freePort(t)
	cname := fmt.Sprintf("kiln-e2e-%d", port)
	podman(t, append(runFlags(image, "-d", "--name", cname, "--network", "host"), "--addr", "127.0.0.1:"+strconv.Itoa(port))...)
	t.Cleanup(func() { exec.Command("podman", "rm", "-f", cname).Run() })

	var resp *http.Response
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if resp, err = http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port)); err == nil {
			break
		}
	}
	if err != nil {
		logs, _ := exec.Command("podman", "logs", cname).CombinedOutput()
		t.Fatalf("server never answered: %v\n%s", err, logs)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/healthz = %d", resp.StatusCode)
	}
	user := podman(t, "inspect", "--format", "{{.Config.User}}", cname)
	if user != "65532" {
		t.Errorf("container user = %q, want 65532", user)
	}

	// The probe: a program asking the container what it can see.
	probeDir := filepath.Join(root, "internal", "e2e", "testdata", "probe")
	pref := kiln(t, probeDir, env, "build", "--load", "--platform", "linux/amd64", "-B", "--tag", "e2e", ".")
	out := podman(t, runFlags(strings.SplitN(pref, "@", 2)[0])...)
	m := regexp.MustCompile(`uid=(\d+) gid=(\d+) certs=(\d+) tz=(.*)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("probe printed %q", out)
	}
	if m[1] != "65532" || m[2] != "65532" {
		t.Errorf("probe runs as uid %s gid %s, want 65532", m[1], m[2])
	}
	if n, _ := strconv.Atoi(m[3]); n < 100 {
		t.Errorf("probe found %d CA certificates, want the bundle (>100)", n)
	}
	if m[4] != "ok" {
		t.Errorf("probe could not load a time zone: %s", m[4])
	}
}

// pushStaticBase pushes kiln's static base, built from the host's Go, to
// reg as kiln/static:latest and returns its reference: the base that ko
// (and kiln beside it) build on offline. It stays here, not in testutil,
// because testutil may import no package above layer -1.
func pushStaticBase(t *testing.T, reg string) string {
	t.Helper()
	idx, err := base.Static(context.Background(), base.Options{GOROOT: testutil.GOROOT(t), Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(reg + "/kiln/static:latest")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	return ref.String()
}

// TestKoBuildsThisRepo proves the repository is ko-compatible: the real ko
// builds ./cmd/server from this .ko.yaml, on a base kiln pushed.
func TestKoBuildsThisRepo(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: not in -short")
	}
	ko := testutil.RequireTool(t, "ko")
	root := repoRoot(t)
	reg := testutil.Serve(t, newKilnRegistry(t)) // ko pushes to kiln's registry
	koEnv := append(os.Environ(), "KO_DOCKER_REPO="+reg+"/server", "KO_DEFAULTBASEIMAGE="+pushStaticBase(t, reg), "KO_CONFIG_PATH="+filepath.Join(root, ".ko.yaml"))

	cmd := exec.Command(ko, "build", "--bare", "./cmd/server")
	cmd.Dir = root
	cmd.Env = koEnv
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ko build: %v\n%s", err, stderr.String())
	}
	ref, err := name.ParseReference(strings.TrimSpace(stdout.String()))
	if err != nil {
		t.Fatalf("ko printed %q: %v", stdout.String(), err)
	}
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if ep := cf.Config.Entrypoint; len(ep) != 1 || ep[0] != "/ko-app/server" {
		t.Errorf("ko's entrypoint = %v", ep)
	}
	if cf.Config.User != "65532" {
		t.Errorf("ko's image runs as %q: the kiln static base was not used", cf.Config.User)
	}

	// ko resolve -f config: the deployment names the image ko just built.
	cmd = exec.Command(ko, "resolve", "--bare", "-f", "config")
	cmd.Dir = root
	cmd.Env = koEnv
	stdout.Reset()
	stderr.Reset()
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ko resolve -f config: %v\n%s", err, stderr.String())
	}
	if resolved := stdout.String(); !strings.Contains(resolved, "image: "+ref.String()) || strings.Contains(resolved, "ko://") {
		t.Errorf("ko resolve -f config does not name %s:\n%s", ref, resolved)
	}
}
