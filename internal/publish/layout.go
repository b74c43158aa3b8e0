package publish

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/kilnbuild/kiln/internal/store"
)

// ToLayout writes into an OCI image layout directory (oci:DIR, and the local
// store), tagging each image with "repo:tag" ref names.
type ToLayout struct {
	Dir string
}

var _ Publisher = (*ToLayout)(nil)

// Check implements Publisher.
func (l *ToLayout) Check(context.Context) error {
	if err := checkDirWritable(l.Dir); err != nil {
		return fmt.Errorf("output %s: %w", l.Dir, err)
	}
	return nil
}

// Publish implements Publisher.
func (l *ToLayout) Publish(ctx context.Context, a Artifact, repo string, tags []string) (name.Digest, error) {
	lay, err := store.Open(l.Dir)
	if err != nil {
		return name.Digest{}, err
	}
	if len(tags) == 0 {
		tags = []string{"latest"}
	}
	names := make([]string, len(tags))
	for i, t := range tags {
		names[i] = refName(repo, t)
	}
	if _, err := lay.Put(ctx, a, names); err != nil {
		return name.Digest{}, fmt.Errorf("writing to %s: %w", l.Dir, err)
	}
	return digestRef(repo, a)
}

// Close implements Publisher.
func (l *ToLayout) Close(context.Context) error { return nil }
