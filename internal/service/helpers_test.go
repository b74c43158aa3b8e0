package service

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/kilnbuild/kiln/internal/buildrecord"
)

// lockedBuffer collects the service's slog output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type env struct {
	t    *testing.T
	svc  *Service
	srv  *httptest.Server
	rec  *fakeRecords
	src  *fakeSources
	run  *fakeRunner
	logs *lockedBuffer
	tmp  string
}

// newEnv starts a service over fakes and an httptest server (loopback).
// setup may change the fakes and the config before New.
func newEnv(t *testing.T, setup func(*env, *Config)) *env {
	t.Helper()
	e := &env{t: t, rec: newFakeRecords(), src: &fakeSources{}, run: &fakeRunner{}, logs: &lockedBuffer{}, tmp: t.TempDir()}
	cfg := Config{
		Records: e.rec, Sources: e.src, Runner: e.run,
		Logger:  slog.New(slog.NewJSONHandler(e.logs, nil)),
		TempDir: e.tmp, MaxRunning: 1, MaxQueue: 10, Version: "test",
	}
	if setup != nil {
		setup(e, &cfg)
	}
	svc, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	e.srv = httptest.NewServer(svc.Handler())
	t.Cleanup(func() {
		e.srv.Close()
		// A grace already over: blocked fake runs are cut at once.
		done, cancel := context.WithCancel(context.Background())
		cancel()
		svc.Shutdown(done)
	})
	return e
}

func (e *env) do(method, path, contentType string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, b
}

// submit posts a JSON build request and decodes the record answered.
func (e *env) submit(body string) (int, *buildrecord.Build) {
	e.t.Helper()
	resp, b := e.do("POST", "/api/v1/builds", "application/json", strings.NewReader(body))
	var rec buildrecord.Build
	if resp.StatusCode == http.StatusAccepted {
		if err := json.Unmarshal(b, &rec); err != nil {
			e.t.Fatalf("202 body %s: %v", b, err)
		}
	}
	return resp.StatusCode, &rec
}

func (e *env) mustSubmit(body string) *buildrecord.Build {
	e.t.Helper()
	code, b := e.submit(body)
	if code != http.StatusAccepted {
		e.t.Fatalf("submit %s: %d, want 202", body, code)
	}
	return b
}

// tempLeft fails if a build directory was left behind.
func (e *env) tempLeft() {
	e.t.Helper()
	ents, _ := os.ReadDir(e.tmp)
	for _, ent := range ents {
		e.t.Errorf("build directory left behind: %s", ent.Name())
	}
}

const okRequest = `{"source": {"module": "example.com/app@v1.0.0"}, "packages": ["./cmd/app"]}`

func decodeError(t *testing.T, b []byte) errorBody {
	t.Helper()
	var body errorBody
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Error.Code == "" {
		t.Fatalf("error body %q is not {\"error\": {\"code\", \"message\"}}: %v", b, err)
	}
	return body
}
