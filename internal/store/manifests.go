package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	specs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kilnbuild/kiln/internal/checked"
)

// MaxManifestBytes bounds a manifest a registry accepts.
const MaxManifestBytes = 4 << 20

// manifestTypes are the manifest media types the store accepts.
var manifestTypes = map[types.MediaType]bool{
	types.OCIManifestSchema1:    true,
	types.OCIImageIndex:         true,
	types.DockerManifestSchema2: true,
	types.DockerManifestList:    true,
}

// GetManifest returns the descriptor and bytes of the manifest reference
// (a tag or a digest) of repository name.
func (rs *Repositories) GetManifest(name, reference string) (v1.Descriptor, []byte, error) {
	if err := ValidName(name); err != nil {
		return v1.Descriptor{}, nil, err
	}
	var desc v1.Descriptor
	if strings.Contains(reference, ":") {
		h, err := ParseDigest(reference)
		if err != nil {
			return v1.Descriptor{}, nil, err
		}
		mt, ok := rs.manifestIn(name, h)
		if !ok {
			return v1.Descriptor{}, nil, fmt.Errorf("%s@%s: %w", name, h, ErrManifestUnknown)
		}
		desc = v1.Descriptor{MediaType: mt, Digest: h}
	} else {
		if err := ValidTag(reference); err != nil {
			return v1.Descriptor{}, nil, err
		}
		tagged, err := rs.taggedIn(name)
		if err != nil {
			return v1.Descriptor{}, nil, err
		}
		d, ok := tagged[reference]
		if !ok || !manifestTypes[d.MediaType] {
			return v1.Descriptor{}, nil, fmt.Errorf("%s:%s: %w", name, reference, ErrManifestUnknown)
		}
		desc = v1.Descriptor{MediaType: d.MediaType, Digest: d.Digest}
	}
	raw, err := rs.layout.readManifest(desc.Digest)
	if os.IsNotExist(err) || errors.Is(err, ErrManifestTooLarge) {
		return v1.Descriptor{}, nil, fmt.Errorf("%s@%s: %w", name, desc.Digest, ErrManifestUnknown)
	}
	if err != nil {
		return v1.Descriptor{}, nil, err
	}
	desc.Size = int64(len(raw))
	return desc, raw, nil
}

// readManifest reads blob h, which should be a manifest, through a bound
// and checked against h: a file larger than MaxManifestBytes is refused,
// not read, and bytes changed on disk are a *checked.MismatchError, never
// served.
func (l *Layout) readManifest(h v1.Hash) ([]byte, error) {
	f, err := os.Open(l.blobPath(h))
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.Size() > MaxManifestBytes {
		f.Close()
		return nil, fmt.Errorf("manifest %s: %w: %d bytes, the limit is %d", h, ErrManifestTooLarge, st.Size(), MaxManifestBytes)
	}
	raw, err := checked.ReadAll(f, "manifest", h, st.Size(), MaxManifestBytes)
	if errors.Is(err, checked.ErrTooLarge) {
		return nil, fmt.Errorf("manifest %s: %w: over %d bytes", h, ErrManifestTooLarge, MaxManifestBytes)
	}
	return raw, err
}

// manifestIn returns the media type of manifest h if repository name holds
// it: pushed to it as a manifest (its _manifests record), or reached from
// its tags through manifest media types (what kiln build wrote). A layer
// or a config is never a manifest, whatever the tags lead to.
func (rs *Repositories) manifestIn(name string, h v1.Hash) (types.MediaType, bool) {
	if mt, err := os.ReadFile(rs.manifestLink(name, h)); err == nil {
		return types.MediaType(mt), manifestTypes[types.MediaType(mt)]
	}
	r, err := rs.reachable(name)
	if err != nil {
		return "", false
	}
	mt, ok := r.manifests[h]
	return mt, ok
}

// PutManifest validates raw as a manifest of repository name and stores it
// under reference, a tag or its digest. contentType is the media type the
// client declared. It returns the manifest's descriptor and its subject,
// if it has one.
func (rs *Repositories) PutManifest(name, reference string, contentType types.MediaType, raw []byte) (v1.Descriptor, *v1.Descriptor, error) {
	if err := ValidName(name); err != nil {
		return v1.Descriptor{}, nil, err
	}
	h, size := digestBytes("sha256", raw), int64(len(raw))
	tag := ""
	if strings.Contains(reference, ":") {
		want, err := ParseDigest(reference)
		if err != nil {
			return v1.Descriptor{}, nil, err
		}
		if want.Algorithm != h.Algorithm {
			h = digestBytes(want.Algorithm, raw)
		}
		if want != h {
			return v1.Descriptor{}, nil, fmt.Errorf("%w: manifest has %s, not %s", ErrDigestInvalid, h, want)
		}
	} else {
		if err := ValidTag(reference); err != nil {
			return v1.Descriptor{}, nil, err
		}
		tag = reference
	}
	// From the check of what it refers to until its record is written, gc
	// waits: it then sees the record and keeps what the manifest holds.
	defer rs.layout.sweep.shared()()
	m, mt, err := rs.validateManifest(name, contentType, raw)
	if err != nil {
		return v1.Descriptor{}, nil, err
	}
	desc := v1.Descriptor{MediaType: mt, Size: size, Digest: h}

	// What it refers to is written out of the journal first, so that a
	// layout reader following index.json finds every blob.
	if err := rs.journal.flushSync(m.refs(), true); err != nil {
		return v1.Descriptor{}, nil, err
	}
	// Blob, then link, then referrer, then tag: a crash between any two
	// leaves only what is complete visible.
	if err := rs.layout.writeBlobBytes(h, raw); err != nil {
		return v1.Descriptor{}, nil, err
	}
	if err := os.MkdirAll(filepath.Dir(rs.manifestLink(name, h)), 0o755); err != nil {
		return v1.Descriptor{}, nil, err
	}
	if err := rs.layout.writeFileAtomic(rs.manifestLink(name, h), []byte(mt)); err != nil {
		return v1.Descriptor{}, nil, err
	}
	if m.Subject != nil {
		ref := desc
		ref.ArtifactType = m.ArtifactType
		if ref.ArtifactType == "" && m.Config != nil {
			ref.ArtifactType = string(m.Config.MediaType)
		}
		ref.Annotations = m.Annotations
		b, err := json.Marshal(ref)
		if err != nil {
			return v1.Descriptor{}, nil, err
		}
		p := rs.referrerPath(name, m.Subject.hash(), h)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return v1.Descriptor{}, nil, err
		}
		if err := rs.layout.writeFileAtomic(p, b); err != nil {
			return v1.Descriptor{}, nil, err
		}
	}
	if tag != "" {
		if err := rs.layout.tag(desc, []string{name + ":" + tag}); err != nil {
			return v1.Descriptor{}, nil, err
		}
	}
	var subject *v1.Descriptor
	if m.Subject != nil {
		s := m.Subject.v1()
		subject = &s
	}
	return desc, subject, nil
}

func (rs *Repositories) referrerPath(name string, subject, h v1.Hash) string {
	return filepath.Join(rs.repoDir(name), "_referrers", subject.Hex, h.Hex)
}

// validateManifest checks raw is a manifest of a known media type whose
// config, layers or child manifests are in repository name.
func (rs *Repositories) validateManifest(name string, contentType types.MediaType, raw []byte) (manifestRefs, types.MediaType, error) {
	var m manifestRefs
	if len(raw) > MaxManifestBytes {
		return m, "", fmt.Errorf("%w: %d bytes, the limit is %d", ErrManifestTooLarge, len(raw), MaxManifestBytes)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, "", fmt.Errorf("%w: %v", ErrManifestInvalid, err)
	}
	if m.SchemaVersion != 2 {
		return m, "", fmt.Errorf("%w: schemaVersion %d, want 2", ErrManifestInvalid, m.SchemaVersion)
	}
	mt := types.MediaType(m.MediaType)
	if mt == "" {
		mt = contentType
	}
	if contentType != "" && mt != contentType {
		return m, "", fmt.Errorf("%w: body says %s, Content-Type says %s", ErrManifestInvalid, mt, contentType)
	}
	if !manifestTypes[mt] {
		return m, "", fmt.Errorf("%w: unsupported media type %q", ErrManifestInvalid, mt)
	}
	if s := m.Subject; s != nil && (s.MediaType == "" || !validDigest(s.hash()) || s.Size <= 0) {
		return m, "", fmt.Errorf("%w: the subject must be a full descriptor: mediaType, digest and size", ErrManifestInvalid)
	}
	if mt.IsIndex() {
		if m.Config != nil || m.Layers != nil {
			return m, "", fmt.Errorf("%w: an index has no config or layers", ErrManifestInvalid)
		}
		// An index's children are manifests: pushed as manifests (or
		// written by kiln build), under a manifest media type.
		for _, d := range m.Manifests {
			if !manifestTypes[d.MediaType] {
				return m, "", fmt.Errorf("%w: child %s has media type %q, not a manifest's", ErrManifestInvalid, d.hash(), d.MediaType)
			}
			got, ok := rs.manifestIn(name, d.hash())
			if !ok {
				return m, "", fmt.Errorf("%w: child %s is not a manifest of %s", ErrManifestBlobUnknown, d.hash(), name)
			}
			if got != d.MediaType {
				return m, "", fmt.Errorf("%w: child %s is a %s, not a %s", ErrManifestInvalid, d.hash(), got, d.MediaType)
			}
		}
		return m, mt, nil
	}
	if m.Config == nil || m.Manifests != nil {
		return m, "", fmt.Errorf("%w: an image manifest has a config and no manifests", ErrManifestInvalid)
	}
	for _, d := range append([]descriptor{*m.Config}, m.Layers...) {
		if !d.MediaType.IsDistributable() {
			continue
		}
		if err := rs.checkBlob(name, d.hash()); err != nil {
			return m, "", fmt.Errorf("%w: %s", ErrManifestBlobUnknown, d.hash())
		}
	}
	return m, mt, nil
}

// DeleteManifest removes reference from repository name: a tag alone, or a
// digest with every tag that points at it.
func (rs *Repositories) DeleteManifest(name, reference string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if !strings.Contains(reference, ":") {
		if err := ValidTag(reference); err != nil {
			return err
		}
		found, err := rs.untag(name, func(tag string, _ v1.Descriptor) bool { return tag == reference })
		if err == nil && !found {
			err = fmt.Errorf("%s:%s: %w", name, reference, ErrManifestUnknown)
		}
		return err
	}
	h, err := ParseDigest(reference)
	if err != nil {
		return err
	}
	if _, ok := rs.manifestIn(name, h); !ok {
		return fmt.Errorf("%s@%s: %w", name, h, ErrManifestUnknown)
	}
	if _, err := rs.untag(name, func(_ string, d v1.Descriptor) bool { return d.Digest == h }); err != nil {
		return err
	}
	if raw, err := rs.layout.readManifest(h); err == nil {
		var m manifestRefs
		if json.Unmarshal(raw, &m) == nil && m.Subject != nil {
			os.Remove(rs.referrerPath(name, m.Subject.hash(), h))
		}
	}
	if err := os.Remove(rs.manifestLink(name, h)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// untag drops the tags of repository name that drop selects, and reports
// whether there were any.
func (rs *Repositories) untag(name string, drop func(tag string, d v1.Descriptor) bool) (bool, error) {
	unlock, err := rs.layout.lock()
	if err != nil {
		return false, err
	}
	defer unlock()
	im, err := rs.layout.readIndex()
	if err != nil {
		return false, err
	}
	kept := im.Manifests[:0]
	for _, d := range im.Manifests {
		if n, t, ok := splitRefName(d.Annotations[specs.AnnotationRefName]); ok && n == name && drop(t, d) {
			continue
		}
		kept = append(kept, d)
	}
	if len(kept) == len(im.Manifests) {
		return false, nil
	}
	im.Manifests = kept
	return true, rs.layout.writeIndexLocked(im)
}

// Referrers lists the manifests of repository name whose subject is h:
// those pushed with a subject, and those in the referrers tag schema's
// index (NAME:sha256-<hex>) that the CLI writes to layouts.
func (rs *Repositories) Referrers(name string, subject v1.Hash) ([]v1.Descriptor, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	if !validDigest(subject) {
		return nil, fmt.Errorf("%w: %q", ErrDigestInvalid, subject.String())
	}
	var out []v1.Descriptor
	seen := map[v1.Hash]bool{}
	dir := filepath.Join(rs.repoDir(name), "_referrers", subject.Hex)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		var d descriptor
		if json.Unmarshal(b, &d) == nil && !seen[d.hash()] {
			seen[d.hash()] = true
			out = append(out, d.v1())
		}
	}
	if fallback, err := rs.taggedIn(name); err == nil {
		if d, ok := fallback[subject.Algorithm+"-"+subject.Hex]; ok {
			if raw, err := rs.layout.readManifest(d.Digest); err == nil {
				var idx v1.IndexManifest
				if json.Unmarshal(raw, &idx) == nil {
					for _, r := range idx.Manifests {
						if !seen[r.Digest] {
							seen[r.Digest] = true
							out = append(out, r)
						}
					}
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b v1.Descriptor) int { return strings.Compare(a.Digest.String(), b.Digest.String()) })
	return out, nil
}
