package sbom

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Kind is the format of an unsigned SBOM, as ko's --sbom names it.
type Kind string

// The kinds --sbom takes. ko v0.19.1 writes SPDX only (and takes any other
// word for it); kiln also writes CycloneDX 1.5, which ko dropped, and the
// text of `go version -m`, and refuses a word it does not know.
const (
	KindNone      Kind = "none"
	KindSPDX      Kind = "spdx"
	KindCycloneDX Kind = "cyclonedx"
	KindGoVersion Kind = "go.version-m"
)

// ErrUnknownKind is what ParseKind returns for a kind it does not know.
var ErrUnknownKind = errors.New("unknown SBOM kind")

// ParseKind reads --sbom; "" is none.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case "":
		return KindNone, nil
	case KindNone, KindSPDX, KindCycloneDX, KindGoVersion:
		return k, nil
	}
	return "", fmt.Errorf("--sbom %q: %w: use spdx, cyclonedx, go.version-m or none", s, ErrUnknownKind)
}

// MediaType is the media type of the attached SBOM's layer, as cosign
// and ko name them.
func (k Kind) MediaType() types.MediaType {
	switch k {
	case KindSPDX:
		return "text/spdx+json"
	case KindCycloneDX:
		return "application/vnd.cyclonedx+json"
	case KindGoVersion:
		return "application/vnd.go.version-m"
	}
	return ""
}

// Ext is the file name extension ko gives the SBOM in --sbom-dir.
func (k Kind) Ext() string {
	switch k {
	case KindSPDX:
		return "spdx.json"
	case KindCycloneDX:
		return "cyclonedx.json"
	case KindGoVersion:
		return "go.version-m"
	}
	return ""
}

// FileName is ko's name for an SBOM in --sbom-dir: NAME-PLATFORM.EXT for
// an image (linux/arm/v7 → linux-arm-v7), NAME-index.EXT for an index.
func (k Kind) FileName(name, platform string) string {
	pf := strings.NewReplacer("/", "-", ":", "-").Replace(platform)
	return name + "-" + pf + "." + k.Ext()
}

// Render is the SBOM of one image in kind k. appPath is where the binary
// is in the image (go version -m names it).
func Render(k Kind, in Input, appPath string) ([]byte, error) {
	switch k {
	case KindSPDX:
		return marshal(Generate(in))
	case KindCycloneDX:
		return marshal(CycloneDX(Generate(in)))
	case KindGoVersion:
		if in.BuildInfo == nil {
			return nil, errors.New("the binary carries no Go build info: cannot write go version -m")
		}
		return GoVersionM(appPath, in.BuildInfo), nil
	}
	return nil, nil
}

// RenderIndex is the SBOM of an index in kind k; nil for go.version-m,
// which describes a binary, not an index (as in ko).
func RenderIndex(k Kind, in IndexInput) ([]byte, error) {
	switch k {
	case KindSPDX:
		return marshal(GenerateIndex(in))
	case KindCycloneDX:
		return marshal(CycloneDX(GenerateIndex(in)))
	}
	return nil, nil
}

func marshal(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Tag is the tag an unsigned SBOM of the manifest d is attached under,
// as cosign and ko attach it: sha256-<hex>.sbom.
func Tag(d v1.Hash) string { return d.Algorithm + "-" + d.Hex + ".sbom" }

// Attachment is the image that carries an SBOM at its Tag: an OCI
// manifest with an empty config and one layer, the SBOM as is, under the
// kind's media type; `cosign download sbom` reads it.
func Attachment(k Kind, payload []byte) (v1.Image, error) {
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(payload, k.MediaType())})
	if err != nil {
		return nil, fmt.Errorf("making the SBOM attachment: %w", err)
	}
	return img, nil
}
