package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kilnbuild/kiln/internal/buildrecord"
)

func TestSubmitRunsABuild(t *testing.T) {
	e := newEnv(t, nil)
	b := e.mustSubmit(okRequest)
	if b.ID == "" || b.State != buildrecord.Queued || b.Times[buildrecord.Queued].IsZero() || b.ServerVersion != "test" {
		t.Errorf("202 record %+v: want an ID, queued with its time, and the server's version", b)
	}
	if !slices.Equal(b.Packages, []string{"./cmd/app"}) || b.Source.Kind != "module" || b.Source.Revision != "v1.0.0" {
		t.Errorf("record packages %v source %+v: want the checked packages and the resolved source", b.Packages, b.Source)
	}
	var stored map[string]json.RawMessage
	json.Unmarshal(b.Request, &stored)
	if string(stored["timeout"]) != `"30m0s"` || stored["source"] == nil || stored["packages"] == nil {
		t.Errorf("stored request %s: want source, packages and the effective timeout", b.Request)
	}
	done := e.rec.wait(b.ID, buildrecord.Succeeded)
	if len(done.Results) != 1 || done.Error != nil {
		t.Errorf("succeeded record: results %v error %v", done.Results, done.Error)
	}
	for _, s := range []buildrecord.State{buildrecord.Queued, buildrecord.Running, buildrecord.Succeeded} {
		if done.Times[s].IsZero() {
			t.Errorf("no time for %s", s)
		}
	}
	if done.Phases.QueueWait < 0 || done.Phases.SourceFetch <= 0 || done.Phases.Compile <= 0 {
		t.Errorf("phases %+v: want source fetch and the runner's compile", done.Phases)
	}
	e.tempLeft()
	_, text := e.do("GET", "/api/v1/builds/"+b.ID+"/log", "", nil)
	for _, want := range []string{"fetching module source example.com/app@v1.0.0", "compiling in ./src", "build succeeded"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("log lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(string(text), e.tmp) {
		t.Errorf("log shows the server's build directory:\n%s", text)
	}
	// Every slog line about a build names it.
	for _, line := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		var rec map[string]any
		json.Unmarshal([]byte(line), &rec)
		if msg, _ := rec["msg"].(string); strings.HasPrefix(msg, "build") && rec["build"] != b.ID {
			t.Errorf("slog line without the build id: %s", line)
		}
	}
	resp, body := e.do("GET", "/api/v1/builds/"+b.ID, "", nil)
	var got buildrecord.Build
	if resp.StatusCode != 200 || json.Unmarshal(body, &got) != nil || got.State != buildrecord.Succeeded {
		t.Errorf("GET build: %d %s", resp.StatusCode, body)
	}
}

func TestSubmitMultipart(t *testing.T) {
	e := newEnv(t, nil)
	ct, body := multipartBody(t, "request", `{"source": {"subdir": "svc"}, "packages": ["./cmd/app"]}`, "archive", gz)
	resp, b := e.do("POST", "/api/v1/builds", ct, body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var rec buildrecord.Build
	json.Unmarshal(b, &rec)
	if rec.Source.Kind != "upload" || rec.Source.Ref != "u1" || rec.Source.Subdir != "svc" {
		t.Errorf("source %+v, want upload u1 in svc", rec.Source)
	}
	if string(e.src.uploads["u1"]) != gz {
		t.Errorf("upload %q not saved whole", e.src.uploads["u1"])
	}
	e.rec.wait(rec.ID, buildrecord.Succeeded)
}

func TestUploadThenBuild(t *testing.T) {
	e := newEnv(t, nil)
	resp, b := e.do("POST", "/api/v1/sources", "application/gzip", strings.NewReader(gz))
	var up struct{ Upload string }
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &up) != nil || up.Upload == "" {
		t.Fatalf("POST /sources: %d %s", resp.StatusCode, b)
	}
	rec := e.mustSubmit(fmt.Sprintf(`{"source": {"upload": %q}, "packages": ["./cmd/app"]}`, up.Upload))
	e.rec.wait(rec.ID, buildrecord.Succeeded)
}

// A failed build keeps one line as its message and the rest as output,
// without the server's paths.
func TestFailedBuild(t *testing.T) {
	e := newEnv(t, nil)
	var dir string
	e.run.run = func(ctx context.Context, log io.Writer) ([]buildrecord.Result, error) {
		dir = e.src.fetched[0]
		return nil, fmt.Errorf("compiling ./cmd/app: exit status 1\n%s/src/cmd/app/main.go:3:2: undefined: x", dir)
	}
	b := e.mustSubmit(okRequest)
	done := e.rec.wait(b.ID, buildrecord.Failed)
	want := buildrecord.Error{Message: "compiling ./cmd/app: exit status 1", Output: "./src/cmd/app/main.go:3:2: undefined: x"}
	if done.Error == nil || *done.Error != want {
		t.Errorf("error %+v, want %+v", done.Error, want)
	}
	e.tempLeft()
}

func TestFetchFailure(t *testing.T) {
	e := newEnv(t, nil)
	e.src.fetchErr = errors.New("cloning into /srv/kiln/git/abc: connection refused")
	b := e.mustSubmit(okRequest)
	done := e.rec.wait(b.ID, buildrecord.Failed)
	if done.Error == nil || strings.Contains(done.Error.Message, "/srv/") {
		t.Errorf("error %+v: want a failure without the server's path", done.Error)
	}
	if e.run.count() != 0 {
		t.Error("the build ran without a source")
	}
}

// blocked makes the runner wait until release; started gets a value as
// each run starts.
func blocked(e *env) (release chan struct{}, started chan string) {
	release, started = make(chan struct{}), make(chan string, 100)
	e.run.run = blockUntil(release, started)
	return release, started
}

func TestCancelQueued(t *testing.T) {
	e := newEnv(t, nil)
	release, started := blocked(e)
	first := e.mustSubmit(okRequest)
	<-started
	second := e.mustSubmit(okRequest)
	resp, b := e.do("POST", "/api/v1/builds/"+second.ID+"/cancel", "", nil)
	var got buildrecord.Build
	json.Unmarshal(b, &got)
	if resp.StatusCode != http.StatusOK || got.State != buildrecord.Cancelled {
		t.Fatalf("cancel of a queued build: %d %s", resp.StatusCode, b)
	}
	close(release)
	e.rec.wait(first.ID, buildrecord.Succeeded)
	if n := e.run.count(); n != 1 {
		t.Errorf("%d runs, want 1: the cancelled build ran", n)
	}
	resp, b = e.do("POST", "/api/v1/builds/"+second.ID+"/cancel", "", nil)
	if resp.StatusCode != http.StatusConflict || decodeError(t, b).Error.Code != "conflict" {
		t.Errorf("cancel of a cancelled build: %d %s, want 409 conflict", resp.StatusCode, b)
	}
}

func TestCancelRunning(t *testing.T) {
	e := newEnv(t, nil)
	_, started := blocked(e)
	b := e.mustSubmit(okRequest)
	<-started
	resp, body := e.do("POST", "/api/v1/builds/"+b.ID+"/cancel", "", nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("cancel of a running build: %d %s, want 202", resp.StatusCode, body)
	}
	done := e.rec.wait(b.ID, buildrecord.Cancelled)
	if done.Error == nil || done.Error.Message != "build cancelled" || done.Times[buildrecord.Cancelled].IsZero() {
		t.Errorf("cancelled record %+v", done)
	}
	e.tempLeft()
}

func TestTimeout(t *testing.T) {
	e := newEnv(t, nil)
	blocked(e)
	b := e.mustSubmit(`{"source": {"module": "x@v1"}, "packages": ["./a"], "timeout": "1ns"}`)
	done := e.rec.wait(b.ID, buildrecord.TimedOut)
	if done.Error == nil || !strings.Contains(done.Error.Message, "timed out") {
		t.Errorf("timed out record error %+v", done.Error)
	}
}

func TestRetry(t *testing.T) {
	e := newEnv(t, nil)
	fail := true
	var mu sync.Mutex
	e.run.run = func(ctx context.Context, log io.Writer) ([]buildrecord.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			fail = false
			return nil, errors.New("flaky")
		}
		return []buildrecord.Result{{ImportPath: "example.com/app"}}, nil
	}
	old := e.mustSubmit(okRequest)
	e.rec.wait(old.ID, buildrecord.Failed)
	resolved, _ := e.src.counts()
	resp, b := e.do("POST", "/api/v1/builds/"+old.ID+"/retry", "", nil)
	var retry buildrecord.Build
	json.Unmarshal(b, &retry)
	if resp.StatusCode != http.StatusAccepted || retry.RetryOf != old.ID || retry.ID == old.ID {
		t.Fatalf("retry: %d %s", resp.StatusCode, b)
	}
	if string(retry.Request) != string(old.Request) || retry.Source != old.Source || !slices.Equal(retry.Packages, old.Packages) {
		t.Errorf("retry %+v does not repeat %+v", retry, old)
	}
	if again, _ := e.src.counts(); again != resolved {
		t.Error("retry resolved the source again: it must build the resolved one")
	}
	e.rec.wait(retry.ID, buildrecord.Succeeded)
}

func TestRetryUnfinished(t *testing.T) {
	e := newEnv(t, nil)
	_, started := blocked(e)
	b := e.mustSubmit(okRequest)
	<-started
	resp, body := e.do("POST", "/api/v1/builds/"+b.ID+"/retry", "", nil)
	if resp.StatusCode != http.StatusConflict || decodeError(t, body).Error.Code != "conflict" {
		t.Errorf("retry of a running build: %d %s, want 409", resp.StatusCode, body)
	}
}

func TestPagination(t *testing.T) {
	e := newEnv(t, nil)
	var ids []string
	for range 7 {
		b := e.mustSubmit(okRequest)
		e.rec.wait(b.ID, buildrecord.Succeeded)
		ids = append(ids, b.ID)
	}
	slices.Reverse(ids) // newest first
	var got []string
	path := "/api/v1/builds?limit=3"
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("pagination does not end")
		}
		resp, b := e.do("GET", path, "", nil)
		var page listBody
		if resp.StatusCode != 200 || json.Unmarshal(b, &page) != nil {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		for _, b := range page.Builds {
			got = append(got, b.ID)
		}
		if page.Next == "" {
			break
		}
		path = "/api/v1/builds?limit=3&cursor=" + page.Next
	}
	if !slices.Equal(got, ids) {
		t.Errorf("pages gave %v, want %v", got, ids)
	}
	_, b := e.do("GET", "/api/v1/builds?state=failed&source=module&package=./cmd/app", "", nil)
	if string(b) != `{"builds":[]}`+"\n" {
		t.Errorf("an empty filter answered %s, want an empty list", b)
	}
}

func TestQueueFull(t *testing.T) {
	e := newEnv(t, func(e *env, cfg *Config) { cfg.MaxQueue = 1 })
	release, started := blocked(e)
	defer close(release)
	e.mustSubmit(okRequest)
	<-started
	e.mustSubmit(okRequest) // waits
	resp, b := e.do("POST", "/api/v1/builds", "application/json", strings.NewReader(okRequest))
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("full queue: %d Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	if decodeError(t, b).Error.Code != "queue_full" {
		t.Errorf("code: %s", b)
	}
	if n := e.rec.count(); n != 2 {
		t.Errorf("%d records, want 2", n)
	}
}

// Load: 30 submits at once against 10 places and 2 workers. The accepted
// all finish, the rest are 429, and the records are exactly the accepted.
func TestLoad(t *testing.T) {
	e := newEnv(t, func(e *env, cfg *Config) { cfg.MaxQueue, cfg.MaxRunning = 10, 2 })
	release, _ := blocked(e)
	var mu sync.Mutex
	var accepted []string
	codes := map[int]int{}
	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			code, b := e.submit(okRequest)
			mu.Lock()
			defer mu.Unlock()
			codes[code]++
			if code == http.StatusAccepted {
				accepted = append(accepted, b.ID)
			}
		})
	}
	wg.Wait()
	close(release)
	if codes[202]+codes[429] != 30 || codes[202] < 10 || codes[202] > 12 {
		t.Errorf("answers %v: want 10 to 12 accepted (10 waiting, up to 2 running) and the rest 429", codes)
	}
	slices.Sort(accepted)
	if len(slices.Compact(slices.Clone(accepted))) != len(accepted) {
		t.Errorf("duplicate IDs among %v", accepted)
	}
	for _, id := range accepted {
		e.rec.wait(id, buildrecord.Succeeded)
	}
	page, _ := e.rec.List(context.Background(), buildrecord.Filter{Limit: 500})
	var stored []string
	for _, b := range page.Builds {
		stored = append(stored, b.ID)
	}
	slices.Sort(stored)
	if !slices.Equal(stored, accepted) {
		t.Errorf("records %v, want exactly the accepted %v", stored, accepted)
	}
	e.tempLeft()
}

// A panicking runner fails its build, not the server.
func TestRunnerPanicFailsTheBuild(t *testing.T) {
	e := newEnv(t, nil)
	e.run.run = func(ctx context.Context, log io.Writer) ([]buildrecord.Result, error) {
		panic("runner bug")
	}
	b := e.mustSubmit(okRequest)
	done := e.rec.wait(b.ID, buildrecord.Failed)
	if done.Error == nil || done.Error.Message != "internal error in the build service" {
		t.Errorf("error %+v", done.Error)
	}
	if !strings.Contains(e.logs.String(), "runner bug") {
		t.Error("the panic is not in the server's log")
	}
	if err := e.svc.Ready(context.Background()); err != nil {
		t.Errorf("Ready after a panicking build: %v", err)
	}
	e.tempLeft()
}
