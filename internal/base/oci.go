package base

import (
	"fmt"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	specs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kilnbuild/kiln/internal/checked"
	"github.com/kilnbuild/kiln/internal/imageref"
)

// refNameAnnotation tags a manifest in an OCI layout's index.json.
const refNameAnnotation = specs.AnnotationRefName

func resolveLayout(ref string) (*Base, error) {
	invalid := func(err error) error { return &Error{Ref: ref, Kind: Invalid, Err: err} }
	r, err := imageref.Parse(ref, "")
	if err != nil {
		return nil, invalid(err)
	}
	dir, tag, hasTag := r.Path, r.Name, r.Name != ""
	// index.json names no digest: it is read bounded; everything it points
	// at is read through internal/checked, checked against its digest.
	im, err := checked.LayoutIndex(dir)
	if os.IsNotExist(err) {
		return nil, invalid(fmt.Errorf("not an OCI image layout: %w", err))
	}
	if err != nil {
		return nil, invalid(fmt.Errorf("reading %s/index.json: %w", dir, err))
	}
	lp := layout.Path(dir)

	var desc *v1.Descriptor
	if hasTag {
		for i := range im.Manifests {
			n := im.Manifests[i].Annotations[refNameAnnotation]
			if n == tag {
				desc = &im.Manifests[i]
				break
			}
			if desc == nil && strings.HasSuffix(n, ":"+tag) {
				desc = &im.Manifests[i]
			}
		}
		if desc == nil {
			return nil, &Error{Ref: ref, Kind: NotFound,
				Err: fmt.Errorf("no manifest tagged %q in %s (it has %s)", tag, dir, refNames(im.Manifests))}
		}
	} else {
		switch len(im.Manifests) {
		case 0:
			return nil, invalid(fmt.Errorf("%s/index.json lists no manifests", dir))
		case 1:
			desc = &im.Manifests[0]
		default:
			return nil, invalid(fmt.Errorf("%s holds %d manifests, so name one with :TAG (it has %s)",
				dir, len(im.Manifests), refNames(im.Manifests)))
		}
	}

	b := &Base{name: ref, digest: desc.Digest, hasDigest: true}
	switch mt := desc.MediaType; {
	case mt.IsIndex():
		b.index, err = checked.Index(lp, *desc)
	default:
		b.image, err = checked.Image(lp, *desc)
	}
	if err != nil {
		return nil, invalid(fmt.Errorf("reading manifest %s: %w", desc.Digest, err))
	}
	return b, nil
}

// refNames lists the manifests' ref names, or digests for untagged ones.
func refNames(ds []v1.Descriptor) string {
	if len(ds) == 0 {
		return "none"
	}
	names := make([]string, len(ds))
	for i, d := range ds {
		if n := d.Annotations[refNameAnnotation]; n != "" {
			names[i] = n
		} else {
			names[i] = d.Digest.String()
		}
	}
	return strings.Join(names, ", ")
}
