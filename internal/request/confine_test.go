package request

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// TestConfine is every way a source's request or .ko.yaml can name a file
// of the server's: each is refused before anything is read.
func TestConfine(t *testing.T) {
	outside := t.TempDir()
	testutil.WriteFiles(t, outside, map[string]string{"secret": "s", "lay/index.json": "{}"})
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{
		"go.mod": "module example.com/app\n", "cmd/app/main.go": "package main\n", "data/ok.txt": "ok",
		"base/index.json": "{}",
	})
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "data/link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "lay"), filepath.Join(dir, "laylink")); err != nil {
		t.Fatal(err)
	}
	files := func(src string) config.Kiln {
		return config.Kiln{Defaults: config.Image{Files: []config.File{{Source: src, Path: "/x"}}}}
	}
	ok := Build{Packages: []string{"./cmd/app"}}
	for _, tc := range []struct {
		name    string
		cfg     config.Config
		b       Build
		gomod   string
		refused bool
	}{
		{name: "plain", b: ok},
		{name: "import path", b: Build{Packages: []string{"example.com/app/cmd/app"}}},
		{name: "base in the tree", b: Build{Packages: ok.Packages, Base: "oci:base"}},
		{name: "registry base", b: Build{Packages: ok.Packages, Base: "example.test/base:v1"}},
		{name: "extra file in the tree", cfg: config.Config{Kiln: files("data/ok.txt")}, b: ok},
		{name: "replacement in the tree", gomod: "module example.com/app\nreplace example.com/x => ./data\n", b: ok},
		{name: "replacement by version", gomod: "module example.com/app\nreplace example.com/x => example.com/y v1.0.0\n", b: ok},

		{name: "package above the tree", b: Build{Packages: []string{"../other"}}, refused: true},
		{name: "absolute package", b: Build{Packages: []string{outside}}, refused: true},
		{name: "request base on disk", b: Build{Packages: ok.Packages, Base: "oci:" + filepath.Join(outside, "lay")}, refused: true},
		{name: "request base through a symlink", b: Build{Packages: ok.Packages, Base: "oci:laylink"}, refused: true},
		{name: "archive base on disk", b: Build{Packages: ok.Packages, Base: "oci-archive:" + filepath.Join(outside, "secret")}, refused: true},
		{name: "base from the local store", b: Build{Packages: ok.Packages, Base: "kiln.local/app:v1"}, refused: true},
		{name: "config base on disk", cfg: config.Config{DefaultBaseImage: "oci:../" + filepath.Base(outside) + "/lay"}, b: ok, refused: true},
		{name: "config override on disk", cfg: config.Config{BaseImageOverrides: map[string]string{"example.com/app/cmd/app": "docker-archive:" + filepath.Join(outside, "secret")}}, b: ok, refused: true},
		{name: "build dir outside", cfg: config.Config{Builds: []config.Build{{ID: "a", Dir: outside}}}, b: ok, refused: true},
		{name: "build main outside", cfg: config.Config{Builds: []config.Build{{ID: "a", Main: "../../elsewhere"}}}, b: ok, refused: true},
		{name: "extra file outside", cfg: config.Config{Kiln: files(filepath.Join(outside, "secret"))}, b: ok, refused: true},
		{name: "extra file above", cfg: config.Config{Kiln: files("../secret")}, b: ok, refused: true},
		{name: "extra file through a symlink", cfg: config.Config{Kiln: files("data/link")}, b: ok, refused: true},
		{name: "per-build extra file outside", cfg: config.Config{Kiln: config.Kiln{Builds: map[string]config.Image{"a": {Files: []config.File{{Source: "/etc/passwd"}}}}}}, b: ok, refused: true},
		{name: "replacement outside", gomod: "module example.com/app\nreplace example.com/x => " + outside + "\n", b: ok, refused: true},
		{name: "replacement above", gomod: "module example.com/app\nreplace example.com/x => ../x\n", b: ok, refused: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gomod := tc.gomod
			if gomod == "" {
				gomod = "module example.com/app\n"
			}
			testutil.WriteFiles(t, dir, map[string]string{"go.mod": gomod})
			cfg := tc.cfg
			cfg.Dir = dir
			err := confine(dir, &cfg, tc.b)
			switch {
			case tc.refused && !errors.Is(err, ErrInvalid):
				t.Fatalf("confine = %v, want a refusal (ErrInvalid)", err)
			case !tc.refused && err != nil:
				t.Fatalf("confine = %v, want nil", err)
			}
			if err != nil {
				t.Log(err)
			}
		})
	}
}
