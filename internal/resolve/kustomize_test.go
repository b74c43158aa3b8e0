package resolve

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/kilnbuild/kiln/internal/testutil"
)

// KustomizeFixture is a base and an overlay that use what ko users write:
// images: rewriting a name to a ko:// reference (twice in one object), a
// ko:// reference written directly, a strategic-merge patch, namePrefix and
// a configMapGenerator whose hashed name kustomize propagates.
var KustomizeFixture = map[string]string{
	"base/kustomization.yaml": `resources:
- deployment.yaml
- service.yaml
images:
- name: hello
  newName: ko://example.com/hello/cmd/hello
`,
	"base/deployment.yaml": `# The app. kustomize drops this comment.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  labels: {app: hello}
spec:
  replicas: 1
  selector: {matchLabels: {app: hello}}
  template:
    metadata: {labels: {app: hello}}
    spec:
      initContainers:
      - name: migrate
        image: ko://example.com/hello/cmd/migrate # written as ko:// in the base
      containers:
      - name: hello
        image: hello
      - name: hello-admin
        image: hello
        args: [--admin]
`,
	"base/service.yaml": `apiVersion: v1
kind: Service
metadata:
  name: app
spec:
  selector: {app: hello}
  ports: [{port: 80}]
`,
	"overlay/kustomization.yaml": `resources:
- ../base
namePrefix: prod-
patches:
- path: patch.yaml
configMapGenerator:
- name: app-config
  literals:
  - MODE=prod
images:
- name: worker
  newName: ko://example.com/hello/cmd/worker
`,
	"overlay/patch.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  replicas: 3
  template:
    spec:
      containers:
      - name: worker
        image: worker
        envFrom:
        - configMapRef: {name: app-config}
`,
}

func TestKustomize(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, KustomizeFixture)

	in, err := Kustomize("overlay", dir)
	if err != nil {
		t.Fatal(err)
	}
	if in.Name != "-k overlay" {
		t.Errorf("Name = %q", in.Name)
	}
	// kustomize's own output, as kustomize build prints it.
	m, err := krusty.MakeKustomizer(&krusty.Options{
		Reorder:          krusty.ReorderOptionLegacy,
		LoadRestrictions: krusty.MakeDefaultOptions().LoadRestrictions,
		PluginConfig:     krusty.MakeDefaultOptions().PluginConfig,
	}).Run(filesys.MakeFsOnDisk(), filepath.Join(dir, "overlay"))
	if err != nil {
		t.Fatal(err)
	}
	own, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}

	plan, err := Scan([]Input{in}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	builds := map[string]int{}
	res, err := plan.Resolve(context.Background(), 4, func(_ context.Context, ip string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		builds[ip]++
		return fakeRef(ip), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{"example.com/hello/cmd/hello", "example.com/hello/cmd/migrate", "example.com/hello/cmd/worker"} {
		if builds[ip] != 1 {
			t.Errorf("%s built %d times, want once", ip, builds[ip])
		}
	}
	if len(builds) != 3 {
		t.Errorf("built %v, want 3 packages", builds)
	}
	want := strings.NewReplacer(
		"ko://example.com/hello/cmd/hello", fakeRef("example.com/hello/cmd/hello"),
		"ko://example.com/hello/cmd/migrate", fakeRef("example.com/hello/cmd/migrate"),
		"ko://example.com/hello/cmd/worker", fakeRef("example.com/hello/cmd/worker"),
	).Replace(string(own))
	if string(res.Output) != want {
		t.Errorf("resolved:\n%s\nwant kustomize's own output with the refs replaced:\n%s", res.Output, want)
	}
	// What kustomize did is there: the fixture exercises each feature.
	for _, s := range []string{
		"name: prod-app-config-", // generated, hashed and prefixed
		"name: prod-app\n",
		"replicas: 3",
		"image: " + fakeRef("example.com/hello/cmd/hello") + "\n", // images: replaced the tag too
		"image: " + fakeRef("example.com/hello/cmd/worker"),       // a container the patch added
		"kind: Service",
	} {
		if !strings.Contains(string(res.Output), s) {
			t.Errorf("output lacks %q:\n%s", s, res.Output)
		}
	}
	if strings.Contains(string(res.Output), "#") {
		t.Errorf("kustomize's output has a comment: the -k docs say it has none:\n%s", res.Output)
	}
	if strings.Index(string(res.Output), "kind: ConfigMap") > strings.Index(string(res.Output), "kind: Deployment") {
		t.Errorf("the ConfigMap comes after the Deployment: not kustomize's legacy order:\n%s", res.Output)
	}
}

func TestKustomizeBadInput(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, KustomizeFixture)
	testutil.WriteFiles(t, dir, map[string]string{
		"plain/app.yaml":                  "apiVersion: v1\nkind: Pod\n",
		"broken/kustomization.yaml":       "resources:\n- missing.yaml\n",
		"syntax/kustomization.yaml":       "resources: [\n",
		"escape/kustomization.yaml":       "resources:\n- ../base/service.yaml\n",
		"file.yaml/kustomization.yaml":    "resources: []\n",
		"upper/Kustomization":             "resources:\n- ../base\n",
		"yml/kustomization.yml":           "resources:\n- ../base\n",
		"wrongkind/kustomization.yaml":    "kind: Deployment\n",
		"conflict/kustomization.yaml":     "resources:\n- ../base\n- ../base\n",
		"unknownfield/kustomization.yaml": "resourcez: []\n",
	})
	for _, tt := range []struct {
		dir    string
		want   string // in the error; "" means no error
		target error
	}{
		{"nope", "-k nope: no such file or directory", nil},
		{"plain", "-k plain: no kustomization.yaml", ErrNoKustomization},
		{"plain/app.yaml", "-k plain/app.yaml: not a directory", nil},
		{"broken", "-k broken: kustomize: ", nil},
		{"syntax", "-k syntax: kustomize: ", nil},
		{"escape", "-k escape: kustomize: ", nil},
		{"wrongkind", "-k wrongkind: kustomize: ", nil},
		{"conflict", "-k conflict: kustomize: ", nil},
		{"unknownfield", "-k unknownfield: kustomize: ", nil},
		{"upper", "", nil},
		{"yml", "", nil},
		{"file.yaml", "", nil},
		{filepath.Join(dir, "yml"), "", nil},
	} {
		t.Run(tt.dir, func(t *testing.T) {
			in, err := Kustomize(tt.dir, dir)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if in.Name != "-k "+tt.dir {
					t.Errorf("Name = %q", in.Name)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v, want one line with %q", err, tt.want)
			}
			if tt.target != nil && !errors.Is(err, tt.target) {
				t.Errorf("error %v is not %v", err, tt.target)
			}
		})
	}
}

// TestKustomizeBuildTagDropsPlugins guards the Makefile's build tag: with
// it, kustomize leaves out its Go-plugin loader, whose import of package
// plugin makes a cgo build export every symbol (+7 MB, +13 MB resident).
// A kustomize upgrade that renames the tag fails here.
func TestKustomizeBuildTagDropsPlugins(t *testing.T) {
	goBin := testutil.RequireTool(t, "go")
	for _, tt := range []struct {
		tags string
		want bool
	}{{"", true}, {"kustomize_disable_go_plugin_support", false}} {
		out, err := exec.Command(goBin, "list", "-deps", "-tags", tt.tags, ".").CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		if got := slices.Contains(strings.Fields(string(out)), "plugin"); got != tt.want {
			t.Errorf("-tags %q: package plugin linked = %v, want %v", tt.tags, got, tt.want)
		}
	}
}
