package store

import (
	"errors"
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kilnbuild/kiln/internal/checked"
)

// ErrNotFound means no manifest has the asked-for name.
var ErrNotFound = errors.New("not found in the image layout")

// Lookup returns the descriptor index.json gives refName. It reads
// index.json anew, at most checked.MaxJSON bytes.
func (l *Layout) Lookup(refName string) (v1.Descriptor, error) {
	im, err := checked.LayoutIndex(l.dir)
	if os.IsNotExist(err) {
		im, err = &v1.IndexManifest{}, nil
	}
	if err != nil {
		return v1.Descriptor{}, err
	}
	return lookupIn(im, refName, l.dir)
}

// lookupLocked reads index.json, which is replaced atomically, so it is
// safe with or without the lock. It differs from Lookup on purpose: it
// reads what the store's writes read (the shared parse, unbounded), so
// that a writer finds every tag it may rewrite; Lookup reads any layout,
// bounded, as a reader of what no digest names must.
func (l *Layout) lookupLocked(refName string) (v1.Descriptor, error) {
	im, err := l.readIndex()
	if err != nil {
		return v1.Descriptor{}, err
	}
	return lookupIn(im, refName, l.dir)
}

// lookupIn finds refName in im; the last descriptor so named wins.
func lookupIn(im *v1.IndexManifest, refName, dir string) (v1.Descriptor, error) {
	for i := len(im.Manifests) - 1; i >= 0; i-- {
		if d := im.Manifests[i]; d.Annotations[specs.AnnotationRefName] == refName {
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("%s in %s: %w", refName, dir, ErrNotFound)
}

var _ checked.Blobs = (*Layout)(nil)

// Blob opens blob h of the layout, unchecked: read it through
// checked.Image, checked.Index or checked.Reader.
func (l *Layout) Blob(h v1.Hash) (io.ReadCloser, error) {
	if !validDigest(h) {
		return nil, fmt.Errorf("%w: %q", ErrDigestInvalid, h.String())
	}
	return os.Open(l.blobPath(h))
}
