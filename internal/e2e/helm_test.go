package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/cli"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// helmChart is a chart whose image comes from its values as a ko://
// reference, used by two templates; the templates' comments are what
// helm prints and kiln must keep.
var helmChart = map[string]string{
	"chart/Chart.yaml": "apiVersion: v2\nname: hello\nversion: 0.1.0\nappVersion: \"1.0\"\n",
	"chart/values.yaml": `# The image is built by kiln.
image: ko://example.com/hello/cmd/hello
replicas: 2
`,
	"chart/templates/deployment.yaml": `# The service's pods.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-hello
  labels: {app: hello, chart: {{ .Chart.Name }}-{{ .Chart.Version }}}
spec:
  replicas: {{ .Values.replicas }}
  template:
    spec:
      containers:
      - name: hello
        image: {{ .Values.image }}   # from values.yaml
`,
	"chart/templates/job.yaml": `apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: migrate
        image: {{ .Values.image | quote }}
        args: [migrate]
`,
	"chart/templates/NOTES.txt": "Installed {{ .Release.Name }}.\n",
}

var helmRef = regexp.MustCompile(`kiln\.local/hello-[0-9a-f]{32}@sha256:[0-9a-f]{64}`)

// TestHelmTemplateResolve renders a chart with the real helm and pipes
// helm template's output into kiln resolve -f -, as a user does: the ko://
// image is built once and replaced, and every other byte, helm's "# Source:"
// lines and the chart's comments included, is kept.
func TestHelmTemplateResolve(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: compiles a package")
	}
	helm := testutil.RequireTool(t, "helm")
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, testutil.HelloModule)
	testutil.WriteFiles(t, dir, helmChart)
	home := t.TempDir()
	helmEnv := append(os.Environ(), "HOME="+home, "HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"), "HELM_DATA_HOME="+filepath.Join(home, "data"))

	// What helm prints, read apart from the pipe to compare with.
	render := exec.Command(helm, "template", "rel", "chart")
	render.Dir, render.Env = dir, helmEnv
	rendered, err := render.Output()
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, stderrOf(err))
	}
	for _, s := range []string{"# Source: hello/templates/deployment.yaml\n", "# Source: hello/templates/job.yaml\n", "# The service's pods.\n", "   # from values.yaml\n"} {
		if !bytes.Contains(rendered, []byte(s)) {
			t.Fatalf("helm template printed no %q (the test's chart is wrong):\n%s", s, rendered)
		}
	}

	// helm template … | kiln resolve -f -
	pipe := exec.Command(helm, "template", "rel", "chart")
	pipe.Dir, pipe.Env = dir, helmEnv
	helmOut, err := pipe.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var helmErr bytes.Buffer
	pipe.Stderr = &helmErr
	if err := pipe.Start(); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), cli.Invocation{
		Args: []string{"resolve", "-f", "-", "--image-refs", "refs.txt"}, Env: kilnEnv(t), Dir: dir,
		Stdin: helmOut, Stdout: &out, Stderr: &errb,
	})
	if err := pipe.Wait(); err != nil {
		t.Fatalf("helm template: %v\n%s", err, helmErr.String())
	}
	if code != 0 {
		t.Fatalf("kiln resolve -f -: exit %d\n%s", code, errb.String())
	}
	ref := helmRef.FindString(out.String())
	if ref == "" {
		t.Fatalf("no kiln.local reference in:\n%s", out.String())
	}
	want := strings.ReplaceAll(string(rendered), "ko://example.com/hello/cmd/hello", ref)
	if out.String() != want {
		t.Errorf("kiln resolve printed:\n%s\nwant helm's output byte for byte with the reference replaced:\n%s", out.String(), want)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "refs.txt")); string(got) != ref+"\n" {
		t.Errorf("--image-refs wrote %q, want the one image built once: %q", got, ref+"\n")
	}
}

// stderrOf is what a failed command printed on stderr, when exec kept it.
func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
