package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/layer"
)

// TestCacheBoundPrunesLayers: the bound applied after each build keeps
// the layer cache to Keep layers beyond the grace, as it keeps the
// binaries: each edit of a package adds a layer, and none were removed.
func TestCacheBoundPrunesLayers(t *testing.T) {
	cache := t.TempDir()
	lc := layerCache(cache)
	old := time.Now().Add(-time.Hour)
	for i := range 5 {
		e := []layer.Entry{{Path: "/ko-app/app", Kind: layer.File, Mode: 0o755, Data: []byte(fmt.Sprint("edit ", i))}}
		if _, err := lc.Build(context.Background(), fmt.Sprint("go-buildid:", i), e, layer.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	ents, _ := os.ReadDir(lc.Dir)
	for _, e := range ents {
		os.Chtimes(filepath.Join(lc.Dir, e.Name()), old, old)
	}
	if _, err := (CacheBound{Keep: 2, Grace: time.Minute}).Prune(cache); err != nil {
		t.Fatal(err)
	}
	ents, _ = os.ReadDir(lc.Dir)
	layers := 0
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".layer") {
			layers++
		}
	}
	if layers != 2 || len(ents) != 4 {
		t.Errorf("the layer cache holds %d layers (%d files) after the bound of 2, want 2 (4 files)", layers, len(ents))
	}
}
