package gobuild

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/testutil"
)

// gorootRunner answers go env GOROOT with root and counts the go commands.
type gorootRunner struct {
	root string
	runs int
}

func (g *gorootRunner) Run(_ context.Context, _ string, _ []string, _ string, args ...string) ([]byte, error) {
	g.runs++
	return []byte(g.root + "\n"), nil
}

// TestGOROOTMemo changes, one at a time, each thing that decides `go env
// GOROOT`, with go answering a new root each time: a memo keyed by less
// than all of them returns a stale root and fails here.
func TestGOROOTMemo(t *testing.T) {
	tmp := t.TempDir()
	write := func(name, content string) { t.Helper(); testutil.WriteFiles(t, tmp, map[string]string{name: content}) }
	write("toolchain/bin/go", "#!/bin/sh\n")
	write("toolchain/go.env", "GOTOOLCHAIN=auto\n")
	write("ws/mod/go.mod", "module example.com/m\n\ngo 1.22\n")
	goBin := filepath.Join(tmp, "toolchain", "bin", "go")
	if err := os.Chmod(goBin, 0o755); err != nil { // rewrites keep the mode
		t.Fatal(err)
	}
	dir := filepath.Join(tmp, "ws", "mod")
	env := []string{"HOME=" + tmp, "PATH=/bin"}
	memo := GOROOTMemo{Dir: filepath.Join(tmp, "memo")}
	r := &gorootRunner{}
	roots := 0
	newRoot := func() {
		t.Helper()
		roots++
		r.root = filepath.Join(tmp, "roots", strings.Repeat("r", roots))
		if err := os.MkdirAll(r.root, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name   string
		change func()
		asks   bool // go must be asked (else the memo answers)
	}{
		{"first build", func() {}, true},
		{"nothing changed", func() {}, false},
		{"nothing changed again", func() {}, false},
		{"go binary rewritten", func() { write("toolchain/bin/go", "#!/bin/sh\n# new\n") }, true},
		{"go binary touched", func() {
			if err := os.Chtimes(goBin, time.Now(), time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"toolchain's go.env", func() { write("toolchain/go.env", "GOTOOLCHAIN=local\n") }, true},
		{"GOTOOLCHAIN in the environment", func() { env = append(env, "GOTOOLCHAIN=go1.30.0") }, true},
		{"GOROOT in the environment", func() { env = append(env, "GOROOT="+tmp) }, true},
		{"GOMODCACHE in the environment", func() { env = append(env, "GOMODCACHE="+tmp) }, true},
		{"go.mod's toolchain line", func() { write("ws/mod/go.mod", "module example.com/m\n\ngo 1.22\n\ntoolchain go1.30.0\n") }, true},
		{"go.work above the module", func() { write("ws/go.work", "go 1.31\n\nuse ./mod\n") }, true},
		{"go.work's go line", func() { write("ws/go.work", "go 1.32\n\nuse ./mod\n") }, true},
		{"unchanged after all that", func() {}, false},
		{"remembered root removed", func() {
			if err := os.RemoveAll(r.root); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"GOTOOLCHAIN path mode", func() { env = append(env, "GOTOOLCHAIN=go1.30.0+path") }, true},
		{"path mode is never remembered", func() {}, true},
		{"path mode by the toolchain's go.env", func() {
			env = append(env, "GOTOOLCHAIN=")
			write("toolchain/go.env", "GOTOOLCHAIN=path\n")
		}, true},
		{"still never remembered", func() {}, true},
	}
	for _, s := range steps {
		s.change()
		before := r.root
		if s.asks {
			newRoot()
		}
		runs := r.runs
		b := &Builder{Go: goBin, Env: env, Runner: r}
		got, err := memo.GOROOT(context.Background(), b, dir, nil)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if asked := r.runs > runs; asked != s.asks {
			t.Errorf("%s: go asked = %v, want %v", s.name, asked, s.asks)
		}
		if want := r.root; got != want {
			t.Errorf("%s: GOROOT = %q, want %q (before: %q)", s.name, got, want, before)
		}
	}
}

// TestGOROOTMemoWithoutDir never remembers, and runs beforeGo before go.
func TestGOROOTMemoWithoutDir(t *testing.T) {
	r := &gorootRunner{root: t.TempDir()}
	b := &Builder{Env: []string{"PATH=" + os.Getenv("PATH")}, Runner: r}
	waited := 0
	for i := 0; i < 2; i++ {
		got, err := GOROOTMemo{}.GOROOT(context.Background(), b, t.TempDir(), func() { waited++ })
		if err != nil || got != r.root {
			t.Fatalf("GOROOT = %q, %v", got, err)
		}
	}
	if r.runs != 2 || waited != 2 {
		t.Errorf("go ran %d times, beforeGo %d; want 2 and 2", r.runs, waited)
	}
}

// TestGOROOTMemoAgreesWithGo runs the real go command: the remembered
// answer is go's, and a GOROOT given in the environment is answered anew.
func TestGOROOTMemoAgreesWithGo(t *testing.T) {
	testutil.RequireTool(t, "go")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/m\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	env := append(os.Environ(), "GOTOOLCHAIN=local")
	want, err := (&Builder{Env: env}).GOROOT(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	memo := GOROOTMemo{Dir: t.TempDir()}
	for i := 0; i < 2; i++ {
		asked := false
		got, err := memo.GOROOT(ctx, &Builder{Env: env}, dir, func() { asked = true })
		if err != nil || got != want {
			t.Fatalf("run %d: GOROOT = %q, %v; want %q", i, got, err, want)
		}
		if asked != (i == 0) {
			t.Errorf("run %d: go asked = %v", i, asked)
		}
	}
	// The same toolchain through a link: go answers the link's path.
	link := filepath.Join(t.TempDir(), "goroot")
	if err := os.Symlink(want, link); err != nil {
		t.Fatal(err)
	}
	got, err := memo.GOROOT(ctx, &Builder{Env: append(env, "GOROOT="+link)}, dir, nil)
	if err != nil || got != link {
		t.Errorf("with GOROOT=%s: GOROOT = %q, %v", link, got, err)
	}
}
