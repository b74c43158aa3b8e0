package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/internal/checked"
	"github.com/kilnbuild/kiln/internal/imageref"
	"github.com/kilnbuild/kiln/internal/oneline"
	"github.com/kilnbuild/kiln/internal/remoteopt"
	"github.com/kilnbuild/kiln/internal/sign"
	"github.com/kilnbuild/kiln/internal/store"
)

// imageTarget is an image found by a reference, with where its signatures
// live. Its artifact is read through internal/checked: its manifest (and
// config) were checked against the digest when it was resolved, and what
// is read under it is checked as it is read.
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
	r, err := imageref.Parse(ref, inv.Dir)
	if err != nil {
		return imageTarget{}, fmt.Errorf("image %q: %v", ref, err)
	}
	switch r.Kind {
	case imageref.OCI:
		if r.Name == "" {
			return imageTarget{}, fmt.Errorf("image %q: name the image in the layout, as oci:DIR:REPO:TAG", ref)
		}
		return resolveInLayout(r.Path, r.Name)
	case imageref.Store:
		if storeDir == "" {
			if storeDir, err = StoreDir(inv.getenv); err != nil {
				return imageTarget{}, err
			}
		}
		return resolveInLayout(storeDir, ref)
	case imageref.OCIArchive, imageref.DockerArchive:
		return imageTarget{}, fmt.Errorf("image %q: an archive cannot hold signatures: use oci:DIR:REPO:TAG, a kiln.local/… image or a registry reference", ref)
	}
	nr, err := name.ParseReference(ref)
	if err != nil {
		return imageTarget{}, fmt.Errorf("image %q: %v", ref, err)
	}
	// go-containerregistry checks a manifest fetched by digest, and every
	// blob, against its digest; checked.Remote bounds manifests and
	// configs at checked.MaxJSON and reads them as checked.Image does.
	blobs := &checked.Remote{Repo: nr.Context(), Options: remoteopt.New(ctx, nil, checked.Transport(nil))}
	desc, err := blobs.Get(nr)
	if err != nil {
		return imageTarget{}, fmt.Errorf("image %s not found: %s", ref, oneline.First(err.Error()))
	}
	t := imageTarget{store: &sign.RegistryStore{}, repo: nr.Context().String(), digest: desc.Digest}
	t.artifact, err = readArtifact(blobs, desc)
	return t, err
}

// readArtifact reads the image or index desc names from b, checked.
func readArtifact(b checked.Blobs, desc v1.Descriptor) (store.Artifact, error) {
	if desc.MediaType.IsIndex() {
		return checked.Index(b, desc)
	}
	return checked.Image(b, desc)
}

// resolveInLayout finds REPO:TAG or REPO@DIGEST in an OCI layout. Only
// index.json, which no digest names, is read unchecked (and bounded).
func resolveInLayout(dir, ref string) (imageTarget, error) {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return imageTarget{}, fmt.Errorf("image %s: no image layout at %s", ref, dir)
	}
	lay, err := store.Open(dir)
	if err != nil {
		return imageTarget{}, err
	}
	repo, tag := ref, "latest"
	var desc v1.Descriptor
	if r, d, ok := strings.Cut(ref, "@"); ok {
		want, err := v1.NewHash(d)
		if err != nil {
			return imageTarget{}, fmt.Errorf("image %q: %v", ref, err)
		}
		repo = r
		im, err := checked.LayoutIndex(dir)
		if os.IsNotExist(err) {
			im, err = &v1.IndexManifest{}, nil
		}
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
	} else {
		if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
			repo, tag = ref[:i], ref[i+1:]
		}
		if desc, err = lay.Lookup(repo + ":" + tag); errors.Is(err, store.ErrNotFound) {
			return imageTarget{}, fmt.Errorf("image %s:%s not found in %s", repo, tag, dir)
		} else if err != nil {
			return imageTarget{}, err
		}
	}
	t := imageTarget{store: &sign.LayoutStore{Dir: dir}, repo: repo, digest: desc.Digest}
	t.artifact, err = readArtifact(lay, desc)
	return t, err
}
