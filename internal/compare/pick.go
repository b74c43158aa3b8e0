package compare

import (
	"fmt"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/platform"
)

// pickChild returns the image for the wanted platform from an index: the
// asked-for one, else linux/amd64, else linux on the host's architecture,
// else the only image.
func pickChild(idx v1.ImageIndex, want *v1.Platform, m *meter) (v1.Image, v1.Hash, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, v1.Hash{}, err
	}
	var images []v1.Descriptor
	var have []string
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() {
			continue
		}
		if d.Platform != nil && d.Platform.OS == "unknown" {
			continue // attestation manifests (BuildKit)
		}
		images = append(images, d)
		if d.Platform != nil {
			have = append(have, d.Platform.String())
		}
	}
	find := func(p *v1.Platform) (v1.Descriptor, bool) {
		for _, d := range images {
			if d.Platform != nil && platform.Matches(*d.Platform, *p) {
				return d, true
			}
		}
		return v1.Descriptor{}, false
	}
	var (
		d  v1.Descriptor
		ok bool
	)
	switch {
	case want != nil:
		if d, ok = find(want); !ok {
			return nil, v1.Hash{}, fmt.Errorf("no %s image in the index (it has %s)", want, listNames(have))
		}
	default:
		if d, ok = find(&v1.Platform{OS: "linux", Architecture: "amd64"}); !ok {
			if d, ok = find(&v1.Platform{OS: "linux", Architecture: runtime.GOARCH}); !ok {
				if len(images) != 1 {
					return nil, v1.Hash{}, fmt.Errorf("the index has no linux/amd64 or linux/%s image: choose a platform (it has %s)", runtime.GOARCH, listNames(have))
				}
				d = images[0]
			}
		}
	}
	if d.Size > m.lim.JSON {
		return nil, v1.Hash{}, jsonTooLarge("the manifest "+d.Digest.String(), d.Size, m.lim.JSON)
	}
	img, err := idx.Image(d.Digest)
	return img, d.Digest, err
}

func listNames(names []string) string {
	const max = 5
	if len(names) > max {
		return strings.Join(names[:max], ", ") + fmt.Sprintf(" and %d more", len(names)-max)
	}
	return strings.Join(names, ", ")
}
