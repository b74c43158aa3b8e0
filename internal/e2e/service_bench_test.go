package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/buildrecord"
	"github.com/kilnbuild/kiln/internal/records"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// The build service's speed goals (docs/benchmarks.md, "Build service").
// They alternate runs and take medians and percentiles, which go test
// -bench does not, so they are tests that run only when asked:
//
//	KILN_BENCH=1 go test -run TestBenchService -v ./internal/e2e

func benchOnly(t *testing.T) {
	if os.Getenv("KILN_BENCH") != "1" {
		t.Skip("a measurement: set KILN_BENCH=1 to run it")
	}
}

// quantile is the q-quantile (nearest rank) of ds.
func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s)) + 0.5)
	return s[min(max(i-1, 0), len(s)-1)]
}

// streamBuild follows a build's log over server-sent events until the
// stream ends (with the build's final state); first is when the first
// log line arrived.
func (p *serviceProcess) streamBuild(id string) (first, end time.Time) {
	p.t.Helper()
	req, _ := http.NewRequest("GET", p.url()+"/api/v1/builds/"+id+"/log", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if first.IsZero() && strings.HasPrefix(sc.Text(), "data:") {
			first = time.Now()
		}
	}
	return first, time.Now()
}

// TestBenchServiceVsKilnBuild: a build through the service, of a
// workspace source and of an uploaded archive (uploaded each time, as
// kiln build --remote does), against kiln build (the CLI, as a process)
// of the same source to the same registry, warm caches, rotated, median
// of 5.
func TestBenchServiceVsKilnBuild(t *testing.T) {
	benchOnly(t)
	p := startService(t, nil)
	ws := p.workspace("hello", testutil.HelloModule)
	kilnBin := filepath.Join(serverBinary.dir, "kiln")
	gobuild := exec.Command("go", "build", "-o", kilnBin, "./cmd/kiln")
	gobuild.Dir = repoRoot(t)
	if out, err := gobuild.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/kiln: %v\n%s", err, out)
	}
	_, kilnCache := serviceCaches(t)
	archive := tarGz(t, testutil.HelloModule)
	digests := map[string]string{}
	viaCLI := func() time.Duration {
		cmd := exec.Command(kilnBin, "build", "--platform", "linux/amd64", "--output", p.host()+"/direct", "./cmd/hello")
		cmd.Dir = ws
		cmd.Env = append(os.Environ(), "KILN_CACHE="+kilnCache, "KO_DOCKER_REPO=", "KO_DEFAULTBASEIMAGE=")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		out, err := cmd.Output()
		d := time.Since(start)
		if err != nil {
			t.Fatalf("kiln build: %v\n%s", err, stderr.String())
		}
		_, digests["kiln build"], _ = strings.Cut(strings.TrimSpace(string(out)), "@")
		return d
	}
	viaService := func(arm string) time.Duration {
		start := time.Now()
		source := `{"workspace":"hello"}`
		if arm == "upload" {
			var up struct{ Upload string }
			if resp, raw := p.do("POST", "/api/v1/sources", "application/gzip", archive, &up); resp.StatusCode != http.StatusCreated {
				t.Fatalf("POST /api/v1/sources = %s: %s", resp.Status, raw)
			}
			source = `{"upload":"` + up.Upload + `"}`
		}
		id := p.submit(`{"source":` + source + `,` + helloPackages + `}`).ID
		_, end := p.streamBuild(id)
		b := p.get(id)
		if b.State != buildrecord.Succeeded {
			t.Fatalf("service build %s", b.State)
		}
		digests["service "+arm] = b.Results[0].Digest
		return end.Sub(start)
	}
	viaCLI() // warm all
	viaService("workspace")
	viaService("upload")
	var cli, svc, upload []time.Duration
	for i := range 5 {
		// Rotate the order, so that no arm always follows another.
		for j := range 3 {
			switch (i + j) % 3 {
			case 0:
				cli = append(cli, viaCLI())
			case 1:
				svc = append(svc, viaService("workspace"))
			case 2:
				upload = append(upload, viaService("upload"))
			}
		}
	}
	for _, arm := range []string{"service workspace", "service upload"} {
		if digests[arm] != digests["kiln build"] {
			t.Errorf("the %s build made %s, kiln build %s", arm, digests[arm], digests["kiln build"])
		}
	}
	mc, ms, mu := quantile(cli, 0.5), quantile(svc, 0.5), quantile(upload, 0.5)
	t.Logf("kiln build %v\nservice, workspace %v\nservice, upload %v", cli, svc, upload)
	t.Logf("medians: kiln build %v, service (workspace) %v, service (upload) %v; service / kiln build: workspace %.2f×, upload %.2f×",
		mc, ms, mu, float64(ms)/float64(mc), float64(mu)/float64(mc))
}

// TestBenchServiceListBuilds: GET /builds (the first page of 50) with
// 10,000 records and two builds compiling, p50 and p99 of 1,000 requests.
func TestBenchServiceListBuilds(t *testing.T) {
	benchOnly(t)
	p := newService(t, nil, "--max-builds", "2")
	ctx := context.Background()
	db, err := records.Open(ctx, filepath.Join(p.data, "records.db"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10000 {
		b := &buildrecord.Build{Request: []byte(`{"packages":["./cmd/hello"],"platforms":["linux/amd64"],"source":{"workspace":"hello"},"timeout":"30m0s"}`),
			Packages: []string{"./cmd/hello"}, Source: buildrecord.Source{Kind: "workspace", Ref: "hello"}, ServerVersion: "devel"}
		if err := db.Create(ctx, b); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Transition(ctx, b.ID, buildrecord.Running, time.Now(), nil); err != nil {
			t.Fatal(err)
		}
		digest := fmt.Sprintf("sha256:%064x", i)
		_, err := db.Transition(ctx, b.ID, buildrecord.Succeeded, time.Now(), func(u *buildrecord.Build) {
			u.Results = []buildrecord.Result{{ImportPath: "example.com/hello/cmd/hello", Ref: "127.0.0.1:8080/hello@" + digest, Digest: digest,
				Images: []buildrecord.Image{{Platform: "linux/amd64", Digest: digest, Bytes: 1 << 20}}}}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	p.start()
	var ids []string
	for _, ws := range []string{"slow1", "slow2"} {
		p.workspace(ws, slowModule(30000, t.Name()+ws+time.Now().String()))
		ids = append(ids, p.submit(strings.Replace(slowBuild, `"slow"`, `"`+ws+`"`, 1)).ID)
	}
	for _, id := range ids {
		p.compiling(id)
	}
	var ds []time.Duration
	for range 1000 {
		start := time.Now()
		resp, raw := p.do("GET", "/api/v1/builds", "", nil, nil)
		ds = append(ds, time.Since(start))
		if resp.StatusCode != http.StatusOK || len(raw) < 10000 {
			t.Fatalf("GET /builds = %s, %d bytes", resp.Status, len(raw))
		}
	}
	for _, id := range ids {
		if b := p.get(id); b.State != buildrecord.Running {
			t.Errorf("build %s ended (%s) before the measurement did: make it slower", id, b.State)
		}
		p.do("POST", "/api/v1/builds/"+id+"/cancel", "", nil, nil)
	}
	t.Logf("GET /builds, 10,000 records, 2 builds compiling, 1,000 requests: p50 %v, p99 %v, max %v",
		quantile(ds, 0.5), quantile(ds, 0.99), quantile(ds, 1))
}

// TestBenchServiceFirstLogLine: the time from submitting a build (a
// slot free) to its first log line reaching a client that follows the
// log, 40 builds one after another.
func TestBenchServiceFirstLogLine(t *testing.T) {
	benchOnly(t)
	p := startService(t, nil)
	p.workspace("hello", testutil.HelloModule)
	p.succeeded(p.submit(helloBuild("hello")).ID) // warm
	var ds []time.Duration
	for range 40 {
		start := time.Now()
		id := p.submit(helloBuild("hello")).ID
		first, _ := p.streamBuild(id)
		if first.IsZero() {
			t.Fatalf("build %s streamed no log line", id)
		}
		ds = append(ds, first.Sub(start))
	}
	t.Logf("submit → first log line, 40 builds: p50 %v, p90 %v, p99 %v, max %v", quantile(ds, 0.5), quantile(ds, 0.9), quantile(ds, 0.99), quantile(ds, 1))
}
