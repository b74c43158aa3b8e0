package service

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/buildrecord"
)

// After a restart, builds that were running are interrupted and those
// that were queued run again, in order, even past MaxQueue; an
// interrupted build can be retried.
func TestRestartRecovers(t *testing.T) {
	req, _ := parseRequest([]byte(okRequest), DefaultBuildTimeout)
	stored, _ := req.encode()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	old := func(state buildrecord.State) *buildrecord.Build {
		return &buildrecord.Build{State: state, Times: map[buildrecord.State]time.Time{buildrecord.Queued: at}, Request: stored,
			Packages: []string{"./cmd/app"}, Source: buildrecord.Source{Kind: "module", Ref: "example.com/app@v1.0.0"}}
	}
	var ran []string
	e := newEnv(t, func(e *env, cfg *Config) {
		cfg.MaxQueue = 1
		e.rec.put(old(buildrecord.Running)) // b000001
		e.rec.put(old(buildrecord.Queued))  // b000002
		e.rec.put(old(buildrecord.Queued))  // b000003
		e.rec.put(old(buildrecord.Succeeded))
		e.run.run = func(ctx context.Context, log io.Writer) ([]buildrecord.Result, error) {
			ran = append(ran, "ran") // MaxRunning 1: one at a time
			return nil, nil
		}
	})
	cut := e.rec.wait("b000001", buildrecord.Interrupted)
	if cut.Times[buildrecord.Interrupted].IsZero() {
		t.Error("interrupted without a time")
	}
	second := e.rec.wait("b000002", buildrecord.Succeeded)
	third := e.rec.wait("b000003", buildrecord.Succeeded)
	if third.Times[buildrecord.Running].Before(second.Times[buildrecord.Running]) {
		t.Error("the queued builds ran out of order")
	}
	if b, _ := e.rec.Get(context.Background(), "b000004"); b.State != buildrecord.Succeeded {
		t.Errorf("a finished build changed: %s", b.State)
	}
	resp, body := e.do("POST", "/api/v1/builds/b000001/retry", "", nil)
	var retry buildrecord.Build
	json.Unmarshal(body, &retry)
	if resp.StatusCode != http.StatusAccepted || retry.RetryOf != "b000001" {
		t.Fatalf("retry of an interrupted build: %d %s", resp.StatusCode, body)
	}
	e.rec.wait(retry.ID, buildrecord.Succeeded)
	if len(ran) != 3 {
		t.Errorf("%d runs, want 3", len(ran))
	}
}

// Shutdown with the grace over cuts a running build (interrupted) and
// leaves a queued one queued for the next start; then the API refuses
// builds and Ready fails.
func TestShutdownMarksCutBuildsInterrupted(t *testing.T) {
	e := newEnv(t, nil)
	_, started := blocked(e)
	running := e.mustSubmit(okRequest)
	<-started
	queued := e.mustSubmit(okRequest)
	s := e.stream(queued.ID, "")

	over, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.svc.Shutdown(over); err != nil {
		t.Fatal(err)
	}
	b, _ := e.rec.Get(context.Background(), running.ID)
	if b.State != buildrecord.Interrupted || b.Error == nil || !strings.Contains(b.Error.Message, "retry") {
		t.Errorf("cut build: %s %+v, want interrupted with a hint to retry", b.State, b.Error)
	}
	if b, _ := e.rec.Get(context.Background(), queued.ID); b.State != buildrecord.Queued {
		t.Errorf("queued build became %s, want it left queued", b.State)
	}
	if _, ok := s.next(); ok {
		t.Error("a log stream goes on after Shutdown")
	}
	resp, body := e.do("POST", "/api/v1/builds", "application/json", strings.NewReader(okRequest))
	if resp.StatusCode != http.StatusServiceUnavailable || decodeError(t, body).Error.Code != "unavailable" {
		t.Errorf("submit after Shutdown: %d %s, want 503", resp.StatusCode, body)
	}
	if err := e.svc.Ready(context.Background()); err == nil {
		t.Error("Ready after Shutdown")
	}
	e.tempLeft()
}

// Within its grace, Shutdown lets a running build finish.
func TestShutdownWaitsForRunningBuilds(t *testing.T) {
	e := newEnv(t, nil)
	release, started := blocked(e)
	b := e.mustSubmit(okRequest)
	<-started
	done := make(chan error)
	go func() { done <- e.svc.Shutdown(context.Background()) }()
	for e.svc.q.Alive() {
		runtime.Gosched()
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, _ := e.rec.Get(context.Background(), b.ID); got.State != buildrecord.Succeeded {
		t.Errorf("state %s, want succeeded", got.State)
	}
}

func TestAccess(t *testing.T) {
	e := newEnv(t, func(e *env, cfg *Config) { cfg.Tokens = []string{"one", " two\n", ""}; cfg.PublicRead = true })
	resp, body := e.do("POST", "/api/v1/builds", "application/json", strings.NewReader(okRequest), "Authorization", "Bearer two")
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("a valid token: %d %s", resp.StatusCode, body)
	}
	if resp, _ := e.do("GET", "/api/v1/builds", "", nil); resp.StatusCode != 200 {
		t.Errorf("a public read without a token: %d", resp.StatusCode)
	}
	if resp, _ := e.do("POST", "/api/v1/builds", "application/json", strings.NewReader(okRequest), "Authorization", "Bearer "); resp.StatusCode != 401 {
		t.Errorf("an empty token: %d, want 401", resp.StatusCode)
	}

	open := newEnv(t, func(e *env, cfg *Config) { cfg.PublicRead = true })
	for _, c := range []struct {
		method string
		want   int
	}{{"GET", 200}, {"POST", 403}} {
		req := httptest.NewRequest(c.method, "/api/v1/builds", strings.NewReader(okRequest))
		req.RemoteAddr = "[2001:db8::1]:4000"
		req.Header.Set("Content-Type", "application/json")
		rr := httptest.NewRecorder()
		open.svc.Handler().ServeHTTP(rr, req)
		if rr.Code != c.want {
			t.Errorf("%s beyond loopback, no tokens, public reads: %d, want %d", c.method, rr.Code, c.want)
		}
	}
}

func TestReadyAndMetrics(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.svc.Ready(context.Background()); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	b := e.mustSubmit(okRequest)
	e.rec.wait(b.ID, buildrecord.Succeeded)
	rr := httptest.NewRecorder()
	e.svc.MetricsHandler().ServeHTTP(rr, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`kiln_builds_total{outcome="succeeded"} 1`,
		`kiln_api_request_duration_seconds_count{code="202",route="POST /builds"} 1`,
		`kiln_build_queue_depth 0`,
		`kiln_builds_running `,
		`kiln_build_phase_seconds_count{phase="source_fetch"} 1`,
		`kiln_build_phase_seconds_count{phase="compile"} 1`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(rr.Body.String(), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	e.rec.mu.Lock()
	e.rec.pingErr = errors.New("database is locked")
	e.rec.mu.Unlock()
	if err := e.svc.Ready(context.Background()); err == nil {
		t.Error("Ready with records that do not answer")
	}
}

func TestNewNeedsItsParts(t *testing.T) {
	if _, err := New(context.Background(), Config{}); err == nil {
		t.Error("New without Records, Sources and Runner")
	}
}
