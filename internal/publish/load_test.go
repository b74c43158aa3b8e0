package publish_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// fakeTool puts an executable named tool on a fresh PATH. It records its
// arguments in dir/args and copies the file after -i to dir/loaded, so a
// test can see what the engine was given while it ran.
func fakeTool(t *testing.T, tool, exit string) (dir string) {
	t.Helper()
	cp, err := exec.LookPath("cp")
	if err != nil {
		t.Fatal("needs cp on PATH")
	}
	dir = t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\n" +
		"printf '%s\\n' \"$@\" > " + filepath.Join(dir, "args") + "\n" +
		cp + " \"$3\" " + filepath.Join(dir, "loaded") + " || exit 9\n" +
		exit + "\n"
	if err := os.WriteFile(filepath.Join(bin, tool), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	return dir
}

func TestLoad(t *testing.T) {
	for _, tc := range []struct {
		name, tool, installed string
	}{
		{"podman picked", "", "podman"},
		{"docker when podman is missing", "", "docker"},
		{"named tool", "docker", "docker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := fakeTool(t, tc.installed, "echo loaded")
			tmp := t.TempDir()
			ctx := context.Background()
			p := &publish.Load{Tool: tc.tool, TempDir: tmp}
			if err := p.Check(ctx); err != nil {
				t.Fatalf("Check: %v", err)
			}
			img := randomImage(t)
			d, err := p.Publish(ctx, img, "kiln.local/app", []string{"v1"})
			if err != nil {
				t.Fatal(err)
			}
			if want := "kiln.local/app@" + testutil.Digest(t, img).String(); d.String() != want {
				t.Errorf("Publish = %s, want %s", d, want)
			}
			if _, err := os.Stat(filepath.Join(dir, "args")); err == nil {
				t.Fatal("the tool ran before Close")
			}
			if err := p.Close(ctx); err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(filepath.Join(dir, "args"))
			if err != nil {
				t.Fatal(err)
			}
			args := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
			if len(args) != 3 || args[0] != "load" || args[1] != "-i" || filepath.Base(args[2]) != "images.tar" || !strings.HasPrefix(args[2], tmp+string(filepath.Separator)) {
				t.Fatalf("%s ran with %q, want load -i %s/kiln-load-*/images.tar", tc.installed, args, tmp)
			}
			if _, err := os.Stat(args[2]); !os.IsNotExist(err) {
				t.Errorf("archive %s still exists after Close: %v", args[2], err)
			}
			if es, _ := os.ReadDir(tmp); len(es) != 0 {
				t.Errorf("temporary directory not removed: %v", es)
			}
			tag, _ := name.NewTag("kiln.local/app:v1")
			back, err := tarball.ImageFromPath(filepath.Join(dir, "loaded"), &tag)
			if err != nil {
				t.Fatalf("the archive the tool saw: %v", err)
			}
			if got, want := testutil.Digest(t, mustConfigName(t, back)), testutil.Digest(t, mustConfigName(t, img)); got != want {
				t.Errorf("loaded config %s, want %s", got, want)
			}
		})
	}
}

func TestLoadFailures(t *testing.T) {
	ctx := context.Background()
	t.Run("tool fails", func(t *testing.T) {
		fakeTool(t, "podman", "echo 'Error: payload does not match' >&2; exit 3")
		p := &publish.Load{TempDir: t.TempDir()}
		if _, err := p.Publish(ctx, randomImage(t), "kiln.local/app", nil); err != nil {
			t.Fatal(err)
		}
		err := p.Close(ctx)
		if err == nil || err.Error() != "podman load: exit status 3: Error: payload does not match" {
			t.Errorf("Close = %v, want the tool's exit status and output", err)
		}
	})
	t.Run("no tool", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		p := &publish.Load{}
		if err := p.Check(ctx); err == nil || !strings.Contains(err.Error(), "needs podman or docker") {
			t.Errorf("Check = %v", err)
		}
		if err := (&publish.Load{Tool: "podman"}).Check(ctx); err == nil {
			t.Errorf("Check with a missing named tool succeeded")
		}
	})
	t.Run("nothing published runs nothing", func(t *testing.T) {
		dir := fakeTool(t, "podman", "")
		if err := (&publish.Load{}).Close(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "args")); err == nil {
			t.Error("the tool ran with nothing to load")
		}
	})
	t.Run("index refused", func(t *testing.T) {
		fakeTool(t, "podman", "")
		if _, err := (&publish.Load{}).Publish(ctx, randomIndex(t), "kiln.local/app", nil); err != publish.ErrMultiPlatform {
			t.Errorf("Publish(index) = %v, want ErrMultiPlatform", err)
		}
	})
}
