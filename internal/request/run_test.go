package request

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/attest"
	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/testutil"
)

func TestRunTwiceSameDigest(t *testing.T) {
	needsCompile(t)
	b := Build{Packages: []string{"./cmd/hello"}, Platforms: []string{"linux/amd64", "linux/arm64"}, Base: "scratch", Jobs: 2}
	var digests []string
	for range 2 {
		env, _ := layoutEnv(t) // no cache: each run compiles and layers anew
		out, err := Run(context.Background(), env, b)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if len(out) != 1 || len(out[0].Images) != 2 {
			t.Fatalf("Run gave %+v, want one package on two platforms", out)
		}
		if out[0].Attachments != nil || out[0].Signing != 0 {
			t.Errorf("an unsigned build reports signing: %+v", out[0])
		}
		digests = append(digests, out[0].Digest)
	}
	if digests[0] != digests[1] {
		t.Errorf("two runs of one request gave %s and %s", digests[0], digests[1])
	}
}

// TestRunRefusesBeforeCompile: each bad request or environment is a
// one-line error, and go build never runs.
func TestRunRefusesBeforeCompile(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    Build
		edit func(t *testing.T, env *Env)
		is   error
		says string
	}{
		{name: "sign without a key", b: Build{Sign: true}, is: ErrNoKey, says: "--key"},
		{name: "config signs without a key", edit: func(t *testing.T, env *Env) {
			env.Config = &config.Config{Kiln: config.Kiln{Defaults: config.Image{Sign: true}}}
		}, is: ErrNoKey, says: "--key"},
		{name: "config key not taken by a service", b: Build{Sign: true}, edit: func(t *testing.T, env *Env) {
			env.Config = &config.Config{Dir: env.Dir, Kiln: config.Kiln{Defaults: config.Image{Key: "/etc/passwd"}}}
		}, is: ErrNoKey, says: "--key"},
		{name: "sign to an archive", b: Build{Sign: true}, edit: func(t *testing.T, env *Env) {
			env.Key.Path = "cosign.key"
			env.Signatures = nil
			env.Publisher = &publish.OCIArchive{File: filepath.Join(t.TempDir(), "out.tar")}
		}, is: attest.ErrNoDestination, says: "registry"},
		{name: "key file missing", b: Build{Sign: true}, edit: func(t *testing.T, env *Env) {
			env.Key.Path = "nope.key"
		}, is: fs.ErrNotExist, says: "reading private key"},
		{name: "invalid request", b: Build{Platforms: []string{"linux/sparc"}}, is: ErrInvalid, says: "linux/sparc"},
		{name: "toolexec in .ko.yaml", edit: func(t *testing.T, env *Env) {
			testutil.WriteFiles(t, env.Dir, map[string]string{".ko.yaml": "builds:\n  - id: h\n    main: ./cmd/hello\n    flags: [-toolexec=/bin/true]\n"})
		}, is: gobuild.ErrNotAllowed, says: "-toolexec"},
		{name: "no destination", edit: func(t *testing.T, env *Env) { env.Publisher = nil }, is: ErrNoPublisher, says: "Publisher"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, runner := layoutEnv(t)
			if tc.edit != nil {
				tc.edit(t, &env)
			}
			b := tc.b
			b.Packages = []string{"./cmd/hello"}
			_, err := Run(context.Background(), env, b)
			if err == nil {
				t.Fatal("Run succeeded, want a refusal")
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, tc.says) || !errors.Is(err, tc.is) {
				t.Errorf("error %q is not one line saying %q (errors.Is %v)", msg, tc.says, tc.is)
			}
			if runner.builds != 0 {
				t.Errorf("go build ran %d times before the refusal", runner.builds)
			}
		})
	}
}
