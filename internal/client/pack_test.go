package client

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/testutil"
)

func entries(t *testing.T, archive []byte) map[string]string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		if h.Typeflag == tar.TypeSymlink {
			b = []byte("-> " + h.Linkname)
		}
		got[h.Name] = string(b)
	}
}

func pack(t *testing.T, root string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Pack(root, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestPackPlainDirectory(t *testing.T) {
	root := t.TempDir()
	testutil.WriteFiles(t, root, map[string]string{
		"go.mod": "module example.com/app\n", "main.go": "package main\n",
		"bin/app": "binary", ".git/config": "x", "sub/.git/HEAD": "y", "sub/bin/keep": "kept",
	})
	if err := os.Symlink("main.go", filepath.Join(root, "link.go")); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"go.mod": "module example.com/app\n", "main.go": "package main\n", "sub/bin/keep": "kept", "link.go": "-> main.go"}
	a := pack(t, root)
	if got := entries(t, a); !reflect.DeepEqual(got, want) {
		t.Errorf("packed %v, want %v", got, want)
	}
	// The same files pack to the same bytes, whatever their times.
	now := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(root, "main.go"), now, now)
	if b := pack(t, root); !bytes.Equal(a, b) {
		t.Error("packing the same files twice gave different bytes")
	}
}

func TestPackCheckoutSendsTrackedFiles(t *testing.T) {
	testutil.RequireTool(t, "git")
	repo := t.TempDir()
	testutil.WriteFiles(t, repo, map[string]string{
		"svc/go.mod": "module example.com/svc\n", "svc/main.go": "package main\n", "svc/gone.go": "x",
		"svc/untracked.txt": "u", "other/file": "o",
	})
	git := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	git("add", "svc/go.mod", "svc/main.go", "svc/gone.go", "other/file")
	git("commit", "-qm", "x")
	os.Remove(filepath.Join(repo, "svc/gone.go"))
	testutil.WriteFiles(t, repo, map[string]string{"svc/main.go": "package main // edited\n"})
	want := map[string]string{"go.mod": "module example.com/svc\n", "main.go": "package main // edited\n"}
	if got := entries(t, pack(t, filepath.Join(repo, "svc"))); !reflect.DeepEqual(got, want) {
		t.Errorf("packed %v, want %v", got, want)
	}
}

func TestModuleRoot(t *testing.T) {
	root := t.TempDir()
	testutil.WriteFiles(t, root, map[string]string{"go.mod": "module m\n", "cmd/app/main.go": "package main\n"})
	got, err := ModuleRoot(filepath.Join(root, "cmd/app"))
	if err != nil || got != root {
		t.Errorf("ModuleRoot = %q, %v; want %q", got, err, root)
	}
	if _, err := ModuleRoot(t.TempDir()); err == nil {
		t.Error("ModuleRoot outside a module: no error")
	}
}
