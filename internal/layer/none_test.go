package layer_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kilnbuild/kiln/internal/layer"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// An uncompressed layer is its tar: the same bytes both ways, one digest,
// the OCI media type without a suffix. (ggcr's validate.Layer gunzips, so
// it cannot read one; this checks what it would.)
func TestUncompressedLayer(t *testing.T) {
	l := build(t, fixture(t), layer.Compression{Algorithm: layer.None})
	comp := testutil.ReadAll(t, l.Compressed)
	uncomp := testutil.ReadAll(t, l.Uncompressed)
	if !bytes.Equal(comp, uncomp) {
		t.Fatalf("Compressed() (%d bytes) and Uncompressed() (%d bytes) differ", len(comp), len(uncomp))
	}
	digest, _ := l.Digest()
	diffID, _ := l.DiffID()
	size, _ := l.Size()
	mt, _ := l.MediaType()
	if digest != diffID || digest.String() != sha(comp) {
		t.Errorf("Digest() = %s, DiffID() = %s, sha256 of the bytes = %s: want all three equal", digest, diffID, sha(comp))
	}
	if size != int64(len(comp)) {
		t.Errorf("Size() = %d, want %d", size, len(comp))
	}
	if mt != types.OCIUncompressedLayer {
		t.Errorf("MediaType() = %s, want %s", mt, types.OCIUncompressedLayer)
	}
	if got := readTar(t, l); len(got) != len(readTar(t, build(t, fixture(t), layer.Compression{}))) {
		t.Errorf("the uncompressed layer has %d entries, the gzip one a different count", len(got))
	}
}

// Resolve turns auto into none for a destination on this machine and into
// gzip (at auto's level) for any other; every other choice is kept.
func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		in     layer.Compression
		nearby bool
		want   layer.Compression
	}{
		{layer.Compression{Algorithm: layer.Auto}, true, layer.Compression{Algorithm: layer.None}},
		{layer.Compression{Algorithm: layer.Auto, Level: 9}, true, layer.Compression{Algorithm: layer.None}},
		{layer.Compression{Algorithm: layer.Auto}, false, layer.Compression{Algorithm: layer.Gzip}},
		{layer.Compression{Algorithm: layer.Auto, Level: 9}, false, layer.Compression{Algorithm: layer.Gzip, Level: 9}},
		{layer.Compression{Algorithm: layer.Gzip}, true, layer.Compression{Algorithm: layer.Gzip}},
		{layer.Compression{Algorithm: layer.Zstd, Level: 5}, true, layer.Compression{Algorithm: layer.Zstd, Level: 5}},
		{layer.Compression{Algorithm: layer.None}, false, layer.Compression{Algorithm: layer.None}},
	} {
		if got := tc.in.Resolve(tc.nearby); got != tc.want {
			t.Errorf("%+v.Resolve(nearby=%v) = %+v, want %+v", tc.in, tc.nearby, got, tc.want)
		}
	}
}

func TestParseAndValidateNoneAndAuto(t *testing.T) {
	for _, tc := range []struct {
		in    string
		level int
		want  string // "" means valid
	}{
		{"none", 0, ""},
		{"auto", 0, ""},
		{"auto", 1, ""},
		{"auto", 9, ""},
		{"none", 1, "compression none takes no level (got 1)"},
		{"auto", 10, "auto's level is gzip's"},
		{"auto", -1, "auto's level is gzip's"},
		{"NONE", 0, `unknown compression "NONE": use gzip, zstd, none or auto`},
		{"off", 0, `unknown compression "off"`},
	} {
		alg, err := layer.ParseAlgorithm(tc.in)
		if err == nil {
			err = layer.Compression{Algorithm: alg, Level: tc.level}.Validate()
		}
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%q level %d: %v, want %q", tc.in, tc.level, err, tc.want)
		}
	}
}

// Auto is a choice to resolve for a destination, never a layer format.
func TestBuildRefusesUnresolvedAuto(t *testing.T) {
	_, err := layer.Build(context.Background(), fixture(t), layer.Options{Compression: layer.Compression{Algorithm: layer.Auto}, Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "not resolved") {
		t.Fatalf("Build with auto: %v, want an error that it was not resolved", err)
	}
}

// The cache keeps a layer per compression: none and gzip of one binary
// are two entries, each read back as what it is.
func TestCacheKeepsNoneApart(t *testing.T) {
	c := &layer.Cache{Dir: t.TempDir()}
	entries := fixture(t)
	opts := func(a layer.Algorithm) layer.Options {
		return layer.Options{Compression: layer.Compression{Algorithm: a}, ModTime: epoch, Dir: t.TempDir()}
	}
	for range 2 { // built, then read from the cache
		for _, a := range []layer.Algorithm{layer.None, layer.Gzip} {
			l, err := c.Build(context.Background(), "go-buildid:x", entries, opts(a))
			if err != nil {
				t.Fatal(err)
			}
			mt, _ := l.MediaType()
			if want := (layer.Compression{Algorithm: a}).MediaType(); mt != want {
				t.Errorf("%s from the cache: media type %s, want %s", a, mt, want)
			}
			if a == layer.None {
				if d, _ := l.Digest(); d.String() != sha(testutil.ReadAll(t, l.Compressed)) {
					t.Errorf("none from the cache: digest %s is not its bytes'", d)
				}
			} else if err := validate.Layer(l); err != nil {
				t.Errorf("%s from the cache: %v", a, err)
			}
		}
	}
}
