package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/kilnbuild/kiln/internal/testutil"
)

// gorootCountingGo is fakeGo that counts its go env commands.
type gorootCountingGo struct {
	fakeGo
	envRuns atomic.Int32
}

func (f *gorootCountingGo) Run(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	if args[0] == "env" {
		f.envRuns.Add(1)
	}
	return f.fakeGo.Run(ctx, dir, env, name, args...)
}

// TestStaticBaseRemembersGOROOT: a rebuild on the static base runs no go
// env beside its compile when nothing that decides GOROOT changed, and
// asks again, and uses the new answer, when the module's toolchain line
// changes.
func TestStaticBaseRemembersGOROOT(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{"go.mod": "module example.com/big\n\ngo 1.22\n", "cmd/big/.keep": ""})
	fake := &gorootCountingGo{fakeGo: *newFakeGo(t, dir, 1<<10)}
	cache := t.TempDir()
	build := func() Result { return buildFaked(t, fake, dir, cache, "", nil, "./cmd/big")[0] }
	steps := []struct {
		name     string
		change   func()
		envRuns  int32
		wantRoot func() string
	}{
		{"first build", func() {}, 1, func() string { return fake.goroot }},
		{"rebuild", func() {}, 1, func() string { return fake.goroot }},
		{"toolchain line added", func() {
			// Another toolchain: a root of its own with the zoneinfo the
			// static base reads.
			root := filepath.Join(t.TempDir(), "go")
			if err := os.MkdirAll(filepath.Join(root, "lib", "time"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(fake.goroot, "lib", "time", "zoneinfo.zip"), filepath.Join(root, "lib", "time", "zoneinfo.zip")); err != nil {
				t.Fatal(err)
			}
			fake.goroot = root
			testutil.WriteFiles(t, dir, map[string]string{"go.mod": "module example.com/big\n\ngo 1.22\n\ntoolchain go1.30.0\n"})
		}, 2, func() string { return fake.goroot }},
		{"rebuild after the change", func() {}, 2, func() string { return fake.goroot }},
	}
	for _, s := range steps {
		s.change()
		res := build()
		if got := fake.envRuns.Load(); got != s.envRuns {
			t.Errorf("%s: go env ran %d times in all, want %d", s.name, got, s.envRuns)
		}
		if want := s.wantRoot(); res.Record.GOROOT != want {
			t.Errorf("%s: Record.GOROOT = %q, want %q", s.name, res.Record.GOROOT, want)
		}
	}
}
