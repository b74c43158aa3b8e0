package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kilnbuild/kiln/internal/buildrecord"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// helloBuild is the request of a build of testutil.HelloModule's
// ./cmd/hello from a workspace directory named ws.
func helloBuild(ws string) string {
	return `{"source":{"workspace":"` + ws + `"},"packages":["./cmd/hello"],"platforms":["linux/amd64"]}`
}

// slowModule is a module whose ./cmd/slow takes the compiler tens of
// seconds of CPU on this machine (one package of funcs generated
// functions, each with a loop; about 2 s a 3,000 here): a build that is
// surely still compiling when a test acts on it. nonce keeps the build
// cache from knowing it.
func slowModule(funcs int, nonce string) map[string]string {
	var b strings.Builder
	fmt.Fprintf(&b, "package main\n\nconst nonce = %q\n\n", nonce)
	for i := range funcs {
		fmt.Fprintf(&b, "func f%d(x int) int {\n\tfor i := 0; i < x; i++ {\n\t\tif x%%%d == i {\n\t\t\tx += i * %d\n\t\t} else {\n\t\t\tx ^= x >> %d\n\t\t}\n\t}\n\treturn x\n}\n\n", i, i+3, i, i%13+1)
	}
	b.WriteString("var fs = []func(int) int{")
	for i := range funcs {
		fmt.Fprintf(&b, "f%d,", i)
	}
	b.WriteString("}\n")
	return map[string]string{
		"go.mod":           "module example.com/slow\n\ngo 1.22\n",
		"cmd/slow/big.go":  b.String(),
		"cmd/slow/main.go": "package main\n\nimport \"fmt\"\n\nfunc main() {\n\ts := 0\n\tfor _, f := range fs {\n\t\ts += f(3)\n\t}\n\tfmt.Println(s, nonce)\n}\n",
	}
}

const slowBuild = `{"source":{"workspace":"slow"},"packages":["./cmd/slow"],"platforms":["linux/amd64"]}`

// compiling waits until the go tool's compiler runs for a build of p and
// returns its process ID.
func (p *serviceProcess) compiling(id string) int {
	p.t.Helper()
	builds := filepath.Join(p.data, "builds")
	var pid int
	p.waitFor(id, "compiling", func(b buildrecord.Build) bool {
		if b.State.Final() {
			p.t.Fatalf("build %s ended (%s) before it was seen compiling: make slowModule slower", id, b.State)
		}
		for _, q := range processesIn(builds) {
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", q)); strings.TrimSpace(string(comm)) == "compile" {
				pid = q
				return true
			}
		}
		return false
	})
	return pid
}

// TestServiceWorkspaceRunsInPodman builds a workspace source, pulls the
// image back from /v2/ with ggcr (it validates) and with podman, and runs
// it.
func TestServiceWorkspaceRunsInPodman(t *testing.T) {
	p := startService(t, nil)
	p.workspace("hello", testutil.HelloModule)
	b := p.succeeded(p.submit(helloBuild("hello")).ID)
	if b.Source.Kind != "workspace" || b.Source.Ref != "hello" {
		t.Errorf("source recorded as %+v", b.Source)
	}
	ref := b.Results[0].Ref
	if !strings.HasPrefix(ref, p.host()+"/") {
		t.Fatalf("ref %s is not in the server's own registry %s", ref, p.host())
	}
	img, err := remote.Image(mustRef(t, ref))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("the image pulled from /v2/ does not validate: %v", err)
	}
	if d, _ := img.Digest(); d.String() != b.Results[0].Digest {
		t.Errorf("pulled %s, the record says %s", d, b.Results[0].Digest)
	}

	testutil.RequireTool(t, "podman")
	testutil.RequireTool(t, "runc")
	podman(t, "pull", "--tls-verify=false", "--platform", "linux/amd64", ref)
	t.Cleanup(func() { exec.Command("podman", "rmi", "-f", ref).Run() })
	if out := podman(t, runFlags(ref)...); out != "hello dev" {
		t.Errorf("the image printed %q, want %q", out, "hello dev")
	}
}

// TestServiceRecordSurvivesRestart: a finished build's record, stopped
// with SIGTERM and started again on the same --data, reads the same.
func TestServiceRecordSurvivesRestart(t *testing.T) {
	p := startService(t, nil)
	p.workspace("hello", testutil.HelloModule)
	before := p.succeeded(p.submit(helloBuild("hello")).ID)
	logBefore := p.buildLog(before.ID)
	p.stop()
	p.start()
	after := p.get(before.ID)
	if !reflect.DeepEqual(normalize(before), normalize(after)) {
		t.Errorf("the record changed across a restart:\nbefore %+v\nafter  %+v", before, after)
	}
	if got := p.buildLog(before.ID); got != logBefore {
		t.Errorf("the log changed across a restart:\nbefore %q\nafter  %q", logBefore, got)
	}
	var list struct{ Builds []buildrecord.Build }
	p.do("GET", "/api/v1/builds", "", nil, &list)
	if len(list.Builds) != 1 || list.Builds[0].ID != before.ID {
		t.Errorf("GET /builds after a restart lists %d builds, want the one", len(list.Builds))
	}
}

// normalize makes times comparable with DeepEqual (monotonic readings
// and locations differ after a JSON round trip).
func normalize(b buildrecord.Build) buildrecord.Build {
	times := map[buildrecord.State]time.Time{}
	for s, t := range b.Times {
		times[s] = t.UTC().Round(0)
	}
	b.Times = times
	return b
}

// TestServiceCancelStopsCompile cancels a build while the compiler runs:
// the build ends cancelled, the compiler is stopped long before it could
// have finished, and nothing is pushed.
func TestServiceCancelStopsCompile(t *testing.T) {
	p := startService(t, nil)
	p.workspace("slow", slowModule(30000, t.Name()+time.Now().String()))
	id := p.submit(slowBuild).ID
	compiler := p.compiling(id)
	resp, raw := p.do("POST", "/api/v1/builds/"+id+"/cancel", "", nil, nil)
	if resp.StatusCode >= 300 {
		t.Fatalf("cancel = %s: %s", resp.Status, raw)
	}
	b := p.waitFinal(id)
	if b.State != buildrecord.Cancelled {
		t.Fatalf("build %s after cancel, want cancelled: %+v", b.State, b.Error)
	}
	if len(b.Results) != 0 {
		t.Errorf("a cancelled build has results: %+v", b.Results)
	}
	if repos := p.catalog(); len(repos) != 0 {
		t.Errorf("a cancelled build pushed %v", repos)
	}
	// The compiler needs minutes of CPU for this package: gone within
	// seconds means the cancel stopped it.
	deadline := time.Now().Add(15 * time.Second)
	for alive(compiler) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if alive(compiler) {
		t.Errorf("the compiler (pid %d) still runs after the build was cancelled", compiler)
	}
	if left := processesIn(filepath.Join(p.data, "builds")); len(left) != 0 {
		t.Errorf("processes %v still run in the cancelled build's directory", left)
	}
	if entries, _ := os.ReadDir(filepath.Join(p.data, "builds")); len(entries) != 0 {
		t.Errorf("the cancelled build's directory was left: %v", entries)
	}
}

// alive reports whether a process runs (a zombie does not).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || len(s) < i+3 || s[i+2] != 'Z'
}

// TestServiceSIGKILLLeavesInterrupted kills the server while a build
// compiles: after a restart the build is interrupted, with a time, and
// its retry succeeds with the digest of an uninterrupted build.
func TestServiceSIGKILLLeavesInterrupted(t *testing.T) {
	p := startService(t, nil)
	p.workspace("slow", slowModule(4000, t.Name()+time.Now().String()))
	id := p.submit(slowBuild).ID
	p.compiling(id)
	p.kill()
	killLeftovers(p.data) // what a container runtime does to the pod's processes
	p.start()
	b := p.get(id)
	if b.State != buildrecord.Interrupted || b.Times[buildrecord.Interrupted].IsZero() {
		t.Fatalf("after SIGKILL and a restart the build is %s (times %v), want interrupted with its time", b.State, b.Times)
	}
	var retry buildrecord.Build
	resp, raw := p.do("POST", "/api/v1/builds/"+id+"/retry", "", nil, &retry)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("retry = %s: %s", resp.Status, raw)
	}
	if retry.RetryOf != id || retry.ID == id {
		t.Errorf("retry record %s retryOf %q, want a new build linked to %s", retry.ID, retry.RetryOf, id)
	}
	retried := p.succeeded(retry.ID)
	again := p.succeeded(p.submit(slowBuild).ID)
	if retried.Results[0].Digest != again.Results[0].Digest {
		t.Errorf("the retry built %s, an uninterrupted build %s", retried.Results[0].Digest, again.Results[0].Digest)
	}
	img, err := remote.Image(mustRef(t, retried.Results[0].Ref))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatal(err)
	}
}
