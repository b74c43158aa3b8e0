package layer_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/kilnbuild/kiln/internal/layer"
)

// BenchmarkUncompressedEditLoop is what an edit-loop build does with an
// uncompressed binary layer: build it, then read it once (the push). Give
// -binary FILE for a real binary (default: this test binary).
func BenchmarkUncompressedEditLoop(b *testing.B) {
	entries, st := benchEntries(b)
	opts := layer.Options{Compression: layer.Compression{Algorithm: layer.None}, ModTime: epoch, Dir: b.TempDir()}
	for _, step := range []string{"build", "build+read"} {
		b.Run(step, func(b *testing.B) {
			b.SetBytes(st.Size())
			for b.Loop() {
				l, err := layer.Build(context.Background(), entries, opts)
				if err != nil {
					b.Fatal(err)
				}
				if step == "build+read" {
					rc, err := l.Compressed()
					if err != nil {
						b.Fatal(err)
					}
					if _, err := io.Copy(io.Discard, rc); err != nil {
						b.Fatal(err)
					}
					rc.Close()
				}
				b.StopTimer()
				es, _ := os.ReadDir(opts.Dir)
				for _, e := range es {
					os.Remove(filepath.Join(opts.Dir, e.Name()))
				}
				b.StartTimer()
			}
		})
	}
}
