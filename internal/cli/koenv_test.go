package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/config"
)

// TestKoPlatforms: ko v0.19.1's precedence, from a recorded environment:
// --platform, KO_DEFAULTPLATFORMS (over .ko.yaml), .ko.yaml, GOOS/GOARCH
// (+GOARM), else the pipeline's default; GOOS/GOARCH/GOARM set at all
// beside a platform list is refused.
func TestKoPlatforms(t *testing.T) {
	yaml := &config.Config{Path: ".ko.yaml", DefaultPlatforms: []string{"linux/arm64"}}
	for _, tc := range []struct {
		name string
		env  []string
		flag []string
		cfg  *config.Config
		want []string // nil: left to the pipeline (.ko.yaml, else the host)
		err  string
	}{
		{name: "nothing: the pipeline's default"},
		{name: "flag", flag: []string{"linux/arm/v7"}, want: []string{"linux/arm/v7"}},
		{name: "flag over KO_DEFAULTPLATFORMS", env: []string{"KO_DEFAULTPLATFORMS=linux/s390x"}, flag: []string{"linux/amd64"}, want: []string{"linux/amd64"}},
		{name: "KO_DEFAULTPLATFORMS, commas", env: []string{"KO_DEFAULTPLATFORMS=linux/arm64,linux/amd64"}, want: []string{"linux/arm64", "linux/amd64"}},
		{name: "KO_DEFAULTPLATFORMS, spaces", env: []string{"KO_DEFAULTPLATFORMS=linux/arm64 linux/amd64"}, want: []string{"linux/arm64", "linux/amd64"}},
		{name: "KO_DEFAULTPLATFORMS all", env: []string{"KO_DEFAULTPLATFORMS=all"}, want: []string{"all"}},
		{name: "KO_DEFAULTPLATFORMS over .ko.yaml", env: []string{"KO_DEFAULTPLATFORMS=linux/386"}, cfg: yaml, want: []string{"linux/386"}},
		{name: ".ko.yaml", cfg: yaml},
		{name: "GOOS and GOARCH", env: []string{"GOOS=linux", "GOARCH=arm64"}, want: []string{"linux/arm64"}},
		{name: "GOARM for arm", env: []string{"GOOS=linux", "GOARCH=arm", "GOARM=6"}, want: []string{"linux/arm/v6"}},
		{name: "GOARM ignored off arm", env: []string{"GOOS=linux", "GOARCH=amd64", "GOARM=6"}, want: []string{"linux/amd64"}},
		{name: "GOARCH alone: the default", env: []string{"GOARCH=arm64"}},
		{name: "empty KO_DEFAULTPLATFORMS is unset", env: []string{"KO_DEFAULTPLATFORMS=", "GOOS=linux", "GOARCH=386"}, want: []string{"linux/386"}},

		{name: "GOARCH with --platform", env: []string{"GOARCH=arm64"}, flag: []string{"linux/amd64"}, err: `GOARCH="arm64" cannot go with --platform, as in ko`},
		{name: "empty GOOS with KO_DEFAULTPLATFORMS", env: []string{"GOOS=", "KO_DEFAULTPLATFORMS=linux/amd64"}, err: `GOOS="" cannot go with KO_DEFAULTPLATFORMS`},
		{name: "GOARM with .ko.yaml", env: []string{"GOARM=7"}, cfg: yaml, err: `GOARM="7" cannot go with defaultPlatforms in .ko.yaml`},
		{name: "unknown platform in KO_DEFAULTPLATFORMS", env: []string{"KO_DEFAULTPLATFORMS=linux/amd64,linux/sparc"}, err: `KO_DEFAULTPLATFORMS="linux/amd64,linux/sparc": unknown platform "linux/sparc"`},
		{name: "all with others in KO_DEFAULTPLATFORMS", env: []string{"KO_DEFAULTPLATFORMS=all,linux/amd64"}, err: `cannot be combined`},
		{name: "GOOS not linux", env: []string{"GOOS=darwin", "GOARCH=arm64"}, err: `GOOS/GOARCH: unknown platform "darwin/arm64": kiln builds linux images only`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if cfg == nil {
				cfg = &config.Config{}
			}
			got, err := koPlatforms(Invocation{Env: tc.env}, tc.flag, cfg)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("koPlatforms = %q, %v; want an error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("koPlatforms = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestKoEnvSmall: KOCACHE, KO_DATA_*, KO_GO_PATH and the engine domains,
// from a recorded environment.
func TestKoEnvSmall(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"KOCACHE=/ko", "HOME=/h"}, "/ko"},
		{[]string{"KOCACHE=/ko", "KILN_CACHE=/kiln"}, "/kiln"},
		{[]string{"KOCACHE=", "HOME=/h"}, "/h/.cache/kiln"},
	} {
		if got := CacheDir(Invocation{Env: tc.env}.getenv); got != tc.want {
			t.Errorf("CacheDir(%q) = %q, want %q", tc.env, got, tc.want)
		}
	}
	k, err := koData(Invocation{Dir: "/w", Env: []string{"KO_DATA_DATE_EPOCH=1700000000", "KO_DATA_PATH_ALLOWED_ROOT=.."}})
	if err != nil || !k.ModTime.Equal(time.Unix(1700000000, 0)) || k.AllowedRoot != "/" {
		t.Errorf("koData = %+v, %v", k, err)
	}
	for env, want := range map[string]string{"KO_GO_PATH=./bin/go": "/w/bin/go", "KO_GO_PATH=go1.26": "go1.26", "KO_GO_PATH=/opt/go/bin/go": "/opt/go/bin/go"} {
		if b := goBuilder(Invocation{Dir: "/w", Env: []string{env}}); b == nil || b.Go != want {
			t.Errorf("%s: go command %+v, want %s", env, b, want)
		}
	}
	if b := goBuilder(Invocation{}); b != nil {
		t.Errorf("no KO_GO_PATH: %+v, want the default builder", b)
	}
	for repo, ok := range map[string]bool{"ko.local": true, "ko.local/sub": true, "kind.local": true, "kind.local/x": true, "ko.localhost:5000/x": false, "registry.test/ko.local": false} {
		if _, _, got := enginePublisher(Invocation{}, repo); got != ok {
			t.Errorf("%s: engine %v, want %v", repo, got, ok)
		}
	}
}

// TestKoEnvBadInput: each bad value of ko's environment is one line on
// stderr, exit 1, nothing on stdout and no output written.
func TestKoEnvBadInput(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	noKind := "PATH=" + filepath.Dir(goBin) // go, and no kind
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"unknown platform in KO_DEFAULTPLATFORMS", []string{"KO_DEFAULTPLATFORMS=linux/sparc"}, nil, `KO_DEFAULTPLATFORMS="linux/sparc": unknown platform "linux/sparc"`},
		{"GOARCH beside --platform", []string{"GOARCH=arm64"}, []string{"--platform", "linux/amd64"}, `GOARCH="arm64" cannot go with --platform`},
		{"GOOS not linux", []string{"GOOS=windows", "GOARCH=amd64"}, nil, `kiln builds linux images only`},
		{"KO_DATA_DATE_EPOCH not a number", []string{"KO_DATA_DATE_EPOCH=yesterday"}, nil, `KO_DATA_DATE_EPOCH="yesterday" is not a Unix time in seconds`},
		{"KO_DATA_DATE_EPOCH negative", []string{"KO_DATA_DATE_EPOCH=-1"}, nil, `KO_DATA_DATE_EPOCH="-1" is not a Unix time in seconds`},
		{"kind missing", []string{"KO_DOCKER_REPO=kind.local", noKind}, nil, `the kind CLI is not on PATH: install kind to load into cluster "kind", or publish elsewhere`},
		{"kind missing, named cluster", []string{"KO_DOCKER_REPO=kind.local/team", "KIND_CLUSTER_NAME=dev", noKind}, nil, `cluster "dev"`},
		{"ko.local with a tarball", []string{"KO_DOCKER_REPO=ko.local"}, []string{"--tarball", "x.tar"}, "KO_DOCKER_REPO=ko.local loads into the local engine or kind only, as ko's: drop --tarball"},
		{"kind.local output with push=false", nil, []string{"-o", "kind.local", "--push=false"}, "--output=kind.local loads into the local engine or kind only, as ko's: drop --push=false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := helloDir(t)
			args := append(append([]string{"build", "--base", "scratch"}, tc.args...), "./cmd/hello")
			code, stdout, stderr := kiln(t, dir, append(testEnv(t), tc.env...), args...)
			badInput(t, code, stdout, stderr, tc.want)
			if _, err := os.Stat(filepath.Join(dir, "x.tar")); err == nil {
				t.Error("x.tar written")
			}
		})
	}
}

// badInput checks a refusal: exit 1, nothing on stdout, one "kiln: " line
// on stderr containing want.
func badInput(t *testing.T, code int, stdout, stderr, want string) {
	t.Helper()
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	if stdout != "" {
		t.Errorf("stdout = %q, want nothing", stdout)
	}
	if !strings.HasPrefix(stderr, "kiln: ") || !strings.Contains(stderr, want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
		t.Errorf("stderr = %q, want one kiln: line containing %q", stderr, want)
	}
}
