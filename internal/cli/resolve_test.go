package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/testutil"
)

// fakeKubectl puts a kubectl on PATH that records its arguments (one per
// line) and its standard input in dir, and exits with $KUBECTL_EXIT.
func fakeKubectl(t *testing.T, env []string) (newEnv []string, dir string) {
	t.Helper()
	dir = t.TempDir()
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$KUBECTL_LOG/args\"\ncat > \"$KUBECTL_LOG/stdin\"\nexit ${KUBECTL_EXIT:-0}\n"
	if err := os.WriteFile(filepath.Join(dir, "kubectl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return append(env, "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"), "KUBECTL_LOG="+dir), dir
}

// kubectlCall is what the fake kubectl last received; ok is false when it
// did not run. Each call forgets the one before.
func kubectlCall(t *testing.T, dir string) (args []string, stdin string, ok bool) {
	t.Helper()
	a, err := os.ReadFile(filepath.Join(dir, "args"))
	if err != nil {
		return nil, "", false
	}
	in, _ := os.ReadFile(filepath.Join(dir, "stdin"))
	os.Remove(filepath.Join(dir, "args"))
	os.Remove(filepath.Join(dir, "stdin"))
	return strings.Split(strings.TrimSuffix(string(a), "\n"), "\n"), string(in), true
}

const appYAML = `# The app, with comments kept.
apiVersion: apps/v1
kind: Deployment
metadata: {name: hello, labels: {app: hello}}
spec:
  template:
    spec:
      containers:
      - name: hello
        image: "ko://example.com/hello/cmd/hello"   # built by kiln
        env: [{name: SAME, value: ko://example.com/hello/cmd/hello}]
`

const extraYML = "apiVersion: v1\r\nkind: Pod\r\nmetadata:\r\n  name: once\r\nspec:\r\n  containers:\r\n  - image: 'ko://./cmd/hello'\r\n"

var localRef = regexp.MustCompile(`kiln\.local/hello-[0-9a-f]{32}@sha256:[0-9a-f]{64}`)

// TestResolveApplyRun builds the hello module for real into the local
// store, and drives resolve, apply, create, run and delete against a fake
// kubectl.
func TestResolveApplyRun(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: compiles a package")
	}
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, testutil.HelloModule)
	testutil.WriteFiles(t, dir, map[string]string{
		"config/app.yaml":  appYAML,
		"config/extra.yml": extraYML,
		"config/notes.txt": "ko://example.com/hello/cmd/hello\n",
		"bad/lib.yaml":     "a: 1\n---\nimage: ko://example.com/hello/lib\n",
		"bad/nope.yaml":    "image: ko://example.com/hello/nope\n",
		"bad/broken.yaml":  "image: ko://example.com/hello/broken\n",
	})
	env, log := fakeKubectl(t, testEnv(t))

	code, stdout, stderr := kiln(t, dir, env, "resolve", "-f", "config")
	if code != 0 {
		t.Fatalf("resolve: exit %d: %s", code, stderr)
	}
	ref := localRef.FindString(stdout)
	if ref == "" {
		t.Fatalf("no kiln.local reference in:\n%s", stdout)
	}
	want := strings.NewReplacer("ko://example.com/hello/cmd/hello", ref, "ko://./cmd/hello", ref).Replace(appYAML + "---\n" + extraYML)
	if stdout != want {
		t.Errorf("resolve printed:\n%q\nwant:\n%q", stdout, want)
	}
	storeDir := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "KILN_STORE="); ok {
			storeDir = v
		}
	}
	if _, err := resolveInLayout(storeDir, ref); err != nil {
		t.Errorf("%s is not in the store: %v", ref, err)
	}

	t.Run("apply pipes the result and passes kubectl flags", func(t *testing.T) {
		code, _, stderr := kiln(t, dir, env, "apply", "-f", "config", "-n", "ns", "--context", "ctx", "--insecure-skip-tls-verify", "--as-group", "a", "--as-group", "b", "--", "--dry-run=client")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		args, stdin, ok := kubectlCall(t, log)
		wantArgs := []string{"apply", "-f", "-", "--context=ctx", "--namespace=ns", "--insecure-skip-tls-verify=true", "--as-group=a", "--as-group=b", "--dry-run=client"}
		if !ok || strings.Join(args, " ") != strings.Join(wantArgs, " ") {
			t.Errorf("kubectl args %q, want %q", args, wantArgs)
		}
		if stdin != want {
			t.Errorf("kubectl read:\n%q\nwant:\n%q", stdin, want)
		}
	})
	t.Run("create with -l and --image-refs", func(t *testing.T) {
		code, _, stderr := kiln(t, dir, env, "create", "-f", "config", "-l", "app=hello", "--image-refs", "refs.txt")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		args, stdin, _ := kubectlCall(t, log)
		if strings.Join(args, " ") != "create -f -" || stdin != strings.ReplaceAll(appYAML, "ko://example.com/hello/cmd/hello", ref) {
			t.Errorf("kubectl %q read:\n%s", args, stdin)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "refs.txt")); string(got) != ref+"\n" {
			t.Errorf("refs.txt = %q, want %q", got, ref+"\n")
		}
	})
	t.Run("run builds and calls kubectl run", func(t *testing.T) {
		code, _, stderr := kiln(t, dir, env, "run", "./cmd/hello", "-n", "ns", "--", "-v", "arg")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		args, _, _ := kubectlCall(t, log)
		pod := strings.TrimPrefix(strings.Split(ref, "@")[0], "kiln.local/")
		wantArgs := []string{"run", pod, "--image", ref, "--attach", "--rm", "--restart=Never", "--log-flush-frequency=1s", "--namespace=ns", "-v", "arg"}
		if strings.Join(args, " ") != strings.Join(wantArgs, " ") {
			t.Errorf("kubectl args %q, want %q", args, wantArgs)
		}
	})
	t.Run("kubectl failing fails apply", func(t *testing.T) {
		code, _, stderr := kiln(t, dir, append(env, "KUBECTL_EXIT=3"), "apply", "-f", "config/app.yaml")
		if code != 1 || !strings.Contains(stderr, "kubectl apply failed: exit status 3") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
		kubectlCall(t, log)
	})

	for _, tt := range []struct{ file, want string }{
		{"bad/lib.yaml", "bad/lib.yaml:3: ko://example.com/hello/lib: package example.com/hello/lib is package lib, not main"},
		{"bad/nope.yaml", "bad/nope.yaml:1: ko://example.com/hello/nope: package example.com/hello/nope not found"},
		{"bad/broken.yaml", "undefined: undefined"},
	} {
		t.Run("a failing build runs no kubectl: "+tt.file, func(t *testing.T) {
			code, stdout, stderr := kiln(t, dir, env, "apply", "-f", "config", "-f", tt.file)
			if code != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q, want %q", code, stderr, tt.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if args, _, ran := kubectlCall(t, log); ran {
				t.Errorf("kubectl ran: %q", args)
			}
		})
	}
}

func TestKubectlCommandsWithoutBuild(t *testing.T) {
	dir := t.TempDir()
	env, log := fakeKubectl(t, testEnv(t))

	code, _, stderr := kiln(t, dir, env, "delete", "-f", "x.yaml", "--wait=false", "-n", "y", "--", "z")
	if code != 0 {
		t.Fatalf("delete: exit %d: %s", code, stderr)
	}
	if args, _, _ := kubectlCall(t, log); strings.Join(args, " ") != "delete -f x.yaml --wait=false -n y -- z" {
		t.Errorf("kubectl args %q", args)
	}

	noKubectl := append(testEnv(t), "PATH="+t.TempDir())
	for _, args := range [][]string{{"apply", "-f", "x.yaml"}, {"create", "-f", "x.yaml"}, {"delete", "pod", "x"}, {"run", "./cmd/x"}} {
		code, _, stderr := kiln(t, dir, noKubectl, args...)
		if code != 1 || !strings.Contains(stderr, "kubectl not found on PATH") {
			t.Errorf("%s without kubectl: exit %d, %q", args[0], code, stderr)
		}
	}
}

func TestResolveBadInput(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{"go.mod": "module example.com/m\n", "syntax.yaml": "a: 1\nb: [\n", "plain.yaml": "a: ko://example.com/m/x\n  folded\n"})
	testutil.WriteFiles(t, dir, map[string]string{"k/ok/kustomization.yaml": "resources: []\n", "k/broken/kustomization.yaml": "resources: [missing.yaml]\n"})
	testutil.WriteFiles(t, dir, map[string]string{
		"lib/lib.go":         "package lib\n",
		"unknown.yaml":       "kind: Pod\nimage: ko://example.com/m/nope\n",
		"lib.yaml":           "a: 1\n---\nimage: ko://example.com/m/lib\n",
		"cfg/ok.yaml":        "a: 1\n",
		"cfg/late/deep.yaml": "a: 1\n",
	})
	// An unreadable file inside a directory: a link to nothing (root reads
	// any mode, so a chmod would not do).
	if err := os.Symlink("nowhere.yaml", filepath.Join(dir, "cfg", "gone.yaml")); err != nil {
		t.Fatal(err)
	}
	env := testEnv(t)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no input", []string{"resolve"}, "no input: name files"},
		{"missing file", []string{"resolve", "-f", "nope.yaml"}, "-f nope.yaml: no such file or directory"},
		{"syntax", []string{"resolve", "-f", "syntax.yaml"}, "syntax.yaml:2:"},
		{"unknown ko://", []string{"resolve", "-f", "unknown.yaml"}, "unknown.yaml:2: ko://example.com/m/nope: package example.com/m/nope not found"},
		{"not main", []string{"resolve", "-f", "lib.yaml"}, "lib.yaml:3: ko://example.com/m/lib: package example.com/m/lib is package lib, not main"},
		{"unreadable file in a directory", []string{"resolve", "-f", "cfg"}, "-f cfg: cfg/gone.yaml: "},
		// --tag-only with several platforms is no error: ko v0.19.1 pushes
		// the index under the tag, and kiln does the same (see
		// TestKoFlagsDifferential in internal/e2e).
		{"folded reference", []string{"resolve", "-f", "plain.yaml"}, "plain.yaml:1: ko://example.com/m/x folded: the reference is folded"},
		{"bad selector", []string{"resolve", "-f", "syntax.yaml", "-l", "a in b"}, "bad label selector"},
		{"not strict", []string{"resolve", "-f", "syntax.yaml", "--strict=false"}, "replaces only ko:// strings"},
		{"positional", []string{"resolve", "x.yaml"}, "unknown command"},
		{"-k without a kustomization", []string{"resolve", "-k", "."}, "-k .: no kustomization.yaml, kustomization.yml or Kustomization in it"},
		{"-k with -f", []string{"resolve", "-k", "k/ok", "-f", "syntax.yaml"}, "-k and -f together"},
		{"a kustomization error", []string{"resolve", "-k", "k/broken"}, "-k k/broken: kustomize: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := kiln(t, dir, env, tt.args...)
			if code != 1 || !strings.Contains(stderr, tt.want) || stdout != "" || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d, stdout %q, stderr %q, want an error with %q", code, stdout, stderr, tt.want)
			}
		})
	}
}
