// Package internal_test fences the direction of imports between kiln's packages.
package internal_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// layer gives each package its place in the one-direction architecture:
// a package may import only packages of a lower layer.
var layer = map[string]int{
	"checked": -1, "oneline": -1, "remoteopt": -1, "buildrecord": -1,
	"platform": 0, "imageref": 0, "vcs": 0, "layer": 0, "config": 0, "store": 0, "keys": 0, "testutil": 0, "resolve": 0, "records": 0,
	"gobuild": 1, "base": 1, "image": 1, "publish": 1, "provenance": 1, "sign": 1, "registry": 1, "source": 1, "queue": 1,
	"sbom": 2, "pipeline": 2, "delve": 2,
	"attest": 3, "verify": 3, "compare": 3,
	"request": 4, "service": 4,
	"server": 5, "client": 5,
	"cli": 6,
	"e2e": 7,
}

const module = "github.com/kilnbuild/kiln/internal/"

func TestImportsFlowDownward(t *testing.T) {
	dirs, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		pkg := d.Name()
		own, known := layer[pkg]
		if !known {
			t.Errorf("internal/%s has no layer in depcheck_test.go: place it", pkg)
			continue
		}
		files, _ := filepath.Glob(filepath.Join(pkg, "*.go"))
		for _, file := range files {
			f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				dep, ok := strings.CutPrefix(path, module)
				if !ok {
					continue
				}
				dep, _, _ = strings.Cut(dep, "/")
				if strings.HasSuffix(file, "_test.go") {
					// A test may use its own package and those of its
					// layer, never one above: what it needs from there
					// belongs in a higher package's tests.
					if dep != pkg && dep != "testutil" && layer[dep] > own {
						t.Errorf("%s (a test) imports internal/%s: layer %d may import only its own layer or lower (internal/%s is %d)", file, dep, own, dep, layer[dep])
					}
					continue
				}
				if dep == "testutil" {
					t.Errorf("%s imports internal/testutil: only tests may", file)
					continue
				}
				if layer[dep] >= own {
					t.Errorf("%s imports internal/%s: layer %d may import only lower layers (internal/%s is %d)", file, dep, own, dep, layer[dep])
				}
			}
		}
	}
}
