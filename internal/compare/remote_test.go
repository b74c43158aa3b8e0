package compare_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kilnbuild/kiln/internal/checked"
	"github.com/kilnbuild/kiln/internal/compare"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// TestRegistryJSONBudget: a registry's manifest or config over the JSON
// budget is refused by its declared size, before it is fetched.
func TestRegistryJSONBudget(t *testing.T) {
	host := testutil.Registry(t)
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	// A config larger than the manifest, so that a budget between the two
	// reaches the config.
	if img, err = mutate.Config(img, v1.Config{Env: []string{"PAD=" + strings.Repeat("x", 4096)}}); err != nil {
		t.Fatal(err)
	}
	ref := host + "/app:v1"
	r, _ := name.ParseReference(ref)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	raw, _ := img.RawManifest()
	for _, tc := range []struct {
		name string
		json int64
		want string
	}{
		{"the manifest", int64(len(raw)) - 1, "the manifest sha256:"},
		{"the config", max(int64(len(raw)), m.Config.Size-1), "config sha256:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := openAndAnalyze(ref, compare.Options{TempDir: t.TempDir(), Limits: compare.Limits{JSON: tc.json}})
			if !errors.Is(err, checked.ErrTooLarge) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %s over the JSON budget", err, tc.want)
			}
		})
	}
	if _, err := openAndAnalyze(ref, compare.Options{TempDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}

	// A manifest whose config declares 1 GiB is refused before the config
	// is asked for.
	huge := *m
	huge.Config.Size = 1 << 30
	hraw, _ := json.Marshal(huge)
	hr, _ := name.ParseReference(host + "/app:huge")
	if err := remote.Put(hr, rawManifest{hraw}); err != nil {
		t.Fatal(err)
	}
	var oerr error
	n := allocated(func() { _, oerr = openAndAnalyze(hr.String(), compare.Options{TempDir: t.TempDir()}) })
	if !errors.Is(oerr, checked.ErrTooLarge) || n > auditAllocBudget {
		t.Fatalf("err = %v, allocated %d MiB: want the config refused by its declared size", oerr, n>>20)
	}
}

type rawManifest struct{ raw []byte }

func (r rawManifest) RawManifest() ([]byte, error) { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) {
	return types.DockerManifestSchema2, nil
}
