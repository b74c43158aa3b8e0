package pipeline

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/testutil"
)

var errRefused = errors.New("destination refused")

// refusingDest refuses in Check and counts what it is asked to publish.
type refusingDest struct {
	publish.Publisher
	checks, published atomic.Int32
}

func (d *refusingDest) Check(context.Context) error { d.checks.Add(1); return errRefused }

func (d *refusingDest) Publish(ctx context.Context, a publish.Artifact, repo string, tags []string) (name.Digest, error) {
	d.published.Add(1)
	return d.Publisher.Publish(ctx, a, repo, tags)
}

// compileUntilStopped is go whose build runs until its context ends, as a
// long compile does.
type compileUntilStopped struct{ fakeGo }

func (f *compileUntilStopped) Run(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	if args[0] == "build" {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return f.fakeGo.Run(ctx, dir, env, name, args...)
}

// TestDestinationCheckBesideTheCompile: the destination is checked once
// the compile has started (not before, where it would take CPU from the
// path to go build), and its refusal still stops that compile; a package
// that fails before compiling does not leave the run waiting for a check.
func TestDestinationCheckBesideTheCompile(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{"go.mod": "module example.com/big\n\ngo 1.22\n", "cmd/big/.keep": ""})
	cfg := &config.Config{DefaultBaseImage: "scratch"}
	for _, tc := range []struct {
		name    string
		pattern string
		cfg     *config.Config
		want    []error // any of them
	}{
		{"refusal stops a running compile", "./cmd/big", cfg, []error{errRefused}},
		// The package's refusal opens the gate as it ends: the check may
		// then run, and either error may be the run's, but it ends.
		{"package refused before any compile", "./cmd/big", &config.Config{DefaultBaseImage: "scratch", Builds: []config.Build{{ID: "x", Main: "./cmd/big", Env: []string{"CC=cc"}}}}, []error{gobuild.ErrCgo, errRefused}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dest := &refusingDest{Publisher: &publish.ToLayout{Dir: t.TempDir()}}
			fake := &compileUntilStopped{*newFakeGo(t, dir, 1<<10)}
			_, err := Run(context.Background(), Options{
				Dir: dir, Config: tc.cfg, Builder: &gobuild.Builder{Runner: fake},
				Naming: Naming{Repo: LocalRepo}, Publisher: dest,
			}, []string{tc.pattern})
			if !slices.ContainsFunc(tc.want, func(w error) bool { return errors.Is(err, w) }) {
				t.Errorf("Run: %v, want %v", err, tc.want)
			}
			if n := dest.published.Load(); n != 0 {
				t.Errorf("%d images published", n)
			}
		})
	}
}
