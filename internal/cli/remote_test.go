package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/server"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// helloModule writes a main package that is no git checkout.
func helloModule(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{
		"go.mod":            "module example.com/hello\n\ngo 1.22\n",
		"cmd/hello/main.go": "package main\n\nimport \"os\"\n\nfunc main() { os.Stdout.WriteString(\"hello\\n\") }\n",
		"bin/ignored":       "not sent",
	})
	return dir
}

// startServer runs kiln's server in this process with a data directory of
// its own and returns its URL once it answers.
func startServer(t *testing.T, args ...string) string {
	t.Helper()
	addr := testutil.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var log strings.Builder
	var mu sync.Mutex
	go func() {
		done <- server.Run(ctx, append([]string{"--addr", addr, "--data", t.TempDir(), "--log-format", "text"}, args...), lockedWriter{&mu, &log})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
		if t.Failed() {
			mu.Lock()
			t.Logf("server log:\n%s", log.String())
			mu.Unlock()
		}
	})
	url := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); ; {
		res, err := http.Get(url + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return url
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server at %s not ready: %v", url, err)
		}
		select {
		case err := <-done:
			t.Fatalf("server stopped: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestRemoteBuildMatchesLocal: kiln build --remote prints a ref whose
// digest is that of a local kiln build of the same source and flags.
func TestRemoteBuildMatchesLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds on a server: not in -short")
	}
	env := testEnv(t)
	// The server's builds share the test's Go cache: one compile of the
	// standard library serves both builds.
	url := startServer(t, "--go-cache", (Invocation{Env: env}).getenv("GOCACHE"))
	dir := helloModule(t)
	flags := []string{"--platform", "linux/amd64", "-B", "--image-label", "team=core"} // the label must reach the remote build too
	code, remote, stderr := kiln(t, filepath.Join(dir, "cmd"), env, append([]string{"build", "--remote", url, "./hello"}, flags...)...)
	if code != 0 {
		t.Fatalf("kiln build --remote: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "build succeeded") {
		t.Errorf("the remote log did not reach stderr:\n%s", stderr)
	}
	code, local, stderr := kiln(t, dir, env, append([]string{"build", "-o", "oci:" + t.TempDir(), "./cmd/hello"}, flags...)...)
	if code != 0 {
		t.Fatalf("kiln build: exit %d\n%s", code, stderr)
	}
	_, remoteDigest, _ := strings.Cut(strings.TrimSpace(remote), "@")
	_, localDigest, _ := strings.Cut(strings.TrimSpace(local), "@")
	if remoteDigest == "" || remoteDigest != localDigest {
		t.Errorf("remote build %q, local build %q: want one digest", remote, local)
	}
	if !strings.HasPrefix(remote, strings.TrimPrefix(url, "http://")+"/hello@sha256:") {
		t.Errorf("remote ref %q: want the server's registry, named by -B", remote)
	}
}

// fakeService answers a submit, then streams log lines until the build is
// cancelled, as a slow build on a service would.
type fakeService struct {
	cancelled chan struct{}
	once      sync.Once
}

func (f *fakeService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/api/v1/builds":
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(map[string]any{"id": "b1", "state": "queued"})
	case r.URL.Path == "/api/v1/builds/b1/log":
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 1; ; i++ {
			fmt.Fprintf(w, "id: %d\ndata: compiling %d\n\n", i, i)
			w.(http.Flusher).Flush()
			select {
			case <-f.cancelled:
				fmt.Fprintf(w, "event: end\ndata: {\"state\":\"cancelled\"}\n\n")
				return
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	case r.Method == http.MethodPost && r.URL.Path == "/api/v1/builds/b1/cancel":
		f.once.Do(func() { close(f.cancelled) })
		json.NewEncoder(w).Encode(map[string]any{"id": "b1", "state": "cancelled"})
	default:
		http.NotFound(w, r)
	}
}

// TestRemoteInterruptCancels: Ctrl-C during a remote build cancels it on
// the service.
func TestRemoteInterruptCancels(t *testing.T) {
	svc := &fakeService{cancelled: make(chan struct{})}
	srv := httptest.NewServer(svc)
	defer srv.Close()
	ctx, interrupt := context.WithCancel(context.Background())
	stderr := &notifyWriter{seen: "compiling 2", hit: make(chan struct{})}
	go func() {
		<-stderr.hit
		interrupt()
	}()
	var out strings.Builder
	code := Run(ctx, Invocation{Args: []string{"build", "--remote", srv.URL, "./cmd/hello"}, Env: testEnv(t), Dir: helloModule(t), Stdout: &out, Stderr: stderr})
	if code == 0 {
		t.Fatal("interrupted kiln build --remote exited 0")
	}
	select {
	case <-svc.cancelled:
	default:
		t.Fatal("interrupting kiln build --remote did not cancel the remote build")
	}
	if !strings.Contains(stderr.String(), "cancelled") || out.Len() != 0 {
		t.Errorf("stdout %q, stderr:\n%s", out.String(), stderr.String())
	}
}

// notifyWriter closes hit once seen has been written.
type notifyWriter struct {
	mu   sync.Mutex
	b    strings.Builder
	seen string
	hit  chan struct{}
	once sync.Once
}

func (w *notifyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	if strings.Contains(w.b.String(), w.seen) {
		w.once.Do(func() { close(w.hit) })
	}
	return len(p), nil
}

func (w *notifyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func TestRemoteBadInput(t *testing.T) {
	dir := helloModule(t)
	outside := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		dir  string
		want string
	}{
		{"load", []string{"--remote", "http://127.0.0.1:1", "--load"}, dir, "--load does not go with --remote"},
		{"store", []string{"--remote", "http://127.0.0.1:1", "--store", "x"}, dir, "--store does not go with --remote"},
		{"key", []string{"--remote", "http://127.0.0.1:1", "--key", "k"}, dir, "--key does not go with --remote"},
		{"oci output", []string{"--remote", "http://127.0.0.1:1", "-o", "oci:dir"}, dir, "does not go with --remote"},
		{"archive output", []string{"--remote", "http://127.0.0.1:1", "-o", "docker-archive:f.tar"}, dir, "does not go with --remote"},
		{"token alone", []string{"--token", "t"}, dir, "--token goes with --remote"},
		{"no module", []string{"--remote", "http://127.0.0.1:1"}, outside, "no go.mod"},
		{"package outside", []string{"--remote", "http://127.0.0.1:1", "../elsewhere"}, dir, "outside the module"},
		{"bad platform", []string{"--remote", "http://127.0.0.1:1", "--platform", "plan9/mips"}, dir, "plan9"},
		{"unreachable", []string{"--remote", "http://127.0.0.1:1"}, dir, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"build"}, tc.args...)
			if !strings.Contains(strings.Join(tc.args, " "), "../") {
				args = append(args, "./cmd/hello")
			}
			code, out, stderr := kiln(t, tc.dir, testEnv(t), args...)
			if code == 0 || out != "" || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
				t.Errorf("exit %d, stdout %q, stderr %q: want a one-line error with %q", code, out, stderr, tc.want)
			}
		})
	}
}
