package base_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/kilnbuild/kiln/internal/base"
)

// ko.local/… bases come from Options.Engine, never from a registry; with
// no engine reader they are refused in one line.
func TestEngineBase(t *testing.T) {
	ctx := context.Background()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	var asked string
	read := func(_ context.Context, ref string) (v1.Image, error) {
		asked = ref
		if ref == "ko.local/missing" {
			return nil, errors.New("podman save: exit status 125: Error: ko.local/missing: image not known")
		}
		return img, nil
	}
	b, err := base.Resolve(ctx, "ko.local/base:v1", base.Options{Engine: read})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if d, ok := b.Digest(); !ok || d != want || asked != "ko.local/base:v1" || b.Name() != "ko.local/base:v1" {
		t.Errorf("base %s digest %s (%v), asked %q; want the engine's image %s", b.Name(), d, ok, asked, want)
	}
	for _, tc := range []struct {
		ref  string
		opts base.Options
		kind base.Kind
		want string
	}{
		{"ko.local/base:v1", base.Options{}, base.Invalid, "ko.local bases are read from the local podman or docker, which this build does not reach"},
		{"ko.local/missing", base.Options{Engine: read}, base.NotFound, "image not known"},
	} {
		_, err := base.Resolve(ctx, tc.ref, tc.opts)
		var be *base.Error
		if !errors.As(err, &be) || be.Kind != tc.kind || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v; want a %s error containing %q", tc.ref, err, tc.kind, tc.want)
		}
	}
}
