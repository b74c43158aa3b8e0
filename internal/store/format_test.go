package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	specs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kilnbuild/kiln/internal/store"
)

// A store as the code before Layout and Repositories were split wrote it,
// made here file by file at the paths it used, is read by today's code:
// tags, pushed manifests, links, referrers; and gc keeps all of it.
func TestReadsTheStoreFormatOfBeforeTheSplit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	write := func(rel string, data []byte) {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(h v1.Hash, rel string) {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.Link(filepath.Join(dir, "blobs", h.Algorithm, h.Hex), p); err != nil {
			t.Fatal(err)
		}
	}
	config, layer := []byte(`{"architecture":"amd64","os":"linux"}`), []byte("a layer")
	manifest := imageManifest(t, config, layer)
	mh := sha(manifest)
	ref := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.example.sig","size":2,"digest":"` + sha([]byte("{}")).String() + `"},"layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":` + itoa(len(manifest)) + `,"digest":"` + mh.String() + `"}}`)
	rh := sha(ref)
	write("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	for _, b := range [][]byte{config, layer, manifest, ref, []byte("{}")} {
		write("blobs/sha256/"+sha(b).Hex, b)
	}
	idx, _ := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{{
		MediaType: types.OCIManifestSchema1, Size: int64(len(manifest)), Digest: mh,
		Annotations: map[string]string{specs.AnnotationRefName: "team/app:v1"}}}})
	write("index.json", idx)
	for _, b := range [][]byte{config, layer, []byte("{}")} {
		link(sha(b), "repositories/team/app/_blobs/"+sha(b).Hex)
	}
	write("repositories/team/app/_manifests/"+mh.Hex, []byte(types.OCIManifestSchema1))
	write("repositories/team/app/_manifests/"+rh.Hex, []byte(types.OCIManifestSchema1))
	rd, _ := json.Marshal(v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: int64(len(ref)), Digest: rh, ArtifactType: "application/vnd.example.sig"})
	write("repositories/team/app/_referrers/"+mh.Hex+"/"+rh.Hex, rd)
	write("uploads/0123456789abcdef0123456789abcdef", []byte("an upload a crash left"))

	l, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	rs := l.Repositories()
	check := func() {
		t.Helper()
		for _, reference := range []string{"v1", mh.String()} {
			if _, got, err := rs.GetManifest("team/app", reference); err != nil || !bytes.Equal(got, manifest) {
				t.Fatalf("manifest %s: %v", reference, err)
			}
		}
		for _, b := range [][]byte{config, layer} {
			if got, err := readBlob(t, l, "team/app", sha(b)); err != nil || !bytes.Equal(got, b) {
				t.Fatalf("blob %s: %v", sha(b), err)
			}
		}
		refs, err := rs.Referrers("team/app", mh)
		if err != nil || len(refs) != 1 || refs[0].Digest != rh {
			t.Fatalf("referrers: %v %v", refs, err)
		}
		if tags, err := rs.Tags("team/app"); err != nil || len(tags) != 1 || tags[0] != "v1" {
			t.Fatalf("tags: %v %v", tags, err)
		}
		if names, err := rs.Catalog(); err != nil || len(names) != 1 || names[0] != "team/app" {
			t.Fatalf("catalog: %v %v", names, err)
		}
	}
	check()
	st, err := rs.GC(context.Background(), time.Nanosecond)
	if err != nil {
		t.Fatal(err)
	}
	if st.Blobs != 0 || st.Uploads != 1 {
		t.Fatalf("gc on the old format: %+v, want nothing but the upload", st)
	}
	check()
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
