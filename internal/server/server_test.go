package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/testutil"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler(Options{DataDir: t.TempDir()}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Errorf("healthz = %d %q", resp.StatusCode, body)
	}
	resp, err = http.Get(srv.URL + "/version")
	if err != nil {
		t.Fatal(err)
	}
	var v VersionInfo
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v.GoVersion == "" || v.Platform == "" || v.Version == "" {
		t.Errorf("version = %+v", v)
	}
	resp, _ = http.Post(srv.URL+"/healthz", "text/plain", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz = %d", resp.StatusCode)
	}
}

func TestHealthzFailsWithoutData(t *testing.T) {
	srv := httptest.NewServer(Handler(Options{DataDir: filepath.Join(t.TempDir(), "gone")}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("healthz = %d, want 503", resp.StatusCode)
	}
}

func TestRunServesAndStops(t *testing.T) {
	addr := testutil.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var log strings.Builder
	done := make(chan error, 1)
	go func() { done <- Run(ctx, []string{"--addr", addr, "--data", t.TempDir()}, &log) }()
	var resp *http.Response
	var err error
	for i := 0; i < 100; i++ {
		if resp, err = http.Get("http://" + addr + "/healthz"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	if err := Run(context.Background(), []string{"--addr", "bad::addr::"}, io.Discard); err == nil {
		t.Error("bad address: no error")
	}
}
