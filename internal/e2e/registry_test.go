package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kilnbuild/kiln/internal/testutil"
)

// serverBinary is ./cmd/server, built once per test process.
var serverBinary struct {
	once      sync.Once
	dir, path string
	err       error
}

func buildServer(t *testing.T) string {
	t.Helper()
	serverBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "kiln-e2e-server-")
		if err != nil {
			serverBinary.err = err
			return
		}
		serverBinary.dir = dir
		path := filepath.Join(dir, "server")
		cmd := exec.Command("go", "build", "-o", path, "./cmd/server")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			serverBinary.err = fmt.Errorf("go build ./cmd/server: %v\n%s", err, out)
			return
		}
		serverBinary.path = path
	})
	if serverBinary.err != nil {
		t.Fatal(serverBinary.err)
	}
	return serverBinary.path
}

// TestMain removes the server binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if serverBinary.dir != "" {
		os.RemoveAll(serverBinary.dir)
	}
	os.Exit(code)
}

// registryProcess is cmd/server --registry-only over a data directory that
// outlives it, so a test can kill it and start it again. Its output goes
// to a log whose tail a failing test shows.
type registryProcess struct {
	t    *testing.T
	args []string // beyond --addr, --data and --registry-only
	data string
	port int
	log  string
	cmd  *exec.Cmd
	proc *testutil.Process
}

func newRegistryProcess(t *testing.T) *registryProcess {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: not in -short")
	}
	return startRegistryProcess(t)
}

// startRegistryProcess starts cmd/server with args beyond the usual ones,
// in -short too.
func startRegistryProcess(t *testing.T, args ...string) *registryProcess {
	t.Helper()
	p := &registryProcess{t: t, args: args, data: t.TempDir(), port: freePort(t), log: filepath.Join(t.TempDir(), "server.log")}
	p.start()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("server log (tail):\n%s", p.logTail())
		}
	})
	return p
}

func (p *registryProcess) logTail() string { return testutil.LogTail(p.log, 4000) }

func (p *registryProcess) url() string  { return "http://127.0.0.1:" + strconv.Itoa(p.port) }
func (p *registryProcess) host() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

func (p *registryProcess) start() {
	p.t.Helper()
	p.cmd = exec.Command(buildServer(p.t), append([]string{"--addr", p.host(), "--data", p.data, "--registry-only"}, p.args...)...)
	// 401: the registry has credentials, and is up.
	p.proc = testutil.StartProcess(p.t, p.cmd, p.log, p.url()+"/v2/", http.StatusOK, http.StatusUnauthorized)
}

// kill ends the server with SIGKILL: no shutdown code runs.
func (p *registryProcess) kill() { p.proc.Kill() }

// stalledRequest sends method to url with a body of which only the first
// part arrives, and returns once the server has read some of it. The
// request stays open until the server dies.
func stalledRequest(t *testing.T, method, url, contentType string, first []byte) {
	t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest(method, url, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(first)) * 2 // more than will ever come
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	go func() {
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	if _, err := pw.Write(first); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let the server write what it got
	t.Cleanup(func() { pw.CloseWithError(io.ErrUnexpectedEOF) })
}

// checkStoreIntegrity: every blob on disk hashes to its name and no
// staging file is left among them.
func checkStoreIntegrity(t *testing.T, data string) {
	t.Helper()
	dir := filepath.Join(data, "store", "blobs", "sha256")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != e.Name() {
			t.Errorf("blob %s holds other bytes (%d of them)", e.Name(), len(b))
		}
	}
	if ups, _ := os.ReadDir(filepath.Join(data, "store", "uploads")); len(ups) != 0 {
		t.Errorf("%d interrupted uploads survived a restart", len(ups))
	}
}

func status(t *testing.T, method, url string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRegistrySurvivesSIGKILL kills the server mid-upload and mid-manifest
// put: after a restart nothing partial is visible and the push can be redone.
func TestRegistrySurvivesSIGKILL(t *testing.T) {
	p := newRegistryProcess(t)
	blob := make([]byte, 8<<20)
	rand.NewChaCha8([32]byte{1}).Read(blob)
	sum := sha256.Sum256(blob)
	digest := "sha256:" + hex.EncodeToString(sum[:])

	// Mid-upload: half the blob arrived when the server dies.
	resp, err := http.Post(p.url()+"/v2/crash/app/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	session := p.url() + resp.Header.Get("Location")
	stalledRequest(t, "PATCH", session, "application/octet-stream", blob[:len(blob)/2])
	p.kill()
	p.start()
	checkStoreIntegrity(t, p.data)
	if got := status(t, "HEAD", p.url()+"/v2/crash/app/blobs/"+digest); got != http.StatusNotFound {
		t.Fatalf("half-uploaded blob after restart: HEAD %d, want 404", got)
	}
	if got := status(t, "GET", session); got != http.StatusNotFound {
		t.Fatalf("the dead upload session answers %d, want 404", got)
	}
	resp, err = http.Post(p.url()+"/v2/crash/app/blobs/uploads/?digest="+digest, "application/octet-stream", bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("redoing the upload: %s", resp.Status)
	}

	// Mid-manifest-put: the tag must not exist afterwards.
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(p.host() + "/crash/app:v1")
	for _, l := range mustLayers(t, img) {
		if err := remote.WriteLayer(ref.Context(), l); err != nil {
			t.Fatal(err)
		}
	}
	cfg, _ := img.RawConfigFile()
	cfgName, _ := img.ConfigName()
	resp, err = http.Post(p.url()+"/v2/crash/app/blobs/uploads/?digest="+cfgName.String(), "application/octet-stream", bytes.NewReader(cfg))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	raw, _ := img.RawManifest()
	mt, _ := img.MediaType()
	stalledRequest(t, "PUT", p.url()+"/v2/crash/app/manifests/v1", string(mt), raw[:len(raw)/2])
	p.kill()
	p.start()
	checkStoreIntegrity(t, p.data)
	if got := status(t, "GET", p.url()+"/v2/crash/app/manifests/v1"); got != http.StatusNotFound {
		t.Fatalf("tag of a half-put manifest after restart: GET %d, want 404", got)
	}
	// The small blobs acknowledged before the kill were in the journal
	// only: the restart wrote them out.
	for _, l := range mustLayers(t, img) {
		d, _ := l.Digest()
		if got := status(t, "HEAD", p.url()+"/v2/crash/app/blobs/"+d.String()); got != http.StatusOK {
			t.Errorf("layer %s acknowledged before the kill: HEAD %d after restart, want 200", d, got)
		}
		if _, err := os.Stat(filepath.Join(p.data, "store", "blobs", d.Algorithm, d.Hex)); err != nil {
			t.Errorf("layer %s is not a file after restart: %v", d, err)
		}
	}
	if got := status(t, "HEAD", p.url()+"/v2/crash/app/blobs/"+cfgName.String()); got != http.StatusOK {
		t.Errorf("config acknowledged before the kill: HEAD %d after restart, want 200", got)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("redoing the push: %v", err)
	}

	// Killed while clients push: every tag that survived is whole. The
	// kill comes once round+1 pushes have finished (not after a fixed
	// time, which a loaded machine outlasts before the first push ends),
	// while the next is under way.
	for round := range 3 {
		stop := make(chan struct{})
		pushed := make(chan struct{})
		finished := make(chan struct{}, round+1)
		go func() {
			defer close(pushed)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				img, _ := random.Image(4096, 3)
				r, _ := name.ParseReference(fmt.Sprintf("%s/crash/loop:r%d-%d", p.host(), round, i))
				if remote.Write(r, img) == nil {
					select {
					case finished <- struct{}{}:
					default:
					}
				}
			}
		}()
		for range round + 1 {
			select {
			case <-finished:
			case <-time.After(2 * time.Minute):
				close(stop)
				t.Fatalf("round %d: no push finished in 2 minutes:\n%s", round, p.logTail())
			}
		}
		p.kill()
		close(stop)
		<-pushed
		p.start()
		checkStoreIntegrity(t, p.data)
		repo, _ := name.NewRepository(p.host() + "/crash/loop")
		tags, err := remote.List(repo)
		if err != nil {
			t.Fatal(err)
		}
		if len(tags) == 0 {
			t.Fatalf("round %d: no push finished before the kill; the test proved nothing", round)
		}
		for _, tag := range tags {
			img, err := remote.Image(repo.Tag(tag))
			if err != nil {
				t.Fatalf("round %d: tag %s survived but does not read: %v", round, tag, err)
			}
			if err := validate.Image(img); err != nil {
				t.Fatalf("round %d: tag %s survived broken: %v", round, tag, err)
			}
		}
	}
}

func mustLayers(t *testing.T, img v1.Image) []v1.Layer {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// TestRegistryRealClients: podman, crane and kiln itself push to and pull
// from kiln's registry.
func TestRegistryRealClients(t *testing.T) {
	p := newRegistryProcess(t)
	root := repoRoot(t)
	env := kilnEnv(t)

	// kiln build publishes to it.
	ref := kiln(t, root, env, "build", "--platform", "linux/amd64,linux/arm64", "--output", p.host()+"/kiln/server", "./cmd/server")
	idx, err := remote.Index(mustRef(t, ref))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatal(err)
	}

	t.Run("crane", func(t *testing.T) {
		testutil.RequireTool(t, "crane")
		crane := func(args ...string) string {
			t.Helper()
			out, err := exec.Command("crane", args...).CombinedOutput()
			if err != nil {
				t.Fatalf("crane %v: %v\n%s", args, err, out)
			}
			return strings.TrimSpace(string(out))
		}
		crane("copy", ref, p.host()+"/copied/server:v1")
		if got := crane("digest", p.host()+"/copied/server:v1"); got != strings.SplitN(ref, "@", 2)[1] {
			t.Fatalf("crane digest %s, want %s", got, ref)
		}
		if got := crane("ls", p.host()+"/copied/server"); got != "v1" {
			t.Fatalf("crane ls: %q", got)
		}
		if got := crane("catalog", p.host()); !strings.Contains(got, "copied/server") || !strings.Contains(got, "kiln/server") {
			t.Fatalf("crane catalog: %q", got)
		}
		crane("validate", "--remote", p.host()+"/copied/server:v1")
		crane("delete", p.host()+"/copied/server@"+strings.SplitN(ref, "@", 2)[1])
		if out, err := exec.Command("crane", "manifest", p.host()+"/copied/server:v1").CombinedOutput(); err == nil {
			t.Fatalf("manifest still there after crane delete:\n%s", out)
		}
	})

	t.Run("podman", func(t *testing.T) {
		testutil.RequireTool(t, "podman")
		testutil.RequireTool(t, "runc")
		podman(t, "pull", "--tls-verify=false", "--platform", "linux/amd64", ref)
		local := fmt.Sprintf("%s/podman/server:e2e-%d", p.host(), p.port)
		podman(t, "tag", ref, local)
		t.Cleanup(func() { exec.Command("podman", "rmi", "-f", local).Run() })
		podman(t, "push", "--tls-verify=false", local)
		img, err := remote.Image(mustRef(t, local))
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Image(img); err != nil {
			t.Fatalf("what podman pushed does not validate: %v", err)
		}
		podman(t, "rmi", "-f", local)
		podman(t, "pull", "--tls-verify=false", local)
	})
}
