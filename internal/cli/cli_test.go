package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/kilnbuild/kiln/internal/testutil"
)

// testEnv gives kiln a private HOME, caches and store.
func testEnv(t *testing.T) []string {
	t.Helper()
	home := t.TempDir()
	return append(testutil.GoEnv(t, home),
		"KILN_STORE="+filepath.Join(home, "store"),
		"KO_DOCKER_REPO=",
		"KO_CONFIG_PATH=",
		"KO_DEFAULTBASEIMAGE=",
	)
}

func kiln(t testing.TB, dir string, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(context.Background(), Invocation{Args: args, Env: env, Dir: dir, Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

func TestBuildBadInput(t *testing.T) {
	unauthorized := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
	}))
	defer unauthorized.Close()
	unauthHost := strings.TrimPrefix(unauthorized.URL, "http://")

	amd64Only := filepath.Join(t.TempDir(), "base")
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf.OS, cf.Architecture = "linux", "amd64"
	img, _ = mutate.ConfigFile(img, cf)
	lp, err := layout.Write(amd64Only, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		t.Fatal(err)
	}

	aFile := filepath.Join(t.TempDir(), "plainfile")
	os.WriteFile(aFile, []byte("x"), 0o644)
	outside := filepath.Join(t.TempDir(), "secret.txt")
	os.WriteFile(outside, []byte("secret"), 0o644)

	tests := []struct {
		name   string
		args   []string
		files  map[string]string // extra files in the module
		setup  func(dir string)
		env    []string
		output string // --output; default oci-archive in an empty dir
		want   string // substring of the one-line error
		multi  bool   // the compiler's output may span lines
	}{
		{name: "no packages", args: []string{"build"}, want: "no packages given"},
		{name: "package not found", args: []string{"build", "./nope"}, want: "package ./nope not found"},
		{name: "package not main", args: []string{"build", "./lib"}, want: "not main"},
		{name: "unknown platform", args: []string{"build", "--platform", "linux/sparc", "./cmd/hello"}, want: `unknown platform "linux/sparc"`},
		{name: "platform the base lacks", args: []string{"build", "--base", "oci:" + amd64Only + ":v1", "--platform", "linux/arm64", "./cmd/hello"}, want: "linux/arm64"},
		{name: "base unreachable", args: []string{"build", "--base", "127.0.0.1:1/nothing:v1", "./cmd/hello"}, want: "127.0.0.1:1/nothing:v1"},
		{name: "base unauthorized", args: []string{"build", "--base", unauthHost + "/private:v1", "./cmd/hello"}, want: "login"},
		{name: "config syntax error", args: []string{"build", "./cmd/hello"}, files: map[string]string{".ko.yaml": "builds:\n  - id: [\n"}, want: ".ko.yaml:"},
		{name: "config unknown key", args: []string{"build", "./cmd/hello"}, files: map[string]string{".ko.yaml": "defaultPlatforms: [linux/amd64]\ndefaultBaseImag: static\n"}, want: ".ko.yaml:2"},
		{name: "toolexec in config flags", args: []string{"build", "./cmd/hello"}, files: map[string]string{".ko.yaml": "builds:\n  - id: h\n    main: ./cmd/hello\n    flags: [-toolexec=/bin/true]\n"}, want: "-toolexec"},
		{name: "toolexec in GOFLAGS", args: []string{"build", "./cmd/hello"}, env: []string{"GOFLAGS=-toolexec=/bin/true"}, want: "-toolexec"},
		{name: "kodata symlink escapes the module", args: []string{"build", "./cmd/hello"}, setup: func(dir string) {
			os.Symlink(outside, filepath.Join(dir, "cmd/hello/kodata/leak.txt"))
		}, want: "outside"},
		{name: "destination not writable", args: []string{"build", "./cmd/hello"}, output: "oci:" + aFile + "/sub", want: "not writable"},
		{name: "archive directory missing", args: []string{"build", "./cmd/hello"}, output: "oci-archive:" + filepath.Join(aFile+"-missing", "x.tar"), want: "not writable"},
		{name: "bad SOURCE_DATE_EPOCH", args: []string{"build", "./cmd/hello"}, env: []string{"SOURCE_DATE_EPOCH=yesterday"}, want: "SOURCE_DATE_EPOCH"},
		{name: "bad compression", args: []string{"build", "--compression", "brotli", "./cmd/hello"}, want: `unknown compression "brotli"`},
		{name: "compile error", args: []string{"build", "./broken"}, want: "undefined: undefined", multi: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			testutil.WriteFiles(t, dir, testutil.HelloModule)
			testutil.WriteFiles(t, dir, tt.files)
			if tt.setup != nil {
				tt.setup(dir)
			}
			outDir := t.TempDir()
			output := tt.output
			if output == "" {
				output = "oci-archive:" + filepath.Join(outDir, "out.tar")
			}
			env := append(testEnv(t), tt.env...)
			args := append([]string{tt.args[0], "--output", output}, tt.args[1:]...)
			code, stdout, stderr := kiln(t, dir, env, args...)
			if code != 1 {
				t.Fatalf("exit code %d, want 1; stderr:\n%s", code, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
			if !strings.HasPrefix(stderr, "kiln: ") || !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr = %q, want a kiln: line containing %q", stderr, tt.want)
			}
			if !tt.multi && strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
				t.Errorf("error is not one line:\n%s", stderr)
			}
			if entries, _ := os.ReadDir(outDir); len(entries) != 0 {
				t.Errorf("destination has %d entries after a failure, want none", len(entries))
			}
		})
	}
}
