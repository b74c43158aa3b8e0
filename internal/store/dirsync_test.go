package store

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestDirSyncerSharesFsyncs(t *testing.T) {
	l := &Layout{dir: t.TempDir()}
	s := l.syncer(l.dir)
	if l.syncer(l.dir) != s {
		t.Fatal("two syncers for one directory")
	}
	const writers = 64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Sync()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if s.completed == 0 || s.completed > writers {
		t.Fatalf("%d fsyncs for %d writers", s.completed, writers)
	}
	t.Logf("%d writers shared %d fsyncs", writers, s.completed)

	// A directory that is gone reports the error.
	gone := filepath.Join(l.dir, "gone")
	os.Mkdir(gone, 0o755)
	g := l.syncer(gone)
	os.Remove(gone)
	if err := g.Sync(); err == nil {
		t.Fatal("fsync of a removed directory succeeded")
	}
}

// The parsed index.json is reused only while its bytes are unchanged, also
// when another process (here: another Layout) rewrites it.
func TestIndexCacheSeesOtherWriters(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Open(dir)
	raw := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
	h := digestBytes("sha256", raw)
	if _, _, err := a.Repositories().PutManifest("app", "v1", "", raw); err != nil {
		t.Fatal(err)
	}
	if tags, _ := a.Repositories().Tags("app"); len(tags) != 1 {
		t.Fatalf("tags %v", tags)
	}
	if _, _, err := b.Repositories().PutManifest("app", "v2", "", raw); err != nil {
		t.Fatal(err)
	}
	if tags, _ := a.Repositories().Tags("app"); len(tags) != 2 {
		t.Fatalf("a stale index: tags %v after another writer tagged v2", tags)
	}
	// What a caller edits does not leak into the cache.
	im, _ := a.readIndex()
	im.Manifests[0].Digest.Hex = "0"
	if d, err := a.Lookup("app:v1"); err != nil || d.Digest != h {
		t.Fatalf("lookup after a caller edited its copy: %v %v", d.Digest, err)
	}
}
