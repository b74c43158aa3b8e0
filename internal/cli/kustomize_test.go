package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/resolve"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// kustomization is a base whose images: entry turns two containers' image
// into a ko:// reference, and an overlay with a name prefix and a label.
var kustomization = map[string]string{
	"k/base/kustomization.yaml": "resources: [app.yaml]\nimages:\n- name: hello\n  newName: ko://example.com/hello/cmd/hello\n",
	"k/base/app.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: app, labels: {app: hello}}
spec:
  template:
    spec:
      containers:
      - {name: a, image: hello}
      - {name: b, image: hello}
`,
	"k/overlay/kustomization.yaml": "resources: [../base]\nnamePrefix: prod-\n",
}

// TestResolveKustomize builds the hello module for real and resolves,
// applies and creates a kustomization with -k.
func TestResolveKustomize(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: compiles a package")
	}
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, testutil.HelloModule)
	testutil.WriteFiles(t, dir, kustomization)
	env, log := fakeKubectl(t, testEnv(t))

	own, err := resolve.Kustomize("k/overlay", dir)
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := kiln(t, dir, env, "resolve", "-k", "k/overlay", "--image-refs", "refs.txt")
	if code != 0 {
		t.Fatalf("resolve -k: exit %d: %s", code, stderr)
	}
	ref := localRef.FindString(stdout)
	if ref == "" {
		t.Fatalf("no kiln.local reference in:\n%s", stdout)
	}
	want := strings.ReplaceAll(string(own.Data), "ko://example.com/hello/cmd/hello", ref)
	if stdout != want || !strings.Contains(want, "name: prod-app") || strings.Count(want, ref) != 2 {
		t.Errorf("resolve -k printed:\n%s\nwant kustomize's output with %s twice:\n%s", stdout, ref, want)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "refs.txt")); string(got) != ref+"\n" {
		t.Errorf("refs.txt = %q, want the one image %q", got, ref+"\n")
	}

	for _, verb := range []string{"apply", "create"} {
		t.Run(verb+" -k pipes kustomize's resolved output", func(t *testing.T) {
			code, stdout, stderr := kiln(t, dir, env, verb, "-k", "k/overlay", "-l", "app=hello", "-n", "ns")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			args, stdin, ok := kubectlCall(t, log)
			if !ok || strings.Join(args, " ") != verb+" -f - --namespace=ns" || stdin != want || stdout != "" {
				t.Errorf("kubectl %q read:\n%s\nwant:\n%s\nstdout %q", args, stdin, want, stdout)
			}
		})
	}
	t.Run("a kustomization error runs no kubectl", func(t *testing.T) {
		code, stdout, stderr := kiln(t, dir, env, "apply", "-k", "k/base/app.yaml")
		if code != 1 || stdout != "" || !strings.Contains(stderr, "-k k/base/app.yaml: not a directory") {
			t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		if args, _, ran := kubectlCall(t, log); ran {
			t.Errorf("kubectl ran: %q", args)
		}
	})
}
