package checked

import (
	"bytes"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Index reads the image index named desc from b, checked whole (at most
// MaxJSON bytes). Its children are read with Image and Index, and only as
// what the index says they are: a child whose media type is not a manifest
// is refused.
func Index(b Blobs, desc v1.Descriptor) (v1.ImageIndex, error) {
	raw, err := readDocument(b, "index", desc)
	if err != nil {
		return nil, err
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("index %s is not an image index: %w", desc.Digest, err)
	}
	mt := im.MediaType
	if mt == "" {
		mt = desc.MediaType
	}
	if mt != "" && !mt.IsIndex() {
		return nil, fmt.Errorf("index %s is a %s, not an image index", desc.Digest, mt)
	}
	for _, c := range im.Manifests {
		if !c.MediaType.IsImage() && !c.MediaType.IsIndex() && !isArtifactManifest(c.MediaType) {
			return nil, fmt.Errorf("index %s: its child %s is a %q, not a manifest", desc.Digest, c.Digest, c.MediaType)
		}
	}
	return &index{blobs: b, digest: desc.Digest, raw: raw, im: im, mediaType: mt}, nil
}

// isArtifactManifest reports media types of manifests that are neither
// images nor indexes but may be an index's children.
func isArtifactManifest(mt types.MediaType) bool {
	return mt == "application/vnd.oci.artifact.manifest.v1+json"
}

type index struct {
	blobs     Blobs
	digest    v1.Hash
	raw       []byte
	im        *v1.IndexManifest
	mediaType types.MediaType
}

var _ v1.ImageIndex = (*index)(nil)

func (x *index) MediaType() (types.MediaType, error) { return x.mediaType, nil }
func (x *index) Digest() (v1.Hash, error)            { return x.digest, nil }
func (x *index) Size() (int64, error)                { return int64(len(x.raw)), nil }
func (x *index) RawManifest() ([]byte, error)        { return x.raw, nil }
func (x *index) IndexManifest() (*v1.IndexManifest, error) {
	return v1.ParseIndexManifest(bytes.NewReader(x.raw)) // a copy the caller may edit
}

// child finds h among the index's children.
func (x *index) child(h v1.Hash) (v1.Descriptor, error) {
	for _, d := range x.im.Manifests {
		if d.Digest == h {
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("index %s has no child %s", x.digest, h)
}

func (x *index) Image(h v1.Hash) (v1.Image, error) {
	d, err := x.child(h)
	if err != nil {
		return nil, err
	}
	if !d.MediaType.IsImage() {
		return nil, fmt.Errorf("index %s: its child %s is a %s, not an image", x.digest, h, d.MediaType)
	}
	return Image(x.blobs, d)
}

func (x *index) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	d, err := x.child(h)
	if err != nil {
		return nil, err
	}
	if !d.MediaType.IsIndex() {
		return nil, fmt.Errorf("index %s: its child %s is a %s, not an index", x.digest, h, d.MediaType)
	}
	return Index(x.blobs, d)
}
