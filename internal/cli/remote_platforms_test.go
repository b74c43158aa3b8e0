package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kilnbuild/kiln/internal/testutil"
)

// requestRecorder is a build service that records the platforms of the
// request submitted to it and refuses the build.
type requestRecorder struct {
	mu        sync.Mutex
	platforms []string
	got       bool
}

func (s *requestRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/api/v1/builds" {
		http.NotFound(w, r)
		return
	}
	mr, err := r.MultipartReader()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	part, err := mr.NextPart()
	if err != nil || part.FormName() != "request" {
		http.Error(w, "no request part", http.StatusBadRequest)
		return
	}
	var req struct {
		Platforms []string `json:"platforms"`
	}
	if err := json.NewDecoder(part).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.platforms, s.got = req.Platforms, true
	s.mu.Unlock()
	http.Error(w, "recorded", http.StatusServiceUnavailable)
}

// TestRemotePlatformsFromEnvironment: kiln build --remote sends the
// platforms a local build takes from ko's environment (KO_DEFAULTPLATFORMS,
// GOOS/GOARCH), with the local rule's precedence and refusals.
func TestRemotePlatformsFromEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name   string
		env    []string
		flags  []string
		config string // .ko.yaml
		want   []string
		err    string
	}{
		{name: "nothing: the service's default"},
		{name: "KO_DEFAULTPLATFORMS", env: []string{"KO_DEFAULTPLATFORMS=linux/arm64,linux/amd64"}, want: []string{"linux/arm64", "linux/amd64"}},
		{name: "GOOS and GOARCH", env: []string{"GOOS=linux", "GOARCH=arm64"}, want: []string{"linux/arm64"}},
		{name: "--platform wins", env: []string{"KO_DEFAULTPLATFORMS=linux/arm64"}, flags: []string{"--platform", "linux/s390x"}, want: []string{"linux/s390x"}},
		{name: ".ko.yaml left to the service", config: "defaultPlatforms: [linux/386]\n"},
		{name: "GOOS beside .ko.yaml", env: []string{"GOOS=linux", "GOARCH=arm64"}, config: "defaultPlatforms: [linux/386]\n", err: `GOOS="linux" cannot go with defaultPlatforms`},
		{name: "GOARCH with --platform", env: []string{"GOARCH=arm64"}, flags: []string{"--platform", "linux/amd64"}, err: `GOARCH="arm64" cannot go with --platform`},
		{name: "bad KO_DEFAULTPLATFORMS", env: []string{"KO_DEFAULTPLATFORMS=linux/sparc"}, err: `KO_DEFAULTPLATFORMS="linux/sparc"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := &requestRecorder{}
			srv := httptest.NewServer(svc)
			defer srv.Close()
			dir := helloModule(t)
			if tc.config != "" {
				testutil.WriteFiles(t, dir, map[string]string{".ko.yaml": tc.config})
			}
			args := append([]string{"build", "--remote", srv.URL, "./cmd/hello"}, tc.flags...)
			code, out, stderr := kiln(t, dir, append(testEnv(t), tc.env...), args...)
			if code == 0 || out != "" {
				t.Fatalf("exit %d, stdout %q: the recorder refuses every build", code, out)
			}
			svc.mu.Lock()
			defer svc.mu.Unlock()
			if tc.err != "" {
				if svc.got || !strings.Contains(stderr, tc.err) {
					t.Errorf("submitted %v, stderr %q: want no request and an error with %q", svc.got, stderr, tc.err)
				}
				return
			}
			if !svc.got {
				t.Fatalf("no request reached the service: %s", stderr)
			}
			if !slices.Equal(svc.platforms, tc.want) {
				t.Errorf("platforms %q, want %q", svc.platforms, tc.want)
			}
		})
	}
}
