// Package testutil holds helpers shared by kiln's tests, so that a new test
// is a few lines: fixture modules and files, random images, a quiet
// in-process registry, signing keys, Go environments, readers of layers
// and layouts, a clock, a server run as a process, a git repository served
// over HTTP, and the rule that a missing outside program fails a
// test under CI=true. Only tests import it; it imports no kiln package
// above layer -1.
package testutil

import (
	"archive/tar"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// RequireTool returns the path of an outside program. Without it the test
// is skipped on a laptop and fails when CI=true: CI never hides a check.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required under CI=true (install it with .ci/tools.sh): %v", name, err)
	}
	t.Skipf("%s not installed: skipping (this fails under CI=true)", name)
	return ""
}

// WriteFiles writes name→content under dir, creating directories.
func WriteFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// HelloModule is a small main package with kodata, as a module at the root.
var HelloModule = map[string]string{
	"go.mod": "module example.com/hello\n\ngo 1.22\n",
	"cmd/hello/main.go": `package main

import (
	"fmt"
	"os"
)

var version = "dev"

func main() {
	data, _ := os.ReadFile(os.Getenv("KO_DATA_PATH") + "/greeting.txt")
	fmt.Printf("%s %s\n", data, version)
}
`,
	"cmd/hello/kodata/greeting.txt": "hello",
	"lib/lib.go":                    "package lib\n",
	"broken/main.go":                "package main\n\nfunc main() { undefined() }\n",
}

// Files reads every entry of img's flattened filesystem into a map (path
// without leading slash → header); contents are returned for the paths in
// want. A later layer's entry replaces an earlier one's.
func Files(t testing.TB, img v1.Image, want ...string) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	hdrs := map[string]*tar.Header{}
	data := map[string][]byte{}
	for _, l := range layers {
		readLayer(t, l, hdrs, data, want)
	}
	return hdrs, data
}

// LayerFiles is Files for one layer.
func LayerFiles(t testing.TB, l v1.Layer, want ...string) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	hdrs := map[string]*tar.Header{}
	data := map[string][]byte{}
	readLayer(t, l, hdrs, data, want)
	return hdrs, data
}

// readLayer adds l's entries to hdrs, and the contents of those in want
// to data.
func readLayer(t testing.TB, l v1.Layer, hdrs map[string]*tar.Header, data map[string][]byte, want []string) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Clean("/" + h.Name)[1:]
		hdrs[name] = h
		if slices.Contains(want, name) {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			data[name] = b
		}
	}
}
