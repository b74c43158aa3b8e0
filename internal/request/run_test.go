package request

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/attest"
	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/keys"
	"github.com/kilnbuild/kiln/internal/pipeline"
	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/sign"
	"github.com/kilnbuild/kiln/internal/testutil"
	"github.com/kilnbuild/kiln/internal/verify"
)

// goEnv is the Go environment of the tests: the machine's build cache,
// no network.
func goEnv() []string {
	return append(os.Environ(), "GOFLAGS=-modcacherw", "GOPROXY=off")
}

// countingRunner runs the real go command and counts its compiles.
type countingRunner struct {
	mu     sync.Mutex
	builds int
}

func (c *countingRunner) Run(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	if len(args) > 0 && args[0] == "build" {
		c.mu.Lock()
		c.builds++
		c.mu.Unlock()
	}
	return gobuild.ExecRunner{}.Run(ctx, dir, env, name, args...)
}

// layoutEnv builds the hello module into a fresh OCI layout.
func layoutEnv(t *testing.T) (Env, *countingRunner) {
	t.Helper()
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, testutil.HelloModule)
	out := t.TempDir()
	environ := goEnv()
	runner := &countingRunner{}
	return Env{
		Dir: dir, Env: environ,
		Publisher: &publish.Layout{Dir: out}, Repo: pipeline.LocalRepo, Signatures: &sign.Layout{Dir: out},
		Builder: &gobuild.Builder{Env: environ, Runner: runner}, KilnVersion: "test",
	}, runner
}

func TestRunTwiceSameDigest(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles: not in -short")
	}
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
		}, is: os.ErrNotExist, says: "reading private key"},
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

// TestRunSigns signs into an OCI layout: every manifest verifies, the
// outcome says where, and a second run with the key's public half
// remembered signs nothing again.
func TestRunSigns(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles: not in -short")
	}
	env, _ := layoutEnv(t)
	keyDir := t.TempDir()
	priv, pub, err := keys.WriteFiles(keyDir, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	env.Key = Key{Path: priv, Password: []byte("pw")}
	env.CacheDir = t.TempDir()
	b := Build{Packages: []string{"./cmd/hello"}, Platforms: []string{"linux/amd64", "linux/arm64"}, Base: "scratch", Sign: true}
	out, err := Run(context.Background(), env, b)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	o := out[0]
	if o.AlreadySigned || o.Signing <= 0 {
		t.Errorf("first run: AlreadySigned %v, Signing %v; want signed now", o.AlreadySigned, o.Signing)
	}
	if len(o.Attachments) != 3 { // the index and two platforms
		t.Fatalf("attachments = %+v, want 3", o.Attachments)
	}
	v, err := keys.LoadVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range o.Attachments {
		_, d, _ := strings.Cut(a.Manifest, "@")
		h, err := v1.NewHash(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := verify.Complete(context.Background(), env.Signatures, o.Repo, h, v, sign.FormatTags); err != nil {
			t.Errorf("%s: %v", a.Manifest, err)
		}
		if want := o.Repo + ":" + sign.SignatureTag(h); a.Signature != want {
			t.Errorf("signature at %s, want %s", a.Signature, want)
		}
	}

	var log strings.Builder
	env.Progress = &log
	again, err := Run(context.Background(), env, b)
	if err != nil {
		t.Fatalf("second Run: %v", err)
	}
	if a := again[0]; a.Digest != o.Digest || !a.AlreadySigned || a.Signing != 0 || len(a.Attachments) != 3 {
		t.Errorf("second run: digest %s (first %s), AlreadySigned %v, Signing %v, %d attachments",
			a.Digest, o.Digest, a.AlreadySigned, a.Signing, len(a.Attachments))
	}
	if !strings.Contains(log.String(), "not signing again") {
		t.Errorf("the log does not say the image was not signed again:\n%s", log.String())
	}
}
