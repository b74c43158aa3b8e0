package store

import (
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// ErrNotFound means no manifest has the asked-for name.
var ErrNotFound = errors.New("not found in the image layout")

// Lookup returns the descriptor index.json gives refName.
func (l *Layout) Lookup(refName string) (v1.Descriptor, error) {
	return l.lookupLocked(refName)
}

// lookupLocked reads index.json, which is replaced atomically, so it is
// safe with or without the lock.
func (l *Layout) lookupLocked(refName string) (v1.Descriptor, error) {
	im, err := l.readIndex()
	if err != nil {
		return v1.Descriptor{}, err
	}
	for i := len(im.Manifests) - 1; i >= 0; i-- {
		if d := im.Manifests[i]; d.Annotations[RefNameAnnotation] == refName {
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("%s in %s: %w", refName, l.dir, ErrNotFound)
}

// Image reads the image manifest with digest h.
func (l *Layout) Image(h v1.Hash) (v1.Image, error) {
	return layout.Path(l.dir).Image(h)
}

// ImageIndex reads the index manifest with digest h.
func (l *Layout) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	idx, err := layout.Path(l.dir).ImageIndex()
	if err != nil {
		return nil, err
	}
	return idx.ImageIndex(h)
}
