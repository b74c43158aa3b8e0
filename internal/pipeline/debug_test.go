package pipeline

import (
	"archive/tar"
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/platform"
	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// stubDebugger runs on amd64 only; its binary is this test binary.
type stubDebugger struct {
	self  string
	calls atomic.Int32
}

func (s *stubDebugger) Supports(p v1.Platform) bool { return p.Architecture == "amd64" }
func (s *stubDebugger) Binary(context.Context, v1.Platform) (string, bool, error) {
	s.calls.Add(1)
	return s.self, false, nil
}
func (s *stubDebugger) Entrypoint(dbg, app string) []string { return []string{dbg, "exec", "--", app} }

// argsGo is fakeGo that records the arguments of each go build.
type argsGo struct {
	*fakeGo
	mu     sync.Mutex
	builds [][]string
}

func (f *argsGo) Run(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	if args[0] == "build" {
		f.mu.Lock()
		f.builds = append(f.builds, args)
		f.mu.Unlock()
	}
	return f.fakeGo.Run(ctx, dir, env, name, args...)
}

// TestDebuggerWrapsTheProgram: with a Debugger, each platform it runs on
// gets it at /ko-app/dlv (0555) in a layer after the program's, and an
// entrypoint that starts the program under it; another platform is built
// without it.
func TestDebuggerWrapsTheProgram(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{"go.mod": "module example.com/big\n\ngo 1.22\n", "cmd/big/.keep": ""})
	fake := &argsGo{fakeGo: newFakeGo(t, dir, 1<<20)}
	dbg := &stubDebugger{self: fake.self}
	out := t.TempDir()
	res, err := Run(context.Background(), Options{
		Dir: dir, Config: &config.Config{DefaultBaseImage: "scratch"},
		Builder:   &gobuild.Builder{Runner: fake},
		Naming:    Naming{Repo: LocalRepo},
		Publisher: &publish.ToLayout{Dir: out},
		Platforms: platform.Spec{Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "s390x"}}},
		Debugger:  dbg,
	}, []string{"./cmd/big"})
	if err != nil {
		t.Fatal(err)
	}
	// A debugger needs the symbols and DWARF that kiln's default -s -w drop.
	for _, args := range fake.builds {
		if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "-ldflags=") && strings.Contains(a, "-s") }) {
			t.Errorf("go %q: a debug build must keep symbols and DWARF", args)
		}
	}
	if n := dbg.calls.Load(); n != 1 {
		t.Errorf("%d debugger builds, want 1 (amd64)", n)
	}
	lay, err := layout.FromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	top, err := lay.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	idx, err := top.ImageIndex(must(v1.NewHash(res[0].Digest)))
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range res[0].Images {
		img, err := idx.Image(must(v1.NewHash(pr.Digest)))
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Image(img); err != nil {
			t.Fatal(err)
		}
		cf, _ := img.ConfigFile()
		layers, _ := img.Layers()
		last, _ := testutil.LayerFiles(t, layers[len(layers)-1])
		switch pr.Platform {
		case "linux/amd64":
			if want := []string{"/ko-app/dlv", "exec", "--", "/ko-app/big"}; !slices.Equal(cf.Config.Entrypoint, want) {
				t.Errorf("amd64 entrypoint %q, want %q", cf.Config.Entrypoint, want)
			}
			if h := last["ko-app/dlv"]; h == nil || h.Mode&0o777 != 0o555 || h.Typeflag != tar.TypeReg {
				t.Errorf("amd64: the last layer holds %v, want ko-app/dlv mode 0555", last)
			}
			if cf.History[len(cf.History)-1].Comment != "debugger, at /ko-app/dlv" {
				t.Errorf("amd64 history %+v", cf.History[len(cf.History)-1])
			}
		case "linux/s390x":
			if !slices.Equal(cf.Config.Entrypoint, []string{"/ko-app/big"}) || last["ko-app/dlv"] != nil {
				t.Errorf("s390x: entrypoint %q, last layer %v: want the program alone", cf.Config.Entrypoint, last)
			}
		}
	}
}
