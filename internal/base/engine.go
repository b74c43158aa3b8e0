package base

import (
	"context"
	"errors"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// EngineDomain is the registry name of the local container engine's
// images, as ko names them: a base ko.local/NAME[:TAG] is read from the
// local podman or docker, not pulled.
const EngineDomain = "ko.local"

// EngineReader reads ref (ko.local/…) from the local container engine, with
// every byte checked against its digest.
type EngineReader func(ctx context.Context, ref string) (v1.Image, error)

// isEngineRef reports whether ref names an image of the local engine.
func isEngineRef(ref string) bool {
	r, err := name.ParseReference(ref)
	return err == nil && r.Context().RegistryStr() == EngineDomain
}

func resolveEngine(ctx context.Context, ref string, read EngineReader) (*Base, error) {
	if read == nil {
		return nil, &Error{Ref: ref, Kind: Invalid, Err: errors.New("ko.local bases are read from the local podman or docker, which this build does not reach: use a registry or oci: base")}
	}
	img, err := read(ctx, ref)
	if err != nil {
		kind := Invalid
		if strings.Contains(err.Error(), "image not known") || strings.Contains(err.Error(), "No such image") {
			kind = NotFound
		}
		return nil, &Error{Ref: ref, Kind: kind, Err: err}
	}
	d, err := img.Digest()
	if err != nil {
		return nil, &Error{Ref: ref, Kind: Invalid, Err: err}
	}
	return &Base{name: ref, image: img, digest: d, hasDigest: true}, nil
}
