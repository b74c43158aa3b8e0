package store_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kilnbuild/kiln/internal/store"
)

// A manifest push makes the small blobs it needs durable file by file: a
// sync of the whole file system (which also writes every other process's
// dirty pages) is left for when an earlier write-out left files unsynced.
func TestManifestSyncsItsBlobsNotTheFileSystem(t *testing.T) {
	for _, tc := range []struct {
		name       string
		before     func(t *testing.T, l *store.Layout) // after the blobs are pushed
		wantSyncFS bool
	}{
		{"only the manifest's blobs in the journal", func(*testing.T, *store.Layout) {}, false},
		{"another blob still pending", func(t *testing.T, l *store.Layout) {
			push(t, l, "app", []byte("pending, never used"))
		}, false},
		{"a mount made its blob durable", func(t *testing.T, l *store.Layout) {
			push(t, l, "app", []byte("keeps the journal from emptying"))
			m := push(t, l, "app", []byte("mounted"))
			if err := l.Repositories().MountBlob("app", "other", m); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"a delete wrote a blob out unsynced", func(t *testing.T, l *store.Layout) {
			push(t, l, "app", []byte("keeps the journal from emptying"))
			d := push(t, l, "app", []byte("deleted, written out unsynced"))
			if err := l.Repositories().DeleteBlob("app", d); err != nil {
				t.Fatal(err)
			}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, dir := open(t)
			l := openJournal(t, dir)
			t.Cleanup(func() { l.Repositories().CloseJournal() })
			layerData := []byte("a small layer")
			config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
			hl, hc := push(t, l, "app", layerData), push(t, l, "app", config)
			tc.before(t, l)
			syncs := store.CountSyncFS(t)
			manifest := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[{"mediaType":%q,"digest":%q,"size":%d}]}`,
				types.OCIManifestSchema1, types.OCIConfigJSON, hc, len(config), types.OCILayer, hl, len(layerData)))
			if _, _, err := l.Repositories().PutManifest("app", "v1", types.OCIManifestSchema1, manifest); err != nil {
				t.Fatal(err)
			}
			if got := syncs.Load() > 0; got != tc.wantSyncFS {
				t.Errorf("the file system was synced %d times, want synced: %v", syncs.Load(), tc.wantSyncFS)
			}
			for _, h := range []v1.Hash{hl, hc} {
				if data, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", h.Hex)); err != nil || sha(data) != h {
					t.Errorf("blob %s after the manifest: %v", h, err)
				}
				if got, err := readBlob(t, l, "app", h); err != nil || sha(got) != h {
					t.Errorf("blob %s read from app: %v", h, err)
				}
			}
		})
	}
}
