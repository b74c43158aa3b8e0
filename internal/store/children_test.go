package store_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Put goes down an index as checked.Walk does: a child whose media type
// names neither an image nor an index is refused before anything is
// tagged (before, it was written as an image, and Walk then refused the
// index the store held).
func TestPutGoesDownAnIndexAsWalkDoes(t *testing.T) {
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	inner := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img})
	for _, tc := range []struct {
		name  string
		child mutate.Appendable
		mt    types.MediaType
		want  string // "" when Put succeeds
	}{
		{"an image", img, types.OCIManifestSchema1, ""},
		{"a docker image", img, types.DockerManifestSchema2, ""},
		{"an index in an index", inner, types.OCIImageIndex, ""},
		{"an unknown media type", img, "application/vnd.example.thing+json", "not a manifest"},
		{"an artifact manifest", img, "application/vnd.oci.artifact.manifest.v1+json", "not a manifest"},
		{"a layer", img, types.OCILayer, "not a manifest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, dir := open(t)
			idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{
				Add:        tc.child,
				Descriptor: v1.Descriptor{MediaType: tc.mt},
			})
			_, err := l.Put(context.Background(), idx, []string{"app:x"})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Put: %v", err)
				}
				if _, err := l.Index(); err != nil {
					t.Errorf("the index Put wrote does not read back: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Put = %v, want an error saying %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "index.json")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a refused index was tagged: index.json is there (%v)", err)
			}
		})
	}
}
