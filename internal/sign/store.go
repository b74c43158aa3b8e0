package sign

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/kilnbuild/kiln/internal/checked"
	"github.com/kilnbuild/kiln/internal/remoteopt"
	"github.com/kilnbuild/kiln/internal/store"
)

// ErrNotFound means no image has the asked-for tag.
var ErrNotFound = errors.New("not found")

// Store reads and writes the small tagged images that carry signatures and
// attestations, next to the image they are about.
type Store interface {
	// Get returns the image tagged tag in repo, or an error wrapping ErrNotFound.
	Get(ctx context.Context, repo, tag string) (v1.Image, error)
	Put(ctx context.Context, repo, tag string, img v1.Image) error
}

// RegistryStore is a Store in a container registry.
type RegistryStore struct {
	Keychain  authn.Keychain
	Transport http.RoundTripper

	// referrers serialises PutReferrer: without the referrers API each put
	// rewrites the subject's fallback tag, and two at once lose one.
	referrers sync.Mutex
}

var _ Store = (*RegistryStore)(nil)

func (r *RegistryStore) options(ctx context.Context) []remote.Option {
	return remoteopt.New(ctx, r.Keychain, r.Transport)
}

// reader reads manifests of repo, bounded and checked (see checked.Remote).
func (r *RegistryStore) reader(ctx context.Context, repo name.Repository) *checked.Remote {
	opts := append(r.options(ctx), remote.WithTransport(checked.Transport(r.Transport)))
	return &checked.Remote{Repo: repo, Options: opts}
}

// image reads the image ref names, checked.
func (r *RegistryStore) image(ctx context.Context, ref name.Reference) (v1.Image, error) {
	b := r.reader(ctx, ref.Context())
	d, err := b.Get(ref)
	if err != nil {
		return nil, err
	}
	return checked.Image(b, d)
}

// Get implements Store.
func (r *RegistryStore) Get(ctx context.Context, repo, tag string) (v1.Image, error) {
	ref, err := name.NewTag(repo + ":" + tag)
	if err != nil {
		return nil, err
	}
	img, err := r.image(ctx, ref)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("%s: %w", ref, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", ref, err)
	}
	return img, nil
}

// Put implements Store.
func (r *RegistryStore) Put(ctx context.Context, repo, tag string, img v1.Image) error {
	ref, err := name.NewTag(repo + ":" + tag)
	if err != nil {
		return err
	}
	if err := remote.Write(ref, img, r.options(ctx)...); err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	return nil
}

// LayoutStore is a Store in an OCI image layout (the local store, oci:DIR),
// naming images "repo:tag" as kiln build does.
type LayoutStore struct {
	Dir string
}

var _ Store = (*LayoutStore)(nil)

// Get implements Store.
func (l *LayoutStore) Get(_ context.Context, repo, tag string) (v1.Image, error) {
	lay, err := store.Open(l.Dir)
	if err != nil {
		return nil, err
	}
	d, err := lay.Lookup(repo + ":" + tag)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%s:%s: %w", repo, tag, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if !d.MediaType.IsImage() && d.MediaType != "" {
		return nil, fmt.Errorf("%s:%s is a %s, not an image", repo, tag, d.MediaType)
	}
	return checked.Image(lay, d)
}

// Put implements Store.
func (l *LayoutStore) Put(ctx context.Context, repo, tag string, img v1.Image) error {
	lay, err := store.Open(l.Dir)
	if err != nil {
		return err
	}
	_, err = lay.Put(ctx, img, []string{repo + ":" + tag})
	return err
}
