package layer_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/layer"
)

// TestCachePrune: the layer cache keeps the most recently used layers
// (a hit counts as a use) and any used within the grace, removes the
// rest with their metadata, and clears files a crashed build left; a
// pruned layer is built again on its next use.
func TestCachePrune(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := &layer.Cache{Dir: dir}
	opts := layer.Options{Compression: layer.Compression{Algorithm: layer.None}} // the tar is readable in the test
	build := func(key string) {
		t.Helper()
		entries := []layer.Entry{{Path: "/app/" + key, Kind: layer.File, Mode: 0o755, Data: []byte(key)}}
		if _, err := c.Build(ctx, key, entries, opts); err != nil {
			t.Fatal(err)
		}
	}
	hour := time.Now().Add(-time.Hour)
	age := func(pattern string, when time.Time) {
		t.Helper()
		names, _ := filepath.Glob(filepath.Join(dir, pattern))
		if len(names) == 0 {
			t.Fatalf("no file matches %s", pattern)
		}
		for _, n := range names {
			os.Chtimes(n, when, when)
		}
	}
	for i := range 5 {
		build(fmt.Sprint("old", i))
	}
	age("*", hour)
	for i := range 5 { // old0 older than old1 …, all an hour or more ago
		build(fmt.Sprint("old", i))
		age(metaOf(t, dir, i), hour.Add(time.Duration(i)*time.Second))
	}
	build("old0") // a hit: old0 is now the most recently used
	build("recent")
	os.WriteFile(filepath.Join(dir, "layer-1.tmp"), []byte("half"), 0o600)
	os.WriteFile(filepath.Join(dir, "layer-2.tmp"), []byte("half"), 0o600)
	age("layer-1.tmp", hour)
	os.WriteFile(filepath.Join(dir, "orphan.layer"), []byte("no metadata"), 0o600)
	age("orphan.layer", hour)

	removed, err := c.Prune(2, time.Now().Add(-10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	// Kept: recent and old0 (the two most recently used), and layer-2.tmp
	// (written now: a build may be writing it). Removed: old1–old4 (their
	// .json and .layer), layer-1.tmp, orphan.layer.
	if removed != 10 {
		t.Errorf("Prune removed %d files, want 10 (4 layers with their metadata, a stale temporary file, an orphan layer)", removed)
	}
	var left []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if n := countSuffix(left, ".json"); n != 2 {
		t.Errorf("%d layers left (%v), want 2", n, left)
	}
	if countSuffix(left, ".layer") != 2 || !slices.Contains(left, "layer-2.tmp") || slices.Contains(left, "layer-1.tmp") || slices.Contains(left, "orphan.layer") {
		t.Errorf("left %v", left)
	}
	build("old3") // pruned: built again, and found after
	if n := countSuffix(names(t, dir), ".json"); n != 3 {
		t.Errorf("after rebuilding a pruned layer: %d layers, want 3", n)
	}

	// Within the grace nothing goes, however many.
	for i := range 4 {
		build(fmt.Sprint("new", i))
	}
	if removed, err := c.Prune(1, time.Now().Add(-10*time.Minute)); err != nil || removed != 0 {
		t.Errorf("Prune within the grace removed %d (%v), want 0", removed, err)
	}
	if removed, err := (*layer.Cache)(nil).Prune(1, time.Now()); err != nil || removed != 0 {
		t.Errorf("a nil cache: %d, %v", removed, err)
	}
	if removed, err := (&layer.Cache{Dir: filepath.Join(dir, "missing")}).Prune(1, time.Now()); err != nil || removed != 0 {
		t.Errorf("a missing directory: %d, %v", removed, err)
	}
}

// metaOf names the metadata file of the i-th layer built so far, by
// content: its layer holds "/app/oldI".
func metaOf(t *testing.T, dir string, i int) string {
	t.Helper()
	for _, n := range names(t, dir) {
		if !strings.HasSuffix(n, ".json") {
			continue
		}
		base := strings.TrimSuffix(n, ".json")
		raw, err := os.ReadFile(filepath.Join(dir, base+".layer"))
		if err == nil && strings.Contains(string(raw), fmt.Sprintf("app/old%d", i)) {
			return n
		}
	}
	t.Fatalf("no layer holds old%d", i)
	return ""
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func countSuffix(names []string, suffix string) int {
	n := 0
	for _, s := range names {
		if strings.HasSuffix(s, suffix) {
			n++
		}
	}
	return n
}
