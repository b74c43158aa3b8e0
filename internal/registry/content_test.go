package registry_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kilnbuild/kiln/internal/store"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// A manifest is what was pushed (or written by kiln build) as one: the
// digest of a layer or a config is not, whether pushed or CLI-written.
func TestBlobDigestIsNotAManifest(t *testing.T) {
	f := newFixture(t, open())
	pushed, written := randomImage(t), randomImage(t)
	if err := remote.Write(f.ref(t, "m/app:v1"), pushed); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.Put(context.Background(), written, []string{"m/app:v2"}); err != nil {
		t.Fatal(err)
	}
	for _, img := range []v1.Image{pushed, written} {
		layers, _ := img.Layers()
		lh, _ := layers[0].Digest()
		ch, _ := img.ConfigName()
		for _, h := range []v1.Hash{lh, ch} {
			for _, method := range []string{"GET", "HEAD"} {
				resp := do(t, method, f.srv.URL+"/v2/m/app/manifests/"+h.String(), nil, nil)
				if resp.StatusCode != http.StatusNotFound {
					t.Errorf("%s of blob %s as a manifest: %s, want 404", method, h, resp.Status)
				}
			}
		}
		mh, _ := img.Digest()
		if resp := do(t, "GET", f.srv.URL+"/v2/m/app/manifests/"+mh.String(), nil, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("the image's own manifest: %s", resp.Status)
		}
	}
}

// A stored manifest is read through a bound: a record pointing at a file
// larger than MaxManifestBytes is not served, nor read whole.
func TestManifestReadsAreBounded(t *testing.T) {
	f := newFixture(t, open())
	big := bytes.Repeat([]byte(" "), store.MaxManifestBytes+1)
	copy(big, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
	sum := sha256.Sum256(big)
	hx := hex.EncodeToString(sum[:])
	for _, p := range []string{"blobs/sha256/" + hx} {
		os.MkdirAll(filepath.Join(f.dir, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(f.dir, p), big, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rec := filepath.Join(f.dir, "repositories", "m", "big", "_manifests", hx)
	os.MkdirAll(filepath.Dir(rec), 0o755)
	if err := os.WriteFile(rec, []byte(types.OCIImageIndex), 0o644); err != nil {
		t.Fatal(err)
	}
	resp := do(t, "GET", f.srv.URL+"/v2/m/big/manifests/sha256:"+hx, nil, nil)
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("a %d-byte manifest was served", len(big))
	}
}

// A manifest whose bytes changed on disk after it was stored is never
// served, by tag or by digest: the registry reads manifests checked.
func TestChangedManifestIsNotServed(t *testing.T) {
	f := newFixture(t, open())
	img := randomImage(t)
	if err := remote.Write(f.ref(t, "m/app:v1"), img); err != nil {
		t.Fatal(err)
	}
	mh, _ := img.Digest()
	testutil.EditFile(t, testutil.BlobPath(f.dir, mh), func(b []byte) []byte { return append(b, '\n') })
	for _, ref := range []string{"v1", mh.String()} {
		for _, method := range []string{"GET", "HEAD"} {
			resp := do(t, method, f.srv.URL+"/v2/m/app/manifests/"+ref, nil, nil)
			if resp.StatusCode == http.StatusOK {
				t.Errorf("%s manifest %s changed on disk: 200 OK", method, ref)
			}
		}
	}
}

// Manifests that must be refused, each with the code a client sees; a
// refused request writes nothing.
func TestManifestsMustBeManifests(t *testing.T) {
	f := newFixture(t, open())
	img := randomImage(t)
	if err := remote.Write(f.ref(t, "m/app:v1"), img); err != nil {
		t.Fatal(err)
	}
	desc, _ := remote.Head(f.ref(t, "m/app:v1"))
	layers, _ := img.Layers()
	lh, _ := layers[0].Digest()
	lsize, _ := layers[0].Size()
	ch, _ := img.ConfigName()
	index := func(children ...string) []byte {
		return []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` + strings.Join(children, ",") + `]}`)
	}
	child := func(mt types.MediaType, h v1.Hash, size int64) string {
		return fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d}`, mt, h, size)
	}
	referrer := func(subject string) []byte {
		return []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` +
			child("application/vnd.example.sig", ch, 10) + `,"layers":[],"subject":` + subject + `}`)
	}
	huge := int64(1) << 40
	ociIndex := map[string]string{"Content-Type": string(types.OCIImageIndex)}
	ociManifest := map[string]string{"Content-Type": string(types.OCIManifestSchema1)}
	for _, tc := range []struct {
		name   string
		hdr    map[string]string
		body   []byte
		status int
		code   string
	}{
		{"index with a layer child (manifest media type)", ociIndex, index(child(types.OCIManifestSchema1, lh, lsize)), 400, "MANIFEST_BLOB_UNKNOWN"},
		{"index with a layer child (layer media type)", ociIndex, index(child(types.OCILayer, lh, lsize)), 400, "MANIFEST_INVALID"},
		{"index with a config child", ociIndex, index(child(types.OCIManifestSchema1, ch, 10)), 400, "MANIFEST_BLOB_UNKNOWN"},
		{"index child without media type", ociIndex, index(child("", desc.Digest, desc.Size)), 400, "MANIFEST_INVALID"},
		{"subject without digest", ociManifest, referrer(`{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":10}`), 400, "MANIFEST_INVALID"},
		{"subject empty", ociManifest, referrer(`{}`), 400, "MANIFEST_INVALID"},
		{"subject without media type", ociManifest, referrer(fmt.Sprintf(`{"digest":%q,"size":%d}`, desc.Digest, desc.Size)), 400, "MANIFEST_INVALID"},
		{"subject without size", ociManifest, referrer(fmt.Sprintf(`{"mediaType":%q,"digest":%q}`, desc.MediaType, desc.Digest)), 400, "MANIFEST_INVALID"},
		{"subject of an unknown algorithm", ociManifest, referrer(`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"md5:00000000000000000000000000000000","size":10}`), 400, "MANIFEST_INVALID"},
		{"config of a huge size, not pushed", ociManifest, []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` + child("application/vnd.oci.image.config.v1+json", v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("1", 64)}, huge) + `,"layers":[]}`), 400, "MANIFEST_BLOB_UNKNOWN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := blobFiles(t, f.dir)
			resp := do(t, "PUT", f.srv.URL+"/v2/m/app/manifests/bad", tc.hdr, tc.body)
			var we wireError
			json.NewDecoder(resp.Body).Decode(&we)
			if resp.StatusCode != tc.status || len(we.Errors) != 1 || we.Errors[0].Code != tc.code {
				t.Fatalf("got %s %+v, want %d %s", resp.Status, we, tc.status, tc.code)
			}
			if after := blobFiles(t, f.dir); !slices.Equal(before, after) {
				t.Fatalf("a refused request changed the store:\nbefore %v\nafter  %v", before, after)
			}
		})
	}

	// A full subject is taken, and the referrers of that subject keep
	// working after it.
	for i := range 2 {
		body := referrer(fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d}`, desc.MediaType, desc.Digest, desc.Size))
		body = bytes.Replace(body, []byte(`"layers":[]`), []byte(fmt.Sprintf(`"layers":[],"annotations":{"n":"%d"}`, i)), 1)
		resp := do(t, "PUT", f.srv.URL+fmt.Sprintf("/v2/m/app/manifests/ref%d", i), ociManifest, body)
		if resp.StatusCode != http.StatusCreated || resp.Header.Get("OCI-Subject") != desc.Digest.String() {
			t.Fatalf("referrer %d: %s, OCI-Subject %q", i, resp.Status, resp.Header.Get("OCI-Subject"))
		}
	}
	resp := do(t, "GET", f.srv.URL+"/v2/m/app/referrers/"+desc.Digest.String(), nil, nil)
	var im v1.IndexManifest
	json.NewDecoder(resp.Body).Decode(&im)
	if len(im.Manifests) != 2 {
		t.Fatalf("referrers: %d, want 2", len(im.Manifests))
	}
}
