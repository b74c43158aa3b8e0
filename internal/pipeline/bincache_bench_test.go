package pipeline

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkPruneAtBound is what every build pays for the bound when the
// cache is full and nothing is old enough to go: a directory read and a
// stat per entry.
func BenchmarkPruneAtBound(b *testing.B) {
	cache := b.TempDir()
	for i := range DefaultKeepBinaries {
		dir := filepath.Join(cache, "bin", strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ".lock"), nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if n, err := (CacheBound{}).Prune(cache); err != nil || n != 0 {
			b.Fatal(n, err)
		}
	}
}
