package compare

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/kilnbuild/kiln/internal/remoteopt"
	"github.com/kilnbuild/kiln/internal/sign"
)

// remote is the options of every registry call.
func (o Options) remote(ctx context.Context) []remote.Option {
	return remoteopt.New(ctx, o.Keychain, o.Transport)
}

// openRemote reads from a registry. ggcr checks what it reads by digest
// (a manifest named by digest, every blob); the manifest's size is asked
// for first, so that one larger than the JSON budget is never fetched.
func openRemote(ctx context.Context, ref string, opt Options, m *meter) (*Source, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("not an image reference: %v", err)
	}
	ropts := opt.remote(ctx)
	if head, err := remote.Head(r, ropts...); err == nil && head.Size > m.lim.JSON {
		return nil, jsonTooLarge("the manifest "+head.Digest.String(), head.Size, m.lim.JSON)
	}
	desc, err := remote.Get(r, ropts...)
	if err != nil {
		return nil, registryError(r, err)
	}
	repo := r.Context().String()
	reg := &sign.RegistryStore{Keychain: opt.Keychain, Transport: opt.Transport}
	s := &Source{Kind: KindRegistry, attached: func(ctx context.Context, tag string) (v1.Image, error) {
		return reg.Get(ctx, repo, tag)
	}}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, err
		}
		s.IndexDigest = desc.Digest
		s.Image, s.Digest, err = pickChild(idx, opt.Platform, m)
		return s, err
	}
	if desc.Size > m.lim.JSON {
		return nil, jsonTooLarge("the manifest "+desc.Digest.String(), desc.Size, m.lim.JSON)
	}
	s.Digest = desc.Digest
	s.Image, err = desc.Image()
	return s, err
}

// registryError says what went wrong with a registry in a few words.
func registryError(r name.Reference, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("not found in the registry: %v", err)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("not authorized to read it (log in, or check the docker config's credentials): %v", err)
		}
		return err
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return fmt.Errorf("cannot reach the registry %s: %v", r.Context().RegistryStr(), uerr.Err)
	}
	return err
}
