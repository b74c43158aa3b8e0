package e2e

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kilnbuild/kiln/internal/buildrecord"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// loadRSSBound is the most resident memory the server may reach in
// TestServiceLoad. Measured here (2 cores, go1.26.8, 2026-11-30): VmHWM
// 56.9–58.6 MiB over four runs; the bound leaves about 2× headroom. The
// go command and the compiler run as processes of their own and are not
// counted.
const loadRSSBound = 120 << 20

// TestServiceLoad submits 30 builds at once to a server with one build
// slot and a queue of ten: those that fit are accepted and all succeed,
// the rest are refused with 429 and Retry-After, and the records hold
// each accepted build exactly once, and nothing else.
func TestServiceLoad(t *testing.T) {
	p := startService(t, nil, "--max-builds", "1", "--max-queue", "10")
	p.workspace("hello", testutil.HelloModule)

	const n = 30
	type answer struct {
		status     int
		retryAfter string
		id         string
		code       string
	}
	answers := make([]answer, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			resp, err := http.Post(p.url()+"/api/v1/builds", "application/json", strings.NewReader(helloBuild("hello")))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			a := answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
			var body struct {
				ID    string
				Error struct{ Code string }
			}
			json.NewDecoder(resp.Body).Decode(&body)
			a.id, a.code = body.ID, body.Error.Code
			answers[i] = a
		})
	}
	close(start)
	wg.Wait()

	var accepted []string
	refused := 0
	for _, a := range answers {
		switch a.status {
		case http.StatusAccepted:
			accepted = append(accepted, a.id)
		case http.StatusTooManyRequests:
			refused++
			if a.retryAfter == "" || a.code == "" {
				t.Errorf("a 429 without Retry-After (%q) or an error code (%q)", a.retryAfter, a.code)
			}
		default:
			t.Errorf("a submission answered %d", a.status)
		}
	}
	// One build runs and ten wait; a build that finished while others
	// were still being submitted frees its place.
	if len(accepted) < 11 || refused == 0 || len(accepted)+refused != n {
		t.Fatalf("%d accepted, %d refused of %d: want at least 11 accepted and the rest refused", len(accepted), refused, n)
	}
	for _, id := range accepted {
		p.succeeded(id)
	}
	var list struct{ Builds []buildrecord.Build }
	p.do("GET", "/api/v1/builds?limit=100", "", nil, &list)
	var listed []string
	for _, b := range list.Builds {
		listed = append(listed, b.ID)
	}
	slices.Sort(accepted)
	slices.Sort(listed)
	if !slices.Equal(accepted, listed) {
		t.Errorf("records lost or duplicated:\naccepted %v\nlisted   %v", accepted, listed)
	}
	rss := p.vmHWM()
	t.Logf("%d accepted, %d refused; server peak RSS (VmHWM) %.1f MiB", len(accepted), refused, float64(rss)/(1<<20))
	if rss > loadRSSBound {
		t.Errorf("server peak RSS %.1f MiB, above the bound of %d MiB", float64(rss)/(1<<20), loadRSSBound>>20)
	}
}
