package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"github.com/kilnbuild/kiln/internal/store"
)

// imageManifest is an image manifest of config and layers, as pushed.
func imageManifest(t testing.TB, config []byte, layers ...[]byte) []byte {
	t.Helper()
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(config)), Digest: sha(config)}}
	for _, l := range layers {
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.OCILayer, Size: int64(len(l)), Digest: sha(l)})
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// pushManifest pushes what a client would: each blob the registry does
// not say it has (a HEAD), then the manifest, by digest.
func pushManifest(l *store.Layout, repo string, manifest []byte, blobs ...[]byte) error {
	for _, b := range blobs {
		_, err := l.Repositories().StatBlob(repo, sha(b))
		if err == nil {
			continue
		}
		if !errors.Is(err, store.ErrBlobUnknown) {
			return err
		}
		up, err := l.Repositories().NewUpload(repo)
		if err != nil {
			return err
		}
		if _, err := up.Write(bytes.NewReader(b)); err != nil {
			return err
		}
		if err := up.Commit(sha(b)); err != nil {
			return err
		}
	}
	_, _, err := l.Repositories().PutManifest(repo, sha(manifest).String(), types.OCIManifestSchema1, manifest)
	return err
}

// An old layer, linked into a repository by an earlier process and
// referred to by nothing, is reused by a push while gc runs: gc marks
// before the push's manifest and sweeps after it. The push runs between
// the mark and the sweep (or, if it has to wait for gc, from there on).
// Whatever the interleaving, a manifest acknowledged has its layer.
func TestGCNeverLosesABlobAPushWasToldIsThere(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	earlier, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	layer := []byte("an old layer nobody refers to")
	lh := push(t, earlier, "app", layer)
	old := time.Now().Add(-24 * time.Hour)
	os.Chtimes(filepath.Join(dir, "blobs", "sha256", lh.Hex), old, old)

	l, err := store.Open(dir) // a new process: nothing answered yet
	if err != nil {
		t.Fatal(err)
	}
	config := []byte(`{"architecture":"amd64","os":"linux"}`)
	manifest := imageManifest(t, config, layer)

	done, waiting := make(chan struct{}), make(chan struct{}, 1)
	var pushErr error
	store.SetGCHooks(func() {
		go func() {
			defer close(done)
			pushErr = pushManifest(l, "app", manifest, config, layer)
		}()
		select {
		case <-done:
		case <-waiting: // the push waits for gc: sweep first
		}
	}, func() {
		select {
		case waiting <- struct{}{}:
		default:
		}
	})
	t.Cleanup(func() { store.SetGCHooks(nil, nil) })
	if _, err := l.Repositories().GC(context.Background(), time.Hour); err != nil {
		t.Fatal(err)
	}
	<-done
	store.SetGCHooks(nil, nil)
	if pushErr != nil {
		t.Fatalf("push: %v", pushErr)
	}
	if _, err := os.Stat(filepath.Join(dir, "blobs", "sha256", lh.Hex)); err != nil {
		t.Fatalf("the manifest was acknowledged, but its layer is gone: %v", err)
	}
	if _, err := l.Repositories().GC(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Repositories().StatBlob("app", lh); err != nil {
		t.Fatalf("once the manifest holds it: %v", err)
	}
}

// gc in another process than the server's is refused: the server's
// protections are in its memory.
func TestGCRefusedBesideAServer(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	server := openJournal(t, dir)
	defer server.Repositories().CloseJournal()
	other, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Repositories().GC(context.Background(), time.Hour); !errors.Is(err, store.ErrStoreServed) {
		t.Fatalf("gc beside a server: %v, want ErrStoreServed", err)
	}
	if _, err := server.Repositories().GC(context.Background(), time.Hour); err != nil {
		t.Fatalf("the server's own gc: %v", err)
	}
}

// While gc marks and sweeps, another process cannot take the lock that
// kiln build holds while it writes an image: gc waits for builds, builds
// wait for gc.
func TestGCExcludesWritersOfOtherProcesses(t *testing.T) {
	l, dir := open(t)
	var probe error
	store.SetGCHooks(func() {
		f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR, 0)
		if err != nil {
			probe = err
			return
		}
		defer f.Close()
		lk := unix.Flock_t{Type: unix.F_RDLCK, Whence: 0, Start: 0, Len: 1}
		probe = unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
	}, nil)
	defer store.SetGCHooks(nil, nil)
	if _, err := l.Repositories().GC(context.Background(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(probe, unix.EAGAIN) {
		t.Fatalf("a writer of another process took the lock during gc: %v", probe)
	}
	// And once gc is done, a build writes.
	if _, err := l.Put(context.Background(), randomImage(t), []string{"app:v1"}); err != nil {
		t.Fatal(err)
	}
}
