package checked_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kilnbuild/kiln/internal/checked"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// lying serves the registry h, except that it changes one byte of the blob
// named flip and answers a GET of the tag "huge" with a manifest of 8 MiB.
func lying(h http.Handler, flip *v1.Hash) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/manifests/huge") && r.Method == http.MethodGet {
			w.Header().Set("Content-Type", string(types.OCIManifestSchema1))
			w.Write([]byte(`{"schemaVersion":2` + strings.Repeat(" ", 8<<20) + `}`))
			return
		}
		if flip.Hex == "" || !strings.HasSuffix(r.URL.Path, "/blobs/"+flip.String()) {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		b := rec.Body.Bytes()
		if len(b) > 0 {
			b[len(b)/2] ^= 1
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(b)
	})
}

func TestRegistry(t *testing.T) {
	var flip v1.Hash
	repo, err := name.NewRepository(testutil.Serve(t, lying(testutil.QuietRegistry(), &flip)) + "/app")
	if err != nil {
		t.Fatal(err)
	}
	var adds []mutate.IndexAddendum
	for range 2 {
		img, _ := random.Image(1024, 2)
		adds = append(adds, mutate.IndexAddendum{Add: img})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	if err := remote.WriteIndex(repo.Tag("v1"), idx); err != nil {
		t.Fatal(err)
	}
	open := func() (v1.ImageIndex, error) {
		b := &checked.Remote{Repo: repo, Options: []remote.Option{remote.WithTransport(checked.Transport(nil))}}
		d, err := b.Get(repo.Tag("v1"))
		if err != nil {
			return nil, err
		}
		return checked.Index(b, d)
	}
	got, err := open()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if rep, err := checked.Walk(ctx, got, checked.WalkOptions{Jobs: 2}); err != nil || rep.Layers != 4 {
		t.Fatalf("walk: %+v, %v", rep, err)
	}

	// A registry that serves other bytes for a layer's digest is caught
	// (by go-containerregistry's reader, inside checked's).
	im, _ := got.IndexManifest()
	img, _ := got.Image(im.Manifests[0].Digest)
	m, _ := img.Manifest()
	flip = m.Layers[0].Digest
	_, err = checked.Walk(ctx, got, checked.WalkOptions{Jobs: 2})
	if err == nil || !strings.Contains(err.Error(), flip.String()) {
		t.Errorf("walk of a layer the registry changed: %v, want an error naming %s", err, flip)
	}
	// ... and so is its config.
	flip = m.Config.Digest
	if _, err := got.Image(im.Manifests[0].Digest); err == nil {
		t.Error("a config the registry changed was read")
	}

	// A manifest larger than MaxJSON is cut off, not read whole.
	b := &checked.Remote{Repo: repo, Options: []remote.Option{remote.WithTransport(checked.Transport(nil))}}
	if _, err := b.Get(repo.Tag("huge")); !errors.Is(err, checked.ErrTooLarge) {
		t.Errorf("an 8 MiB manifest: %v, want ErrTooLarge", err)
	}
}
