package base

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/checked"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// TestLayoutTampered: an oci: base is read through internal/checked, so a
// blob whose bytes are not its digest's is refused by name: a manifest or
// config when the base is resolved or a platform chosen, a layer when it
// is read to its end (as a build does). Before, each was used as it was.
func TestLayoutTampered(t *testing.T) {
	flip := func(b []byte) []byte { b[len(b)/2] ^= 0x20; return b }
	manifestOf := func(t *testing.T, img v1.Image) *v1.Manifest {
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		tag    string
		tamper func(t *testing.T, dir string, amd v1.Image)
		want   string // in the error of Resolve, Image or the layer's read
	}{
		{"manifest re-spaced", "v1", func(t *testing.T, dir string, amd v1.Image) {
			testutil.EditFile(t, testutil.BlobPath(dir, testutil.Digest(t, amd)), func(b []byte) []byte { return append(b, ' ') })
		}, "manifest sha256:"},
		{"config byte flipped", "v1", func(t *testing.T, dir string, amd v1.Image) {
			testutil.EditFile(t, testutil.BlobPath(dir, manifestOf(t, amd).Config.Digest), flip)
		}, "config sha256:"},
		{"layer byte flipped", "v1", func(t *testing.T, dir string, amd v1.Image) {
			testutil.EditFile(t, testutil.BlobPath(dir, manifestOf(t, amd).Layers[0].Digest), flip)
		}, "layer sha256:"},
		{"a platform's manifest swapped", "multi", func(t *testing.T, dir string, amd v1.Image) {
			testutil.EditFile(t, testutil.BlobPath(dir, testutil.Digest(t, amd)), func([]byte) []byte { return []byte(`{"schemaVersion":2}`) })
		}, "manifest sha256:"},
		{"index.json of a sparse gibibyte", "v1", func(t *testing.T, dir string, _ v1.Image) {
			if err := os.Truncate(filepath.Join(dir, "index.json"), 1<<30); err != nil {
				t.Fatal(err)
			}
		}, "larger than the budget"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, amd, _, _ := writeLayout(t)
			tc.tamper(t, dir, amd)
			err := useBase(t, "oci:"+dir+":"+tc.tag)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want one line containing %q", err, tc.want)
			}
		})
	}
}

// useBase resolves ref, picks linux/amd64 and reads its layers to the end.
func useBase(t *testing.T, ref string) error {
	t.Helper()
	b, err := Resolve(context.Background(), ref, Options{})
	if err != nil {
		return err
	}
	img, err := b.Image(plat("linux/amd64"))
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		var me *checked.MismatchError
		if err != nil && !errors.As(err, &me) {
			t.Errorf("a changed layer gave %v, want a *checked.MismatchError", err)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
