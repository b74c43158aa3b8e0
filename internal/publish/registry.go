package publish

import (
	"context"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kilnbuild/kiln/internal/oneline"
	"github.com/kilnbuild/kiln/internal/remoteopt"
)

// ToRegistry pushes to a container registry. Blobs the registry already has
// are not sent again; layers go up concurrently.
type ToRegistry struct {
	Repo      string // checked by Check; Publish takes the repo per call
	Keychain  authn.Keychain
	Transport http.RoundTripper
	Jobs      int
}

var _ Publisher = (*ToRegistry)(nil)

func (r *ToRegistry) options(ctx context.Context) []remote.Option {
	opts := remoteopt.New(ctx, r.Keychain, r.Transport)
	if r.Jobs > 0 {
		opts = append(opts, remote.WithJobs(r.Jobs))
	}
	return opts
}

// Check implements Publisher: it asks the registry for push permission.
func (r *ToRegistry) Check(ctx context.Context) error {
	repo, err := name.NewRepository(r.Repo)
	if err != nil {
		return err
	}
	kc := r.Keychain
	if kc == nil {
		kc = remoteopt.Keychain
	}
	t := r.Transport
	if t == nil {
		t = remote.DefaultTransport
	}
	if err := remote.CheckPushPermission(repo.Tag("kiln-check"), kc, t); err != nil {
		return fmt.Errorf("%w: cannot push to %s: %v", ErrNotWritable, r.Repo, oneline.First(err.Error()))
	}
	return nil
}

// Publish implements Publisher.
func (r *ToRegistry) Publish(ctx context.Context, a Artifact, repo string, tags []string) (name.Digest, error) {
	if len(tags) == 0 {
		tags = []string{"latest"}
	}
	// Every name is checked before anything is sent, so a bad second tag
	// does not leave a half-published image behind.
	refs := make([]name.Tag, len(tags))
	for i, t := range tags {
		ref, err := name.NewTag(repo + ":" + t)
		if err != nil {
			return name.Digest{}, fmt.Errorf("invalid image name %s:%s: %w", repo, t, err)
		}
		refs[i] = ref
	}
	d, err := digestRef(repo, a)
	if err != nil {
		return name.Digest{}, err
	}
	opts := r.options(ctx)
	switch v := a.(type) {
	case v1.ImageIndex:
		err = remote.WriteIndex(refs[0], v, opts...)
	case v1.Image:
		err = remote.Write(refs[0], v, opts...)
	default:
		err = fmt.Errorf("unsupported artifact %T", a)
	}
	if err != nil {
		return name.Digest{}, shortError("pushing "+refs[0].String(), err)
	}
	for _, tag := range refs[1:] {
		if err := remote.Tag(tag, a, opts...); err != nil {
			return name.Digest{}, shortError("tagging "+tag.String(), err)
		}
	}
	return d, nil
}

// shortError prints what failed and the first line of why (registry errors
// can run to pages), and still unwraps to err for errors.Is and errors.As.
func shortError(what string, err error) error {
	return &lineError{msg: what + ": " + oneline.First(err.Error()), err: err}
}

type lineError struct {
	msg string
	err error
}

func (e *lineError) Error() string { return e.msg }
func (e *lineError) Unwrap() error { return e.err }

// Close implements Publisher.
func (r *ToRegistry) Close(context.Context) error { return nil }
