package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"golang.org/x/crypto/bcrypt"

	"github.com/kilnbuild/kiln/internal/cli"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// TestLoginThenBuildPushes: against kiln's own registry server with a
// password, a build without credentials is refused; after kiln login a
// build pushes with the docker config login wrote.
func TestLoginThenBuildPushes(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: not in -short")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(htpasswd, []byte("ci:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := startRegistryProcess(t, "--htpasswd", htpasswd)
	dockerConfig := t.TempDir()
	// ggcr's keychain reads DOCKER_CONFIG from the process.
	t.Setenv("DOCKER_CONFIG", dockerConfig)

	dir := t.TempDir()
	testutil.WriteFiles(t, dir, testutil.HelloModule)
	env := append(testutil.HermeticGoEnv(t), "DOCKER_CONFIG="+dockerConfig, "KO_DOCKER_REPO="+reg.host()+"/team",
		"KO_CONFIG_PATH=", "KO_DEFAULTBASEIMAGE=", "SOURCE_DATE_EPOCH=1700000000", "KILN_STORE="+t.TempDir(), "KILN_CACHE="+t.TempDir())
	kiln := func(stdin string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := cli.Run(context.Background(), cli.Invocation{Args: args, Env: env, Dir: dir, Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb})
		return code, strings.TrimSpace(out.String()), errb.String()
	}

	if code, _, stderr := kiln("", "build", "--platform", "linux/amd64", "./cmd/hello"); code == 0 {
		t.Fatal("a build pushed without credentials")
	} else if !strings.Contains(stderr, "401") && !strings.Contains(strings.ToLower(stderr), "unauthorized") && !strings.Contains(stderr, "cannot push") {
		t.Errorf("refused, but not for credentials: %s", stderr)
	}
	if code, _, stderr := kiln("wrong\n", "login", reg.host(), "-u", "ci", "--password-stdin"); code != 0 {
		t.Fatalf("login: %s", stderr)
	}
	// ko's login does not check the password either: the push is refused.
	if code, _, _ := kiln("", "build", "--platform", "linux/amd64", "./cmd/hello"); code == 0 {
		t.Fatal("a build pushed with a wrong password")
	}
	if code, _, stderr := kiln("s3cret\n", "login", reg.host(), "-u", "ci", "--password-stdin"); code != 0 {
		t.Fatalf("login: %s", stderr)
	}
	code, ref, stderr := kiln("", "build", "--platform", "linux/amd64", "./cmd/hello")
	if code != 0 {
		t.Fatalf("build after login: %s", stderr)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatalf("build printed %q: %v", ref, err)
	}
	img, err := remote.Image(r, remote.WithAuth(&authn.Basic{Username: "ci", Password: "s3cret"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("pushed image: %v", err)
	}
}
