package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// TestKoYAMLCannotRunAProgram builds through the whole pipeline from a
// .ko.yaml that tries to make go build run a marker program, including
// through a template that expands to a refused flag. The build is refused
// in one line before anything compiles, and the marker never runs.
// (gobuild's TestBuildRunsOnlyTheGoToolchain has every input the rule
// refuses; this proves the pipeline applies it to what the config gives,
// after templates are expanded.)
func TestKoYAMLCannotRunAProgram(t *testing.T) {
	outside := t.TempDir()
	mark := filepath.Join(outside, "MARK")
	marker := filepath.Join(outside, "marker")
	if err := os.WriteFile(marker, []byte("#!/bin/sh\necho \"$0 $*\" >> "+mark+"\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, koYAML string
		env          []string
		says         string
	}{
		{name: "build env and ldflags", koYAML: "builds:\n- id: hello\n  main: ./cmd/hello\n  env: [CGO_ENABLED=1]\n  ldflags: [-linkmode=external, -extld=MARKER]\n", says: "-linkmode=external"},
		{name: "default env and ldflags", koYAML: "defaultEnv: [CGO_ENABLED=1, CC=MARKER]\ndefaultLdflags: [\"-s -w -linkmode=external\"]\n", says: "-linkmode=external"},
		{name: "default env alone", koYAML: "defaultEnv: [CGO_ENABLED=1]\n", says: "CGO_ENABLED=1"},
		{name: "a template expands to -toolexec", koYAML: "defaultFlags: ['{{.Env.EVIL}}']\n", env: []string{"EVIL=-toolexec=MARKER"}, says: "-toolexec"},
		{name: "a template expands to -extld", koYAML: "defaultLdflags: ['-s {{.Env.EVIL}}']\n", env: []string{"EVIL=-extld=MARKER"}, says: "-extld"},
		{name: "GOFLAGS in build env", koYAML: "builds:\n- main: ./cmd/hello\n  env: [\"GOFLAGS=-toolexec=MARKER\"]\n", says: "-toolexec"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(mark)
			dir := t.TempDir()
			testutil.WriteFiles(t, dir, testutil.HelloModule)
			cfg, err := config.Parse(filepath.Join(dir, ".ko.yaml"), []byte(strings.ReplaceAll(tt.koYAML, "MARKER", marker)))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Dir = dir
			environ := testutil.GoEnv(t, t.TempDir())
			for _, e := range tt.env {
				environ = append(environ, strings.ReplaceAll(e, "MARKER", marker))
			}
			out := t.TempDir()
			_, err = Run(context.Background(), Options{
				Dir: dir, Env: environ, Config: cfg, Builder: &gobuild.Builder{Env: environ},
				Naming: Naming{Repo: LocalRepo}, Publisher: &publish.ToLayout{Dir: out},
			}, []string{"./cmd/hello"})
			if data, _ := os.ReadFile(mark); len(data) > 0 {
				t.Errorf("the marker ran: %s", data)
			}
			if err == nil {
				t.Fatal("built, want a refusal")
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, tt.says) || !errors.Is(err, gobuild.ErrNotAllowed) {
				t.Errorf("refusal is not one line saying %q: %q", tt.says, msg)
			}
			if entries, _ := os.ReadDir(out); len(entries) > 0 {
				t.Errorf("something was published: %v", entries)
			}
		})
	}
}
