package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Describe returns the descriptor (media type, size, digest) of the
// manifest stored as blob h.
func (l *Layout) Describe(h v1.Hash) (v1.Descriptor, error) {
	if !validDigest(h) {
		return v1.Descriptor{}, fmt.Errorf("invalid digest %s", h)
	}
	raw, err := l.readManifest(h)
	if os.IsNotExist(err) {
		return v1.Descriptor{}, fmt.Errorf("manifest %s: %w", h, ErrNotFound)
	}
	if err != nil {
		return v1.Descriptor{}, err
	}
	var m struct {
		MediaType types.MediaType `json:"mediaType"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return v1.Descriptor{}, fmt.Errorf("manifest %s: %w", h, err)
	}
	return v1.Descriptor{MediaType: m.MediaType, Size: int64(len(raw)), Digest: h}, nil
}

// AddReferrer stores a referrer manifest and its blobs, and lists it in the
// OCI index named fallbackName (REPO:sha256-<hex>, the referrers tag
// schema of the distribution spec), creating that index if needed.
func (l *Layout) AddReferrer(ctx context.Context, fallbackName string, manifest []byte, blobs [][]byte) error {
	unlockSweep, err := l.sweep.sharedAcrossProcesses()
	if err != nil {
		return err
	}
	defer unlockSweep()
	for _, b := range append(blobs, manifest) {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, _, err := v1.SHA256(bytes.NewReader(b))
		if err != nil {
			return err
		}
		if err := l.writeBlobBytes(h, b); err != nil {
			return err
		}
	}
	var m v1.Manifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		return err
	}
	h, size, _ := v1.SHA256(bytes.NewReader(manifest))
	desc := v1.Descriptor{MediaType: m.MediaType, Size: size, Digest: h, ArtifactType: m.ArtifactType, Annotations: m.Annotations}

	unlock, err := l.lock()
	if err != nil {
		return err
	}
	defer unlock()
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	if old, err := l.lookupLocked(fallbackName); err == nil {
		raw, err := l.readManifest(old.Digest)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(raw, &idx); err != nil {
			return fmt.Errorf("referrers index %s: %w", fallbackName, err)
		}
	}
	for _, d := range idx.Manifests {
		if d.Digest == desc.Digest {
			return nil
		}
	}
	idx.Manifests = append(idx.Manifests, desc)
	raw, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	ih, isize, _ := v1.SHA256(bytes.NewReader(raw))
	if err := l.writeBlobBytes(ih, raw); err != nil {
		return err
	}
	return l.tagLocked(v1.Descriptor{MediaType: types.OCIImageIndex, Size: isize, Digest: ih}, []string{fallbackName})
}
