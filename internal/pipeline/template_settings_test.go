package pipeline

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/platform"
	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// goEnvGo is fakeGo that answers go env -json and records each build's
// ldflags and how often go env -json ran.
type goEnvGo struct {
	fakeGo
	mu      sync.Mutex
	ldflags []string
	goEnvs  int
}

func (f *goEnvGo) Run(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	f.mu.Lock()
	switch {
	case slices.Equal(args, []string{"env", "-json"}):
		f.goEnvs++
		f.mu.Unlock()
		return []byte(`{"GOPATH": "/gp", "GOOS": "darwin"}`), nil
	case args[0] == "build":
		for _, a := range args {
			if l, ok := strings.CutPrefix(a, "-ldflags="); ok {
				f.ldflags = append(f.ldflags, l)
			}
		}
	}
	f.mu.Unlock()
	return f.fakeGo.Run(ctx, dir, env, name, args...)
}

// Templates expand per platform, as ko's: {{.Env.GOARCH}} is each
// platform's, and {{.GoEnv}} is go env's, overridden by Env, with go env
// run once for the run.
func TestTemplatesExpandPerPlatform(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{"go.mod": "module example.com/big\n\ngo 1.22\n", "cmd/big/.keep": ""})
	fake := &goEnvGo{fakeGo: *newFakeGo(t, dir, 1<<20)}
	_, err := Run(context.Background(), Options{
		Dir: dir, Env: []string{"HOME=/h"},
		Builder:   &gobuild.Builder{Runner: fake},
		Platforms: platform.Spec{Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}},
		Naming:    Naming{Repo: LocalRepo},
		Publisher: &publish.ToLayout{Dir: t.TempDir()},
		Config: &config.Config{DefaultBaseImage: "scratch", Builds: []config.Build{{
			ID: "big", Main: "./cmd/big", Ldflags: []string{"-X main.arch={{.Env.GOARCH}}", "-X main.p={{.GoEnv.GOPATH}}-{{.GoEnv.GOOS}}", "-X main.l=[{{.Env.LDFLAGS}}]"},
		}}},
	}, []string{"./cmd/big"})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(fake.ldflags)
	want := []string{"-X main.arch=amd64 -X main.p=/gp-linux -X main.l=[]", "-X main.arch=arm64 -X main.p=/gp-linux -X main.l=[]"}
	if !slices.Equal(fake.ldflags, want) {
		t.Errorf("ldflags = %q, want %q", fake.ldflags, want)
	}
	if fake.goEnvs != 1 {
		t.Errorf("go env -json ran %d times, want 1", fake.goEnvs)
	}
}
