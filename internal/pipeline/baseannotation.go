package pipeline

import (
	"maps"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/base"
	"github.com/kilnbuild/kiln/internal/image"
)

// platformAnnotations are the annotations of the image built on baseImg,
// the base bs's image for one platform. From an index base, the image
// names the platform image's digest as its base digest, as ko does (the
// index of a multi-platform build keeps the index's); an annotation the
// config sets is kept.
func platformAnnotations(annotations map[string]string, bs *base.Base, baseImg v1.Image) (map[string]string, error) {
	d, hasDigest := bs.Digest()
	if _, ok := bs.Index(); !ok || !hasDigest || annotations[image.AnnotationBaseDigest] != d.String() {
		return annotations, nil
	}
	h, err := baseImg.Digest()
	if err != nil {
		return nil, err
	}
	out := maps.Clone(annotations)
	out[image.AnnotationBaseDigest] = h.String()
	return out, nil
}
