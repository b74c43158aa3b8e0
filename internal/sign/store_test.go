package sign_test

import (
	"context"
	"errors"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/checked"
	"github.com/kilnbuild/kiln/internal/sign"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// TestLayoutGetChecks: a signature image read back from a layout is read
// through internal/checked: a changed manifest is refused when it is read,
// a changed signature blob when its bytes are read to the end.
func TestLayoutGetChecks(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		target func(m *v1.Manifest, d v1.Hash) v1.Hash
		read   bool // the change shows only once the layer is read
	}{
		{"manifest changed", func(_ *v1.Manifest, d v1.Hash) v1.Hash { return d }, false},
		{"signature blob changed", func(m *v1.Manifest, _ v1.Hash) v1.Hash { return m.Layers[0].Digest }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := target{"layout", &sign.LayoutStore{Dir: t.TempDir()}, "kiln.local/app"}
			d := pushRandom(t, tg, "v1")
			if err := newKey(t).signer.Sign(ctx, tg.st, tg.repo, d); err != nil {
				t.Fatal(err)
			}
			img, err := tg.st.Get(ctx, tg.repo, sign.SignatureTag(d))
			if err != nil {
				t.Fatal(err)
			}
			m, _ := img.Manifest()
			sd, _ := img.Digest()
			h := tc.target(m, sd)
			testutil.EditFile(t, testutil.BlobPath(tg.st.(*sign.LayoutStore).Dir, h), func(b []byte) []byte { b[len(b)/2] ^= 1; return b })
			img, err = tg.st.Get(ctx, tg.repo, sign.SignatureTag(d))
			if tc.read && err == nil {
				layers, _ := img.Layers()
				_, err = checked.ReadLayer(layers[0], sign.MaxBlob)
			}
			var me *checked.MismatchError
			if !errors.As(err, &me) || me.Want != h {
				t.Fatalf("err = %v, want a *checked.MismatchError naming %s", err, h)
			}
		})
	}
}
