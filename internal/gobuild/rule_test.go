package gobuild

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/testutil"
)

// TestBuildRunsOnlyTheGoToolchain tries every way a .ko.yaml (a Target's env,
// flags and ldflags), the caller's environment and the go env file could
// make go build run another program. A marker program records each run:
// it must never run, and each refusal is one line.
func TestBuildRunsOnlyTheGoToolchain(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the marker is a shell script")
	}
	dir := t.TempDir()
	testWrite(t, dir, map[string]string{"go.mod": "module example.com/rule\n\ngo 1.22\n", "main.go": "package main\n\nfunc main() {}\n"})
	outside := t.TempDir()
	mark := filepath.Join(outside, "MARK")
	marker := filepath.Join(outside, "marker")
	if err := os.WriteFile(marker, []byte("#!/bin/sh\necho \"$0 $*\" >> "+mark+"\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// gcc -B DIR runs DIR/ld as its linker.
	if err := os.Symlink(marker, filepath.Join(outside, "ld")); err != nil {
		t.Fatal(err)
	}
	testWrite(t, outside, map[string]string{
		"overlay.json": `{"Replace":{}}`,
		"go.mod":       "module example.com/rule\n\ngo 1.22\n",
		"go.sum":       "",
	})
	inModuleOverlay := filepath.Join(dir, "overlay.json")
	testWrite(t, dir, map[string]string{"overlay.json": `{"Replace":{"` + filepath.Join(dir, "main.go") + `":"` + filepath.Join(outside, "evil.go") + `"}}`})
	testWrite(t, outside, map[string]string{"evil.go": "package main\n\nfunc main() { println(1) }\n"})

	const (
		ok      = iota // builds, and the marker does not run
		refused        // refused in one line, and the marker does not run
	)
	tests := []struct {
		name    string
		env     []string // the caller's environment, added to testutil.HermeticGoEnv
		envFile string   // written to $HOME/.config/go/env (the go env -w file)
		xdg     bool     // write envFile under XDG_CONFIG_HOME=$HOME/xdg instead
		goenv   string   // written to a file that GOENV names
		target  Target   // what a .ko.yaml gives: env, flags, ldflags
		want    int
		says    string // what the refusal says
	}{
		{name: "plain build", want: ok},

		// .ko.yaml: builds[].env / defaultEnv, flags, ldflags.
		{name: "config cgo and extld", target: Target{Env: []string{"CGO_ENABLED=1"}, Ldflags: []string{"-linkmode=external", "-extld=" + marker}}, want: refused, says: `ldflag "-linkmode=external": cgo is not allowed`},
		{name: "config cgo and CC", target: Target{Env: []string{"CGO_ENABLED=1", "CC=" + marker}, Ldflags: []string{"-linkmode=external"}}, want: refused, says: `ldflag "-linkmode=external": cgo is not allowed`},
		{name: "config CC alone", target: Target{Env: []string{"CC=" + marker}}, want: refused, says: "build env CC="},
		{name: "config CXX", target: Target{Env: []string{"CXX=" + marker}}, want: refused, says: "build env CXX="},
		{name: "config CGO_LDFLAGS", target: Target{Env: []string{"CGO_LDFLAGS=-B" + outside}}, want: refused, says: "build env CGO_LDFLAGS="},
		{name: "config CGO_ENABLED=1 alone", target: Target{Env: []string{"CGO_ENABLED=1"}}, want: refused, says: "build env CGO_ENABLED=1: cgo is not allowed"},
		{name: "config GOCACHEPROG", target: Target{Env: []string{"GOCACHEPROG=" + marker}}, want: refused, says: "build env GOCACHEPROG="},
		{name: "config GOENV", target: Target{Env: []string{"GOENV=" + filepath.Join(outside, "env")}}, want: refused, says: "build env GOENV="},
		{name: "config unknown variable", target: Target{Env: []string{"FOO=bar"}}, want: refused, says: "build env FOO=bar: not allowed"},
		{name: "config ldflags in one string", target: Target{Env: []string{"CGO_ENABLED=1"}, Ldflags: []string{"-s -w -linkmode=external -extld=" + marker}}, want: refused, says: `ldflag "-linkmode=external"`},
		{name: "config ldflags quoted extldflags", target: Target{Env: []string{"CGO_ENABLED=1"}, Ldflags: []string{"-s '-extldflags=-B" + outside + "' -linkmode=external"}}, want: refused, says: `ldflag "-extldflags=-B`},
		{name: "config ldflags pattern", target: Target{Env: []string{"CGO_ENABLED=1"}, Ldflags: []string{"all=-linkmode=external -extld=" + marker}}, want: refused, says: `ldflag "-linkmode=external"`},
		{name: "config ldflags extld after -X", target: Target{Ldflags: []string{"-X", "main.v=1", "-extld=" + marker}}, want: refused, says: `ldflag "-extld=`},
		{name: "config ldflags output", target: Target{Ldflags: []string{"-o=" + filepath.Join(outside, "bin")}}, want: refused, says: `ldflag "-o=`},
		{name: "config flags -ldflags", target: Target{Env: []string{"CGO_ENABLED=1"}, Flags: []string{"-ldflags=-linkmode=external -extld=" + marker}}, want: refused, says: `build flag "-ldflags=-linkmode=external -extld=`},
		{name: "config flags -ldflags as two args", target: Target{Env: []string{"CGO_ENABLED=1"}, Flags: []string{"-ldflags", "-linkmode=external -extld=" + marker}}, want: refused, says: `build flag "-ldflags -linkmode=external -extld=`},
		{name: "config flags toolexec", target: Target{Flags: []string{"-toolexec=" + marker}}, want: refused, says: `build flag "-toolexec=`},
		{name: "config flags --toolexec", target: Target{Flags: []string{"--toolexec", marker}}, want: refused, says: `build flag "--toolexec"`},
		{name: "config flags gccgo", target: Target{Flags: []string{"-compiler=gccgo", "-gccgoflags=-B" + outside}}, want: refused, says: `build flag "-compiler=gccgo"`},
		{name: "config flags gcflags importcfg", target: Target{Flags: []string{"-gcflags=all=-importcfg=" + filepath.Join(outside, "cfg")}}, want: refused, says: `gcflag "-importcfg=`},
		{name: "config flags overlay outside", target: Target{Flags: []string{"-overlay=" + filepath.Join(outside, "overlay.json")}}, want: refused, says: `build flag "-overlay=`},
		{name: "config flags overlay replacing from outside", target: Target{Flags: []string{"-overlay=" + inModuleOverlay}}, want: refused, says: "evil.go is outside the module"},
		{name: "config flags modfile outside", target: Target{Flags: []string{"-modfile=" + filepath.Join(outside, "go.mod")}}, want: refused, says: `build flag "-modfile=`},
		{name: "config flags pkgdir outside", target: Target{Flags: []string{"-pkgdir=" + outside}}, want: refused, says: `build flag "-pkgdir=`},
		{name: "config flags pkgdir up", target: Target{Flags: []string{"-pkgdir=../x"}}, want: refused, says: `build flag "-pkgdir=../x"`},
		{name: "config flags race", target: Target{Flags: []string{"-race"}}, want: refused, says: `build flag "-race": cgo is not allowed`},
		{name: "config flags output", target: Target{Flags: []string{"-o", filepath.Join(outside, "bin")}}, want: refused, says: `build flag "-o"`},
		{name: "config flags a package", target: Target{Flags: []string{"./other"}}, want: refused, says: `build flag "./other"`},
		{name: "config GOFLAGS toolexec", target: Target{Env: []string{"GOFLAGS=-toolexec=" + marker}}, want: refused, says: `GOFLAGS in the build env "-toolexec=`},
		{name: "config GOFLAGS quoted ldflags", target: Target{Env: []string{"GOFLAGS='-ldflags=-linkmode=external -extld=" + marker + "'", "CGO_ENABLED=1"}}, want: refused, says: `ldflag "-linkmode=external"`},
		{name: "config allowed settings", target: Target{Env: []string{"CGO_ENABLED=0", "GOFLAGS=-mod=mod -tags=netgo", "GOEXPERIMENT="}, Flags: []string{"-tags", "osusergo", "-trimpath", "-buildvcs=false"}, Ldflags: []string{"-s -w", "-X 'main.v=a b'"}}, want: ok},

		// The caller's environment.
		{name: "env CGO_ENABLED=1", env: []string{"CGO_ENABLED=1", "CC=" + marker, "GOFLAGS=-ldflags=-linkmode=external"}, want: refused, says: "CGO_ENABLED=1 in the environment"},
		{name: "env CC is not passed", env: []string{"CC=" + marker, "CXX=" + marker, "CGO_LDFLAGS=-B" + outside}, want: ok},
		{name: "env GOFLAGS toolexec", env: []string{"GOFLAGS=-toolexec=" + marker}, want: refused, says: `GOFLAGS in the environment "-toolexec=`},
		{name: "env GOFLAGS quoted ldflags", env: []string{"GOFLAGS='-ldflags=-s -extld=" + marker + "'"}, want: refused, says: `ldflag "-extld=`},
		{name: "env GOCACHEPROG is not passed", env: []string{"GOCACHEPROG=" + marker}, want: ok},
		{name: "env GOFLAGS test flags are ignored", env: []string{"GOFLAGS=-count=1 -mod=mod"}, want: ok},
		{name: "env GOFLAGS quoted and allowed", env: []string{"GOFLAGS='-ldflags=-s -w' -mod=mod"}, want: ok},

		// The go env file: GOENV's, and go env -w's default one.
		{name: "GOENV file toolexec", goenv: "GOFLAGS=-toolexec=" + marker + "\n", want: refused, says: `GOFLAGS in go env file`},
		{name: "GOENV file cgo", goenv: "CGO_ENABLED=1\nCC=" + marker + "\nGOFLAGS=-ldflags=-linkmode=external\n", want: refused, says: "CGO_ENABLED=1 in go env file"},
		{name: "go env -w file under XDG_CONFIG_HOME", xdg: true, envFile: "GOFLAGS=-toolexec=" + marker + "\n", want: refused, says: `/xdg/go/env "-toolexec=`},
		{name: "go env -w file toolexec", envFile: "GOFLAGS=-toolexec=" + marker + "\n", want: refused, says: `/.config/go/env "-toolexec=`},
		{name: "go env -w file CC is not passed", envFile: "CC=" + marker + "\nGOCACHEPROG=" + marker + "\n", want: ok},
		{name: "go env -w file overridden by the environment", envFile: "GOFLAGS=-toolexec=" + marker + "\n", env: []string{"GOFLAGS=-mod=mod"}, want: ok},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(mark)
			env := testutil.HermeticGoEnv(t)
			home := lookupEnv(env, "HOME")
			if tt.envFile != "" {
				configDir := filepath.Join(home, ".config")
				if tt.xdg {
					configDir = filepath.Join(home, "xdg")
					env = append(env, "XDG_CONFIG_HOME="+configDir)
				}
				testWriteAll(t, filepath.Join(configDir, "go", "env"), tt.envFile)
			}
			if tt.goenv != "" {
				f := filepath.Join(home, "goenv")
				testWriteAll(t, f, tt.goenv)
				env = append(env, "GOENV="+f)
			}
			env = append(env, tt.env...)
			b := &Builder{Env: env}
			target := tt.target
			target.Package = Package{ImportPath: "example.com/rule", Name: "main", Dir: dir, ModulePath: "example.com/rule", ModuleDir: dir}
			target.Platform = v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
			out := filepath.Join(t.TempDir(), "bin")
			err := b.Build(context.Background(), target, out)
			if data, _ := os.ReadFile(mark); len(data) > 0 {
				t.Errorf("the marker ran: %s", data)
			}
			switch tt.want {
			case ok:
				if err != nil {
					t.Errorf("Build: %v", err)
				} else if _, err := BuildID(out); err != nil {
					t.Errorf("no Go binary: %v", err)
				}
			case refused:
				if err == nil {
					t.Fatal("Build succeeded, want a refusal")
				}
				if msg := err.Error(); strings.Contains(msg, "\n") || !slices.ContainsFunc(refusalWords, func(w string) bool { return strings.Contains(msg, w) }) {
					t.Errorf("refusal is not one clear line: %q", msg)
				}
				if !strings.Contains(err.Error(), tt.says) {
					t.Errorf("refusal does not say %q", tt.says)
				}
				if !errors.Is(err, ErrNotAllowed) {
					t.Errorf("refusal is not ErrNotAllowed: %v", err)
				}
				t.Log(err)
			}
		})
	}
}

// refusalWords are what a refusal says.
var refusalWords = []string{"not allowed"}

func testWriteAll(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkEnviron is the rule's cost per compile: it runs no process, and
// the go env file is read once per Builder.
func BenchmarkEnviron(b *testing.B) {
	home := b.TempDir()
	testWriteAll(b, filepath.Join(home, ".config", "go", "env"), "GOPROXY=off\nGOFLAGS=-mod=mod\n")
	bld := &Builder{Env: append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME=")}
	t := Target{
		Package:  Package{Dir: home, ModuleDir: home},
		Platform: v1.Platform{OS: "linux", Architecture: "amd64"},
		Env:      []string{"GOFLAGS=-mod=mod -tags=netgo", "CGO_ENABLED=0"},
		Flags:    []string{"-tags", "osusergo", "-trimpath"},
		Ldflags:  []string{"-s -w", "-X main.version=v1.2.3", "-X 'main.name=a b'"},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bld.environ(t.Package.Dir, t.Package.ModuleDir, &t); err != nil {
			b.Fatal(err)
		}
	}
}
