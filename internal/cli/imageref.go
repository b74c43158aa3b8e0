package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kilnbuild/kiln/internal/pipeline"
	"github.com/kilnbuild/kiln/internal/sign"
	"github.com/kilnbuild/kiln/internal/store"
)

// imageTarget is an image found by a reference, with where its signatures live.
type imageTarget struct {
	store    sign.Store
	repo     string
	digest   v1.Hash
	artifact store.Artifact
}

// platformDigests are the manifests of an index (none for an image).
func (t imageTarget) platformDigests() ([]v1.Hash, error) {
	idx, ok := t.artifact.(v1.ImageIndex)
	if !ok {
		return nil, nil
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []v1.Hash
	for _, d := range im.Manifests {
		out = append(out, d.Digest)
	}
	return out, nil
}

// resolveImage finds IMAGE: oci:DIR:REPO[:TAG|@DIGEST], a kiln.local/…
// reference in the local store, or a registry reference.
func resolveImage(ctx context.Context, inv Invocation, ref, storeDir string) (imageTarget, error) {
	if rest, ok := strings.CutPrefix(ref, "oci:"); ok {
		dir, name, found := strings.Cut(rest, ":")
		if !found || name == "" {
			return imageTarget{}, fmt.Errorf("image %q: name the image in the layout, as oci:DIR:REPO:TAG", ref)
		}
		return resolveInLayout(abs(inv.Dir, dir), name)
	}
	if strings.HasPrefix(ref, pipeline.LocalRepo+"/") {
		if storeDir == "" {
			var err error
			if storeDir, err = StoreDir(inv.getenv); err != nil {
				return imageTarget{}, err
			}
		}
		return resolveInLayout(storeDir, ref)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return imageTarget{}, fmt.Errorf("image %q: %v", ref, err)
	}
	desc, err := remote.Get(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return imageTarget{}, fmt.Errorf("image %s not found: %s", ref, firstLine(err.Error()))
	}
	t := imageTarget{store: &sign.Registry{}, repo: r.Context().String(), digest: desc.Digest}
	if desc.MediaType.IsIndex() {
		t.artifact, err = desc.ImageIndex()
	} else {
		t.artifact, err = desc.Image()
	}
	return t, err
}

// resolveInLayout finds REPO:TAG or REPO@DIGEST in an OCI layout.
func resolveInLayout(dir, ref string) (imageTarget, error) {
	lay, err := store.Open(dir)
	if err != nil {
		return imageTarget{}, err
	}
	repo, tag := ref, "latest"
	var want v1.Hash
	if r, d, ok := strings.Cut(ref, "@"); ok {
		if want, err = v1.NewHash(d); err != nil {
			return imageTarget{}, fmt.Errorf("image %q: %v", ref, err)
		}
		repo = r
	} else if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		repo, tag = ref[:i], ref[i+1:]
	}
	var desc v1.Descriptor
	if want.Hex != "" {
		im, err := lay.Index()
		if err != nil {
			return imageTarget{}, err
		}
		for _, d := range im.Manifests {
			if d.Digest == want {
				desc = d
			}
		}
		if desc.Digest.Hex == "" {
			return imageTarget{}, fmt.Errorf("image %s not found in %s", ref, dir)
		}
	} else if desc, err = lay.Lookup(repo + ":" + tag); err != nil {
		return imageTarget{}, fmt.Errorf("image %s:%s not found in %s", repo, tag, dir)
	}
	t := imageTarget{store: &sign.Layout{Dir: dir}, repo: repo, digest: desc.Digest}
	if desc.MediaType.IsIndex() {
		t.artifact, err = lay.ImageIndex(desc.Digest)
	} else {
		t.artifact, err = lay.Image(desc.Digest)
	}
	return t, err
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
