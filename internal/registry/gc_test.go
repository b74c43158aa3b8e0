package registry_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kilnbuild/kiln/internal/registry"
	"github.com/kilnbuild/kiln/internal/store"
)

func hashOf(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

// gc runs beside pushes that reuse an old layer, linked into the
// repository by an earlier server and referred to by nothing, so HEAD says
// 200. Over many rounds and every interleaving the scheduler finds, every
// push succeeds and no manifest is acknowledged whose layer is then gone.
func TestGCBesidePushesLosesNoAcknowledgedBlob(t *testing.T) {
	rounds := 200
	if testing.Short() {
		rounds = 50
	}
	dir := t.TempDir()
	ctx := context.Background()
	for i := range rounds {
		// The old layer, from an earlier server's life.
		earlier, err := store.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		earlier.DisableSyncUnsafe()
		layer := bytes.Repeat([]byte(fmt.Sprintf("old layer %d\n", i)), 64<<10/12) // past the journal: a file
		lh := hashOf(layer)
		up, err := earlier.Repositories().NewUpload("app")
		if err != nil {
			t.Fatal(err)
		}
		up.Write(bytes.NewReader(layer))
		if err := up.Commit(lh); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-24 * time.Hour)
		os.Chtimes(filepath.Join(dir, "blobs", "sha256", lh.Hex), old, old)

		st, err := store.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		st.DisableSyncUnsafe()
		if err := st.Repositories().OpenJournal(); err != nil {
			t.Fatal(err)
		}
		reg, err := registry.New(st.Repositories(), registry.Options{Access: open()})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(reg)

		config := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","round":%d}`, i))
		ch := hashOf(config)
		if resp := do(t, "POST", srv.URL+"/v2/app/blobs/uploads/?digest="+ch.String(), nil, config); resp.StatusCode != http.StatusCreated {
			t.Fatalf("config: %s", resp.Status)
		}
		m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
			Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(config)), Digest: ch},
			Layers: []v1.Descriptor{{MediaType: types.OCILayer, Size: int64(len(layer)), Digest: lh}}}
		manifest, _ := json.Marshal(m)

		var wg sync.WaitGroup
		var gcErr error
		var status int
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, gcErr = st.Repositories().GC(ctx, time.Hour)
		}()
		go func() {
			defer wg.Done()
			// As a client does: HEAD, upload only if missing, then the manifest.
			req, _ := http.NewRequest("HEAD", srv.URL+"/v2/app/blobs/"+lh.String(), nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusNotFound {
				resp, err := http.Post(srv.URL+"/v2/app/blobs/uploads/?digest="+lh.String(), "", bytes.NewReader(layer))
				if err != nil {
					return
				}
				resp.Body.Close()
			}
			req, _ = http.NewRequest("PUT", srv.URL+"/v2/app/manifests/v1", bytes.NewReader(manifest))
			req.Header.Set("Content-Type", string(types.OCIManifestSchema1))
			if resp, err = http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
				status = resp.StatusCode
			}
		}()
		wg.Wait()
		if gcErr != nil {
			t.Fatal(gcErr)
		}
		// A layer HEAD said was there stays until the manifest holds it
		// (or HEAD said it was not, and the client pushed it again).
		if status != http.StatusCreated {
			t.Fatalf("round %d: manifest PUT answered %d", i, status)
		}
		if resp := do(t, "GET", srv.URL+"/v2/app/blobs/"+lh.String(), nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("round %d: the manifest PUT answered 201, but its layer is %s", i, resp.Status)
		}
		srv.Close()
		if err := st.Repositories().CloseJournal(); err != nil {
			t.Fatal(err)
		}
	}
}
