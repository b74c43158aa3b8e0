package sign

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/kilnbuild/kiln/internal/store"
)

// TestLayoutReferrerTypedByConfig: a referrer whose manifest names no
// artifactType has its config's media type as its artifact type (the OCI
// image spec). A layout's fallback index then lists it with no
// artifactType; LayoutStore.Referrers once skipped it on that descriptor alone
// while RegistryStore.Referrers read it. Both now use one filter.
func TestLayoutReferrerTypedByConfig(t *testing.T) {
	ctx := context.Background()
	l := &LayoutStore{Dir: t.TempDir()}
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Put(ctx, "kiln.local/app", "v1", img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	lay, err := store.Open(l.Dir)
	if err != nil {
		t.Fatal(err)
	}
	sdesc, err := lay.Describe(d)
	if err != nil {
		t.Fatal(err)
	}
	const typ = "application/vnd.example.thing"
	blob := []byte(`{"x":1}`)
	m, err := referrerManifest(sdesc, typ, blob, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.ArtifactType = ""
	m.Config.MediaType = typ
	m.Config.ArtifactType = ""
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := lay.AddReferrer(ctx, "kiln.local/app:"+d.Algorithm+"-"+d.Hex, raw, [][]byte{emptyJSON, blob}); err != nil {
		t.Fatal(err)
	}
	refs, err := l.Referrers(ctx, "kiln.local/app", d, typ)
	if err != nil || len(refs) != 1 {
		t.Fatalf("Referrers = %d, %v; want the one referrer typed by its config", len(refs), err)
	}
}
