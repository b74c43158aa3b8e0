package server

import (
	"context"
	"encoding/json"
	"io"
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
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kilnbuild/kiln/internal/buildrecord"
	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/request"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// warmGoCache points data's Go build cache at the go command's own, so
// that a test's builds compile only what changed (the cache is safe to
// share; it never changes what is built).
func warmGoCache(t *testing.T, data string) {
	t.Helper()
	out, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOCACHE: %v", err)
	}
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(strings.TrimSpace(string(out)), filepath.Join(data, "gocache")); err != nil {
		t.Fatal(err)
	}
}

// submit posts a build request and returns the record answered.
func submit(t *testing.T, url, body string) buildrecord.Build {
	t.Helper()
	resp, err := http.Post(url+"/api/v1/builds", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/v1/builds = %s: %s", resp.Status, raw)
	}
	var b buildrecord.Build
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	return b
}

// waitFinal polls a build until it is finished (backing off, bounded by
// a deadline) and returns it.
func waitFinal(t *testing.T, url, id string) buildrecord.Build {
	t.Helper()
	wait := 10 * time.Millisecond
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); wait = min(2*wait, 500*time.Millisecond) {
		resp, err := http.Get(url + "/api/v1/builds/" + id)
		if err != nil {
			t.Fatal(err)
		}
		var b buildrecord.Build
		err = json.NewDecoder(resp.Body).Decode(&b)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if b.State.Final() {
			return b
		}
		time.Sleep(wait)
	}
	t.Fatalf("build %s did not finish in 3 minutes", id)
	return buildrecord.Build{}
}

// metric reads one sample of /metrics.
func metric(t *testing.T, url, sample string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics has no %s:\n%s", sample, body)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestServiceBuildsWorkspace runs the server with a relative --data and
// a workspace, builds through the API, pulls the image back from /v2/ and
// checks it is what kiln build's request.Run makes of the same source.
// The metrics count the build and the registry's bytes, the in-process
// push included.
func TestServiceBuildsWorkspace(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a program: not in -short")
	}
	t.Chdir(t.TempDir())
	testutil.WriteFiles(t, "ws/hello", testutil.HelloModule)
	warmGoCache(t, "data")
	url := serve(t, http.DefaultClient, "http", "127.0.0.1", "--data", "data", "--workspace", "ws")
	host := strings.TrimPrefix(url, "http://")

	if got := status(t, url+"/readyz"); got != http.StatusOK {
		t.Fatalf("/readyz = %d before any build, want 200", got)
	}
	const build = `{"packages":["./cmd/hello"],"platforms":["linux/amd64"]}`
	queued := submit(t, url, `{"source":{"workspace":"hello"},`+build[1:])
	b := waitFinal(t, url, queued.ID)
	if b.State != buildrecord.Succeeded || len(b.Results) != 1 {
		t.Fatalf("build %s: %+v", b.State, b.Error)
	}
	if b.Phases.Compile <= 0 || b.Phases.Push <= 0 {
		t.Errorf("phases %+v: compile and push were not timed", b.Phases)
	}
	ref, err := name.ParseReference(b.Results[0].Ref)
	if err != nil {
		t.Fatal(err)
	}
	if ref.Context().RegistryStr() != host {
		t.Errorf("the build pushed to %s, want the server's own registry %s", ref, host)
	}
	if got := metric(t, url, "kiln_registry_received_bytes_total"); got < float64(b.Results[0].Images[0].Bytes) {
		t.Errorf("registry received %v bytes for a pushed image of %d bytes: the build's own push is not counted", got, b.Results[0].Images[0].Bytes)
	}
	sentBefore := metric(t, url, "kiln_registry_sent_bytes_total")
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("the image pulled from /v2/ does not validate: %v", err)
	}
	if got := metric(t, url, "kiln_registry_sent_bytes_total"); got <= sentBefore {
		t.Errorf("registry sent bytes %v after a pull, %v before", got, sentBefore)
	}
	if got := metric(t, url, `kiln_builds_total{outcome="succeeded"}`); got != 1 {
		t.Errorf(`kiln_builds_total{outcome="succeeded"} = %v, want 1`, got)
	}

	// kiln build's own path, on the same source, to another repository.
	var req request.Build
	if err := json.Unmarshal([]byte(build), &req); err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs("ws/hello")
	direct := host + "/direct"
	out, err := request.Run(context.Background(), request.Env{
		Dir: dir, Env: os.Environ(), Publisher: &publish.ToRegistry{Repo: direct}, Repo: direct, CacheDir: t.TempDir(),
	}, req)
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Digest != b.Results[0].Digest {
		t.Errorf("the service built %s, kiln build %s, from the same source", b.Results[0].Digest, out[0].Digest)
	}
}

// TestServiceNotReadyWithoutData: /readyz fails once the data directory
// cannot be written, and /healthz says the same.
func TestServiceNotReadyWithoutData(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	url := serve(t, http.DefaultClient, "http", "127.0.0.1", "--data", data)
	if got := status(t, url+"/readyz"); got != http.StatusOK {
		t.Fatalf("/readyz = %d, want 200", got)
	}
	if err := os.Rename(data, data+".gone"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Rename(data+".gone", data) }) // for the server's shutdown
	if got := status(t, url+"/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d without a data directory, want 503", got)
	}
}

// TestServiceKeepsRegistryOpen: with the build service on, a loopback
// server without credentials still lets anonymous clients in at /v2/,
// including those (podman) that send empty basic credentials.
func TestServiceKeepsRegistryOpen(t *testing.T) {
	url := serve(t, http.DefaultClient, "http", "127.0.0.1", "--data", t.TempDir())
	for _, auth := range []string{"", "Basic Og=="} {
		req, _ := http.NewRequest("GET", url+"/v2/", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /v2/ with Authorization %q = %d, want 200: the build service made the registry ask for credentials", auth, resp.StatusCode)
		}
	}
}

// TestServiceBuildsWithRegistryCredentials: where the registry has
// credentials (and anonymous clients may not push), the service's builds
// push with a token of their own.
func TestServiceBuildsWithRegistryCredentials(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a program: not in -short")
	}
	dir := t.TempDir()
	testutil.WriteFiles(t, filepath.Join(dir, "ws", "hello"), testutil.HelloModule)
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte(strings.Repeat("k", 40)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	warmGoCache(t, data)
	url := serve(t, http.DefaultClient, "http", "127.0.0.1", "--data", data, "--workspace", filepath.Join(dir, "ws"), "--token-file", tokens)
	if got := status(t, url+"/v2/"); got != http.StatusUnauthorized {
		t.Errorf("GET /v2/ without credentials = %d, want 401", got)
	}
	b := waitFinal(t, url, submit(t, url, `{"source":{"workspace":"hello"},"packages":["./cmd/hello"],"platforms":["linux/amd64"]}`).ID)
	if b.State != buildrecord.Succeeded {
		t.Fatalf("build %s: %+v", b.State, b.Error)
	}
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
