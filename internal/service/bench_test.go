package service

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkSubmitToFirstLogLine measures, with a free slot and a fake
// runner, the time from POST /builds until a log stream shows the
// runner's first line (the goal: under 100 ms).
func BenchmarkSubmitToFirstLogLine(b *testing.B) {
	rec := newFakeRecords()
	svc, err := New(context.Background(), Config{
		Records: rec, Sources: &fakeSources{}, Runner: &fakeRunner{},
		Logger: slog.New(slog.DiscardHandler), TempDir: b.TempDir(), MaxRunning: 2, MaxQueue: 100,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Shutdown(context.Background())
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	client := srv.Client()
	b.ResetTimer()
	for b.Loop() {
		resp, err := client.Post(srv.URL+"/api/v1/builds", "application/json", strings.NewReader(okRequest))
		if err != nil || resp.StatusCode != http.StatusAccepted {
			b.Fatalf("submit: %v %v", err, resp.Status)
		}
		var id struct{ ID string }
		decodeJSON(b, resp.Body, &id)
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/builds/"+id.ID+"/log", nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err = client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		r := bufio.NewReader(resp.Body)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				b.Fatalf("stream ended before the runner's first line: %v", err)
			}
			if strings.HasPrefix(line, "data: compiling") {
				break
			}
		}
		resp.Body.Close()
	}
}

func decodeJSON(b *testing.B, r io.ReadCloser, v any) {
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		b.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		b.Fatal(err)
	}
}
