package store_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestGC(t *testing.T) {
	l, dir := open(t)
	ctx := context.Background()
	kept := randomImage(t)
	if _, err := l.Put(ctx, kept, []string{"app:v1"}); err != nil {
		t.Fatal(err)
	}
	dropped := randomImage(t)
	if _, err := l.Put(ctx, dropped, []string{"app:old"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Repositories().DeleteManifest("app", "old"); err != nil {
		t.Fatal(err)
	}
	// An upload nobody finished, and one finished blob no manifest uses.
	up, err := l.Repositories().NewUpload("app")
	if err != nil {
		t.Fatal(err)
	}
	up.Write(bytes.NewReader([]byte("partial")))
	orphan, err := l.Repositories().NewUpload("app")
	if err != nil {
		t.Fatal(err)
	}
	orphan.Write(bytes.NewReader([]byte("orphan")))
	oh, _, _ := v1.SHA256(bytes.NewReader([]byte("orphan")))
	if err := orphan.Commit(oh); err != nil {
		t.Fatal(err)
	}

	// Within the grace a push may take, the upload and the blob just
	// committed (which its push may yet name in a manifest) stay; the
	// untagged image goes, however new: manifest, config, two layers.
	st, err := l.Repositories().GC(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if st.Blobs != 4 || st.Uploads != 0 || st.Links != 0 {
		t.Fatalf("gc within the grace removed %+v, want the 4 blobs of the untagged image", st)
	}
	if _, err := l.Repositories().StatBlob("app", oh); err != nil {
		t.Fatalf("gc removed a blob a push in flight committed: %v", err)
	}
	st, err = l.Repositories().GC(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Blobs != 1 || st.Uploads != 1 || st.Links != 1 {
		t.Fatalf("gc removed %+v, want the orphan blob, 1 upload, 1 link", st)
	}
	for _, a := range []interface{ Digest() (v1.Hash, error) }{kept} {
		h, _ := a.Digest()
		if _, err := os.Stat(filepath.Join(dir, "blobs", "sha256", h.Hex)); err != nil {
			t.Fatalf("gc removed a tagged manifest: %v", err)
		}
	}
	layers, _ := kept.Layers()
	for _, layer := range layers {
		h, _ := layer.Digest()
		if _, err := l.Repositories().StatBlob("app", h); err != nil {
			t.Fatalf("gc removed a layer in use: %v", err)
		}
	}
	if _, err := l.Repositories().StatBlob("app", oh); err == nil {
		t.Fatal("the orphan blob survived gc")
	}
}

// A manifest pushed by digest alone is kept: its link is a root.
func TestGCKeepsUntaggedPushedManifests(t *testing.T) {
	l, _ := open(t)
	raw := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
	h, _, _ := v1.SHA256(bytes.NewReader(raw))
	if _, _, err := l.Repositories().PutManifest("app", h.String(), types.OCIImageIndex, raw); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Repositories().GC(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Repositories().GetManifest("app", h.String()); err != nil {
		t.Fatalf("gc removed an untagged pushed manifest: %v", err)
	}
}

// What a repository's tags lead to is remembered until index.json changes:
// a new tag's content is found, a deleted tag's is not.
func TestReachableFollowsTheIndex(t *testing.T) {
	l, _ := open(t)
	ctx := context.Background()
	first, second := randomImage(t), randomImage(t)
	layerOf := func(img v1.Image) v1.Hash {
		ls, _ := img.Layers()
		h, _ := ls[0].Digest()
		return h
	}
	if _, err := l.Put(ctx, first, []string{"app:v1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Repositories().StatBlob("app", layerOf(first)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Repositories().StatBlob("app", layerOf(second)); err == nil {
		t.Fatal("a layer of an image not yet tagged is visible")
	}
	if _, err := l.Put(ctx, second, []string{"app:v2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Repositories().StatBlob("app", layerOf(second)); err != nil {
		t.Fatalf("after tagging v2: %v", err)
	}
	if err := l.Repositories().DeleteManifest("app", "v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Repositories().StatBlob("app", layerOf(first)); err == nil {
		t.Fatal("after untagging v1 its layer is still visible")
	}
}
