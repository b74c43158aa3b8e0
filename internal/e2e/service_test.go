package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/buildrecord"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// The build service's end-to-end tests run cmd/server (built once, see
// buildServer) as a process of its own over a data directory that
// outlives it. Every server shares the go command's build cache and one
// kiln cache for the test binary, so that only what a test changes
// compiles.

// sharedCaches are the Go build cache and kiln's cache every service
// process of this test binary uses; kiln's is removed with the server
// binary (TestMain).
var sharedCaches struct {
	once          sync.Once
	gocache, kiln string
	err           error
}

func serviceCaches(t *testing.T) (gocache, kiln string) {
	t.Helper()
	buildServer(t)
	sharedCaches.once.Do(func() {
		out, err := exec.Command("go", "env", "GOCACHE").Output()
		if err != nil {
			sharedCaches.err = fmt.Errorf("go env GOCACHE: %w", err)
			return
		}
		sharedCaches.gocache = strings.TrimSpace(string(out))
		sharedCaches.kiln = filepath.Join(serverBinary.dir, "kiln-cache")
		sharedCaches.err = os.Mkdir(sharedCaches.kiln, 0o755)
	})
	if sharedCaches.err != nil {
		t.Fatal(sharedCaches.err)
	}
	return sharedCaches.gocache, sharedCaches.kiln
}

// serviceProcess is cmd/server with the build service on.
type serviceProcess struct {
	t    *testing.T
	args []string // beyond --addr and --data
	env  []string // added to the test's environment
	data string
	port int
	log  string
	cmd  *exec.Cmd
	proc *testutil.Process
}

// startService starts a build service with a workspace directory (see
// workspace) and args; it is killed when the test ends. Not in -short.
func startService(t *testing.T, env []string, args ...string) *serviceProcess {
	t.Helper()
	p := newService(t, env, args...)
	p.start()
	return p
}

// newService prepares a build service's data directory (sharing the
// test binary's caches) without starting it.
func newService(t *testing.T, env []string, args ...string) *serviceProcess {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: not in -short")
	}
	root := t.TempDir()
	p := &serviceProcess{t: t, env: env, data: filepath.Join(root, "data"), port: freePort(t), log: filepath.Join(root, "server.log")}
	p.args = append([]string{"--workspace", filepath.Join(root, "ws")}, args...)
	if err := os.Mkdir(p.data, 0o755); err != nil {
		t.Fatal(err)
	}
	gocache, kiln := serviceCaches(t)
	for name, target := range map[string]string{"gocache": gocache, "cache": kiln} {
		if err := os.Symlink(target, filepath.Join(p.data, name)); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { makeWritable(filepath.Join(p.data, "gomodcache")) })
	t.Cleanup(func() {
		if p.proc != nil {
			p.kill()
		}
		killLeftovers(p.data)
		if t.Failed() {
			t.Logf("server log (tail):\n%s", p.logTail())
		}
	})
	return p
}

// workspace is the directory under the server's --workspace that a
// {"workspace": name} source names; files are written into it.
func (p *serviceProcess) workspace(name string, files map[string]string) string {
	dir := filepath.Join(filepath.Dir(p.data), "ws", name)
	testutil.WriteFiles(p.t, dir, files)
	return dir
}

func (p *serviceProcess) url() string  { return "http://127.0.0.1:" + strconv.Itoa(p.port) }
func (p *serviceProcess) host() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

func (p *serviceProcess) logTail() string { return testutil.LogTail(p.log, 6000) }

// start runs the server and returns once /readyz says it is ready.
func (p *serviceProcess) start() {
	p.t.Helper()
	p.cmd = exec.Command(buildServer(p.t), append([]string{"--addr", p.host(), "--data", p.data}, p.args...)...)
	p.cmd.Env = append(os.Environ(), p.env...)
	p.proc = testutil.StartProcess(p.t, p.cmd, p.log, p.url()+"/readyz", http.StatusOK)
}

// stop ends the server with SIGTERM and waits for it: running builds get
// their grace.
func (p *serviceProcess) stop() {
	if !p.proc.Stop() {
		p.t.Errorf("the server exited with %v after SIGTERM", p.cmd.ProcessState)
	}
}

// kill ends the server with SIGKILL: no shutdown code runs.
func (p *serviceProcess) kill() { p.proc.Kill() }

// killLeftovers ends the processes (go build, compile) that a killed
// server left running in its data directory, by their IDs.
func killLeftovers(data string) {
	for _, pid := range processesIn(data) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// processesIn lists the processes whose command line or working
// directory is inside dir.
func processesIn(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if strings.Contains(string(cmdline), dir) || strings.HasPrefix(cwd, dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// do sends a request to the API and decodes a JSON answer into v (nil:
// none). It returns the response, its body read.
func (p *serviceProcess) do(method, path, contentType string, body []byte, v any) (*http.Response, []byte) {
	p.t.Helper()
	req, err := http.NewRequest(method, p.url()+path, bytes.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	if v != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, v); err != nil {
			p.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return resp, raw
}

// submit posts a build request and returns the queued record.
func (p *serviceProcess) submit(body string) buildrecord.Build {
	p.t.Helper()
	var b buildrecord.Build
	resp, raw := p.do("POST", "/api/v1/builds", "application/json", []byte(body), &b)
	if resp.StatusCode != http.StatusAccepted {
		p.t.Fatalf("POST /api/v1/builds %s = %s: %s", body, resp.Status, raw)
	}
	return b
}

func (p *serviceProcess) get(id string) buildrecord.Build {
	p.t.Helper()
	var b buildrecord.Build
	resp, raw := p.do("GET", "/api/v1/builds/"+id, "", nil, &b)
	if resp.StatusCode != http.StatusOK {
		p.t.Fatalf("GET build %s = %s: %s", id, resp.Status, raw)
	}
	return b
}

// buildLog is a build's log as text.
func (p *serviceProcess) buildLog(id string) string {
	p.t.Helper()
	_, raw := p.do("GET", "/api/v1/builds/"+id+"/log", "", nil, nil)
	return string(raw)
}

// waitFor polls a build (backing off, within a deadline) until done
// says it is what the test waits for, and returns it.
func (p *serviceProcess) waitFor(id, what string, done func(buildrecord.Build) bool) buildrecord.Build {
	p.t.Helper()
	wait := 5 * time.Millisecond
	for deadline := time.Now().Add(4 * time.Minute); time.Now().Before(deadline); wait = min(2*wait, 250*time.Millisecond) {
		if b := p.get(id); done(b) {
			return b
		}
		time.Sleep(wait)
	}
	p.t.Fatalf("build %s: not %s within 4 minutes; log:\n%s", id, what, p.buildLog(id))
	return buildrecord.Build{}
}

// waitFinal waits for a build to finish.
func (p *serviceProcess) waitFinal(id string) buildrecord.Build {
	p.t.Helper()
	return p.waitFor(id, "finished", func(b buildrecord.Build) bool { return b.State.Final() })
}

// succeeded waits for a build and fails the test unless it succeeded.
func (p *serviceProcess) succeeded(id string) buildrecord.Build {
	p.t.Helper()
	b := p.waitFinal(id)
	if b.State != buildrecord.Succeeded || len(b.Results) == 0 {
		p.t.Fatalf("build %s %s: %+v\nlog:\n%s", id, b.State, b.Error, p.buildLog(id))
	}
	return b
}

// catalog is the repositories of the server's registry.
func (p *serviceProcess) catalog() []string {
	p.t.Helper()
	var c struct{ Repositories []string }
	p.do("GET", "/v2/_catalog", "", nil, &c)
	return c.Repositories
}

// vmHWM is the server's peak resident memory in bytes.
func (p *serviceProcess) vmHWM() int64 {
	p.t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		p.t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				p.t.Fatal(err)
			}
			return kb << 10
		}
	}
	p.t.Fatal("no VmHWM in /proc/PID/status")
	return 0
}

// makeWritable lets a module cache (read-only, as the go command leaves
// it) be removed.
func makeWritable(dir string) {
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
}
