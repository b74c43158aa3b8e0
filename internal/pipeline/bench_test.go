package pipeline

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// fakeGo stands in for the go command: go list and go env answer from the
// fixture, go build writes a binary of the given size from a fixed seed.
type fakeGo struct {
	dir    string
	goroot string
	size   int64
	self   string // this test binary
}

func (f *fakeGo) Run(_ context.Context, _ string, _ []string, _ string, args ...string) ([]byte, error) {
	switch args[0] {
	case "env":
		return []byte(f.goroot + "\n"), nil
	case "list":
		return json.Marshal(map[string]any{
			"ImportPath": "example.com/big/cmd/big", "Name": "main", "Dir": filepath.Join(f.dir, "cmd", "big"),
			"Module": map[string]string{"Path": "example.com/big", "Dir": f.dir},
		})
	case "build":
		// A real executable (this test binary, so kiln finds its Go build
		// ID) padded with seeded random bytes to the asked-for size.
		out, err := os.Create(args[2])
		if err != nil {
			return nil, err
		}
		defer out.Close()
		self, err := os.Open(f.self)
		if err != nil {
			return nil, err
		}
		defer self.Close()
		n, err := io.Copy(out, self)
		if err != nil {
			return nil, err
		}
		_, err = io.CopyN(out, rand.NewChaCha8([32]byte{1}), f.size-n)
		return nil, err
	}
	return nil, nil
}

// BenchmarkBuild100MBBinary measures kiln's own work for a 100 MB binary:
// layering (read once, streamed), assembly and writing to a layout. The
// go command is faked, so peak RSS is kiln's alone.
func BenchmarkBuild100MBBinary(b *testing.B) {
	dir := b.TempDir()
	testutil.WriteFiles(b, dir, map[string]string{"go.mod": "module example.com/big\n\ngo 1.22\n", "cmd/big/.keep": ""})
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		b.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	fake := &fakeGo{dir: dir, goroot: strings.TrimSpace(string(goroot)), size: 100 << 20, self: self}
	b.SetBytes(fake.size)
	b.ReportAllocs()
	for b.Loop() {
		_, err := Run(context.Background(), Options{
			Dir:       dir,
			Builder:   &gobuild.Builder{Runner: fake},
			Naming:    Naming{Repo: LocalRepo},
			Publisher: &publish.ToLayout{Dir: b.TempDir()},
		}, []string{"./cmd/big"})
		if err != nil {
			b.Fatal(err)
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MiB")
	}
}
