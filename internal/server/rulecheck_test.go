package server

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/service"
	"github.com/kilnbuild/kiln/internal/source"
)

// TestCheckConfig: a source's .ko.yaml is held to kiln build's rule at
// submission, for the entries the requested packages build with, and
// what only the fetched tree can tell is left to the build.
func TestCheckConfig(t *testing.T) {
	b := &builder{registry: "127.0.0.1:5000", env: []string{"PATH=" + os.Getenv("PATH"), "HOME=/nonexistent"}}
	const app = `{"packages": ["./cmd/app"]}`
	cases := []struct {
		name, request, config string
		refused               bool
	}{
		{"toolexec in defaultFlags", app, "defaultFlags: [-toolexec=/bin/evil]", true},
		{"toolexec as two arguments", app, "defaultFlags: [-toolexec, /bin/evil]", true},
		{"toolexec in the package's entry", app, "builds: [{main: ./cmd/app, flags: [-toolexec=/bin/evil]}]", true},
		{"toolexec in an entry found by dir", app, "builds: [{dir: cmd, main: app, flags: [--toolexec=x]}]", true},
		{"toolexec in GOFLAGS of defaultEnv", app, "defaultEnv: [GOFLAGS=-toolexec=/bin/evil]", true},
		{"toolexec in GOFLAGS beside a path flag", app, "defaultEnv: [GOFLAGS=-modfile=go.alt.mod -toolexec=x]", true},
		{"cgo in defaultEnv", app, "defaultEnv: [CGO_ENABLED=1]", true},
		{"CC in an entry's env", app, "builds: [{main: ./cmd/app, env: [CC=gcc]}]", true},
		{"foreign variable in env", app, "defaultEnv: [LD_PRELOAD=/tmp/x.so]", true},
		{"GOOS in env", app, "defaultEnv: [GOOS=windows]", true},
		{"external linker in defaultLdflags", app, "defaultLdflags: [-linkmode=external]", true},
		{"extld in the entry's ldflags", app, "builds: [{main: ./cmd/app, ldflags: [-extld=gcc]}]", true},
		{"-o in flags", app, "defaultFlags: [-o=/tmp/x]", true},
		{"defaults for an import path, no entries", `{"packages": ["example.com/app/cmd/app"]}`, "defaultFlags: [-toolexec=x]", true},
		{"invalid YAML", app, "defaultFlags: [", true},
		{"unknown key", app, "defaultFlag: [-trimpath]", true},

		{"no config keys", app, "", false},
		{"allowed flags and ldflags", app, "defaultFlags: [-trimpath, -tags, netgo]\ndefaultLdflags: [-s, -w, -X=main.v=1]", false},
		{"toolexec in another package's entry", app, "builds: [{main: ./cmd/other, flags: [-toolexec=x]}]", false},
		{"defaults overridden by the package's entry", app, "defaultFlags: [-toolexec=x]\nbuilds: [{main: ./cmd/app, flags: [-trimpath]}]", false},
		{"defaults, an import path and entries: the build decides", `{"packages": ["example.com/app/cmd/app"]}`, "defaultFlags: [-toolexec=x]\nbuilds: [{main: ./cmd/other}]", false},
		{"path flags are the build's to check", app, "defaultFlags: [-overlay=../../o.json, -pgo, default.pgo]\ndefaultEnv: [GOFLAGS=-modfile=../x.mod]", false},
		{"a git template", app, "defaultLdflags: ['-X main.version={{.Git.Tag}}']", false},
		{"an env template the build must expand", app, "defaultFlags: ['{{.Env.NOPE}}']", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := b.CheckConfig([]byte(c.request), source.ConfigFile{Name: ".ko.yaml", Data: []byte(c.config)})
			if !c.refused {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, service.ErrInvalid) {
				t.Fatalf("got %v, want a refusal wrapping service.ErrInvalid", err)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, ".ko.yaml") {
				t.Errorf("message is not one line naming the file: %q", msg)
			}
			t.Log(err)
		})
	}
}
