package base

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kilnbuild/kiln/internal/testutil"
)

// A single-image base whose config leaves out the os or the architecture is
// used as ko uses it: linux and amd64 fill what is missing, and Note is told
// once. A base that names its platform gets no note.
func TestSingleImageWithoutPlatform(t *testing.T) {
	reg := testutil.Registry(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name     string
		os, arch string
		want     string // the platform the base is used as
		note     bool
	}{
		{name: "neither (crane append from nothing)", want: "linux/amd64", note: true},
		{name: "no architecture", os: "linux", want: "linux/amd64", note: true},
		{name: "no os", arch: "arm64", want: "linux/arm64", note: true},
		{name: "both", os: "linux", arch: "arm64", want: "linux/arm64"},
	} {
		img := noPlatformImage(t, tc.os, tc.arch)
		slug := strings.Fields(tc.name)[0]
		ref := reg + "/" + slug + ":v1"
		r, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(r, img); err != nil {
			t.Fatal(err)
		}
		lay := filepath.Join(dir, slug)
		testutil.WriteLayout(t, lay, img)

		for _, ref := range []string{ref, "oci:" + lay} {
			kind := "registry"
			if strings.HasPrefix(ref, ociPrefix) {
				kind = "oci"
			}
			t.Run(tc.name+"/"+kind, func(t *testing.T) {
				var notes []string
				b, err := Resolve(context.Background(), ref, Options{Keychain: anon(), Note: func(m string) { notes = append(notes, m) }})
				if err != nil {
					t.Fatal(err)
				}
				ps, err := b.Platforms()
				if err != nil || len(ps) != 1 || ps[0].String() != tc.want {
					t.Fatalf("Platforms = %v, %v; want [%s]", ps, err, tc.want)
				}
				got, err := b.Image(plat(tc.want))
				if err != nil {
					t.Fatalf("Image(%s): %v", tc.want, err)
				}
				if testutil.Digest(t, got) != testutil.Digest(t, img) {
					t.Errorf("Image(%s) is not the base image", tc.want)
				}
				_, err = b.Image(plat("linux/s390x"))
				wantErr := fmt.Sprintf(`base %q has no linux/s390x image (it has %s)`, ref, tc.want)
				if !errors.Is(err, ErrPlatformMissing) || err.Error() != wantErr {
					t.Errorf("Image(linux/s390x) = %v, want %s", err, wantErr)
				}
				wantNotes := 0
				if tc.note {
					wantNotes = 1
				}
				if len(notes) != wantNotes {
					t.Fatalf("notes = %q, want %d", notes, wantNotes)
				}
				if tc.note {
					want := fmt.Sprintf("base %q names no platform in its config: using it as %s, as ko does", ref, tc.want)
					if notes[0] != want {
						t.Errorf("note = %q, want %q", notes[0], want)
					}
				}
			})
		}
	}
}

// noPlatformImage is what `crane append` makes from nothing (one layer on
// the empty image), with os and arch in its config.
func noPlatformImage(t *testing.T, os, arch string) v1.Image {
	t.Helper()
	l, err := random.Layer(256, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = os, arch
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
