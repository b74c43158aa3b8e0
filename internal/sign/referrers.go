package sign

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kilnbuild/kiln/internal/checked"
	"github.com/kilnbuild/kiln/internal/store"
)

// MaxBlob bounds a signature's, an attestation's or a bundle's blob read
// into memory.
const MaxBlob = 16 << 20

// Referrer is one stored referrer: its manifest annotations and its one blob.
type Referrer struct {
	Annotations map[string]string
	Blob        []byte
}

// ReferrerStore keeps OCI 1.1 referrers of a subject manifest.
type ReferrerStore interface {
	// PutReferrer stores a manifest of artifactType whose one layer is blob,
	// with subject as its subject.
	PutReferrer(ctx context.Context, repo string, subject v1.Hash, artifactType string, blob []byte, annotations map[string]string) error
	// Referrers lists the referrers of subject with artifactType.
	Referrers(ctx context.Context, repo string, subject v1.Hash, artifactType string) ([]Referrer, error)
}

var (
	_ ReferrerStore = (*RegistryStore)(nil)
	_ ReferrerStore = (*LayoutStore)(nil)
)

var emptyJSON = []byte("{}")

// referrerManifest builds the manifest cosign v3 writes for a bundle.
func referrerManifest(subject v1.Descriptor, artifactType string, blob []byte, annotations map[string]string) (v1.Manifest, error) {
	cfg, err := v1.NewHash(digestOf(emptyJSON))
	if err != nil {
		return v1.Manifest{}, err
	}
	layer, err := v1.NewHash(digestOf(blob))
	if err != nil {
		return v1.Manifest{}, err
	}
	ann := map[string]string{createdAnnotation: time.Now().UTC().Format(time.RFC3339)}
	for k, v := range annotations {
		ann[k] = v
	}
	s := subject
	return v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        v1.Descriptor{MediaType: EmptyConfigMediaType, Size: int64(len(emptyJSON)), Digest: cfg, ArtifactType: artifactType},
		Layers:        []v1.Descriptor{{MediaType: types.MediaType(artifactType), Size: int64(len(blob)), Digest: layer}},
		Annotations:   ann,
		Subject:       &v1.Descriptor{MediaType: s.MediaType, Size: s.Size, Digest: s.Digest},
	}, nil
}

func digestOf(b []byte) string {
	h, _, _ := v1.SHA256(bytes.NewReader(b))
	return h.String()
}

// rawManifest is a manifest to PUT as it is.
type rawManifest struct{ raw []byte }

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// PutReferrer implements ReferrerStore. Where the registry has no referrers
// API, go-containerregistry maintains the sha256-<hex> fallback tag.
func (r *RegistryStore) PutReferrer(ctx context.Context, repo string, subject v1.Hash, artifactType string, blob []byte, annotations map[string]string) error {
	r.referrers.Lock()
	defer r.referrers.Unlock()
	sref, err := name.NewDigest(repo + "@" + subject.String())
	if err != nil {
		return err
	}
	opts := r.options(ctx)
	desc, err := remote.Head(sref, opts...)
	if err != nil {
		return fmt.Errorf("reading %s: %w", sref, err)
	}
	m, err := referrerManifest(v1.Descriptor{MediaType: desc.MediaType, Size: desc.Size, Digest: desc.Digest}, artifactType, blob, annotations)
	if err != nil {
		return err
	}
	for _, b := range []struct {
		data []byte
		mt   types.MediaType
	}{{emptyJSON, EmptyConfigMediaType}, {blob, types.MediaType(artifactType)}} {
		if err := remote.WriteLayer(sref.Context(), static.NewLayer(b.data, b.mt), opts...); err != nil {
			return fmt.Errorf("pushing to %s: %w", repo, err)
		}
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ref, err := name.NewDigest(repo + "@" + digestOf(raw))
	if err != nil {
		return err
	}
	if err := remote.Put(ref, rawManifest{raw}, opts...); err != nil {
		return fmt.Errorf("pushing referrer of %s: %w", sref, err)
	}
	return nil
}

// Referrers implements ReferrerStore, through the referrers API or its
// fallback tag.
func (r *RegistryStore) Referrers(ctx context.Context, repo string, subject v1.Hash, artifactType string) ([]Referrer, error) {
	sref, err := name.NewDigest(repo + "@" + subject.String())
	if err != nil {
		return nil, err
	}
	opts := append(r.options(ctx), remote.WithTransport(checked.Transport(r.Transport)))
	// No server-side filter: some registries derive a referrer's
	// artifactType from its config media type alone, so the manifest's own
	// artifactType is checked below.
	idx, err := remote.Referrers(sref, opts...)
	if err != nil {
		// Some registries answer the referrers endpoint with an error
		// rather than 404: read the fallback tag directly.
		fb := sref.Context().Tag(subject.Algorithm + "-" + subject.Hex)
		if idx, err = remote.Index(fb, opts...); err != nil {
			return nil, nil // no referrers
		}
	}
	return listed(idx, artifactType, func(h v1.Hash) (v1.Image, error) {
		return r.image(ctx, sref.Context().Digest(h.String()))
	})
}

// listed reads the referrers of artifactType that idx (the referrers API's
// answer or the fallback index) lists, each manifest through image.
func listed(idx v1.ImageIndex, artifactType string, image func(v1.Hash) (v1.Image, error)) ([]Referrer, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []Referrer
	for _, d := range im.Manifests {
		if !mayHaveArtifactType(d, artifactType) {
			continue
		}
		img, err := image(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("reading referrer %s: %w", d.Digest, err)
		}
		if ok, err := hasArtifactType(img, artifactType); err != nil || !ok {
			continue
		}
		ref, err := readReferrer(img)
		if err != nil {
			return nil, err
		}
		out = append(out, ref)
	}
	return out, nil
}

// mayHaveArtifactType says whether a referrer listed as d may be of type
// want, before its manifest is read: an index entry may carry no
// artifactType (a manifest typed by its config alone), or the empty config's
// media type (registries that derive it from the config); hasArtifactType
// decides on the manifest itself. Registries and layouts use this one
// filter (a layout once skipped entries with no artifactType).
func mayHaveArtifactType(d v1.Descriptor, want string) bool {
	return d.ArtifactType == want || d.ArtifactType == "" || d.ArtifactType == EmptyConfigMediaType
}

// hasArtifactType reads the manifest's artifactType, else its config media
// type, as the OCI image spec defines a referrer's artifact type.
func hasArtifactType(img v1.Image, want string) (bool, error) {
	m, err := img.Manifest()
	if err != nil {
		return false, err
	}
	got := m.ArtifactType
	if got == "" {
		got = string(m.Config.MediaType)
	}
	return got == want, nil
}

func readReferrer(img v1.Image) (Referrer, error) {
	m, err := img.Manifest()
	if err != nil {
		return Referrer{}, err
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		return Referrer{}, fmt.Errorf("referrer manifest has %d layers, want 1", len(layers))
	}
	blob, err := checked.ReadLayer(layers[0], MaxBlob)
	if err != nil {
		return Referrer{}, err
	}
	return Referrer{Annotations: m.Annotations, Blob: blob}, nil
}

// PutReferrer implements ReferrerStore: the referrer goes into the layout's
// blobs and into an index tagged REPO:sha256-<hex>, as a registry's
// fallback tag would hold it.
func (l *LayoutStore) PutReferrer(ctx context.Context, repo string, subject v1.Hash, artifactType string, blob []byte, annotations map[string]string) error {
	lay, err := store.Open(l.Dir)
	if err != nil {
		return err
	}
	sdesc, err := lay.Describe(subject)
	if err != nil {
		return err
	}
	m, err := referrerManifest(sdesc, artifactType, blob, annotations)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return lay.AddReferrer(ctx, repo+":"+subject.Algorithm+"-"+subject.Hex, raw, [][]byte{emptyJSON, blob})
}

// Referrers implements ReferrerStore.
func (l *LayoutStore) Referrers(_ context.Context, repo string, subject v1.Hash, artifactType string) ([]Referrer, error) {
	lay, err := store.Open(l.Dir)
	if err != nil {
		return nil, err
	}
	d, err := lay.Lookup(repo + ":" + subject.Algorithm + "-" + subject.Hex)
	if err != nil {
		return nil, nil // no referrers
	}
	idx, err := checked.Index(lay, d)
	if err != nil {
		return nil, err
	}
	return listed(idx, artifactType, idx.Image) // listed in the fallback index, not index.json
}
