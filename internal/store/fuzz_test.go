package store_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kilnbuild/kiln/internal/store"
)

// FuzzPutManifest: any bytes under any name and reference are stored or
// refused without panicking, and a refused manifest leaves no blob behind.
func FuzzPutManifest(f *testing.F) {
	f.Add("repo", "latest", string(types.OCIManifestSchema1), []byte(`{"schemaVersion":2,"config":{"mediaType":"x","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}`))
	f.Add("a/b", "sha256:00", string(types.OCIImageIndex), []byte(`{"schemaVersion":2,"manifests":[]}`))
	f.Add("../x", "v1", "", []byte(`{}`))
	f.Add("repo", "v1", string(types.OCIImageIndex), []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"sha256:zz"}]}`))
	// A layer's bytes offered as a manifest under its own digest.
	layer := []byte("\x1f\x8b\x08\x00layer bytes, not JSON")
	f.Add("repo", digestOf(layer), string(types.OCIManifestSchema1), layer)
	// An index whose child is a layer (by media type, and by digest alone).
	f.Add("repo", "v1", string(types.OCIImageIndex), []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":26,"digest":"`+digestOf(layer)+`"}]}`))
	f.Add("repo", "v1", string(types.OCIImageIndex), []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":26,"digest":"`+digestOf(layer)+`"}]}`))
	// A subject without a digest, and one without a media type or size.
	f.Add("repo", "v1", string(types.OCIManifestSchema1), []byte(`{"schemaVersion":2,"config":{"mediaType":"x","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":2}}`))
	f.Add("repo", "v1", string(types.OCIManifestSchema1), []byte(`{"schemaVersion":2,"config":{"mediaType":"x","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[],"subject":{"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}}`))
	// A config of a huge declared size.
	f.Add("repo", "v1", string(types.OCIManifestSchema1), []byte(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":1099511627776,"digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111"},"layers":[]}`))
	dir := f.TempDir()
	l, err := store.Open(dir)
	if err != nil {
		f.Fatal(err)
	}
	l.DisableSyncUnsafe() // parsing is under test, not durability: more inputs a second
	stored := map[v1.Hash]bool{}
	f.Fuzz(func(t *testing.T, name, reference, mediaType string, raw []byte) {
		h, _, _ := v1.SHA256(bytes.NewReader(raw))
		if desc, _, err := l.Repositories().PutManifest(name, reference, types.MediaType(mediaType), raw); err == nil {
			stored[h] = true
			// What was stored is served back as a manifest, byte for byte.
			if _, got, err := l.Repositories().GetManifest(name, desc.Digest.String()); err != nil || !bytes.Equal(got, raw) {
				t.Fatalf("stored manifest %s not served back: %v", desc.Digest, err)
			}
		} else if _, statErr := os.Stat(filepath.Join(dir, "blobs", "sha256", h.Hex)); statErr == nil && !stored[h] {
			t.Fatalf("refused manifest (%v) left blob %s", err, h)
		}
	})
}

func digestOf(b []byte) string {
	h, _, _ := v1.SHA256(bytes.NewReader(b))
	return h.String()
}
