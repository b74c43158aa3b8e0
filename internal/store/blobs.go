package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// OpenBlob opens blob h of repository name for reading.
func (rs *Repositories) OpenBlob(name string, h v1.Hash) (io.ReadSeekCloser, int64, error) {
	// The journal holds only valid names and digests: a blob found there
	// needs no other check.
	if data, ok := rs.journal.get(name, h); ok {
		return memBlob{bytes.NewReader(data)}, int64(len(data)), nil
	}
	if err := rs.checkBlob(name, h); err != nil {
		return nil, 0, err
	}
	f, err := os.Open(rs.layout.blobPath(h))
	if os.IsNotExist(err) {
		return nil, 0, fmt.Errorf("%s@%s: %w", name, h, ErrBlobUnknown)
	}
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

// memBlob is a blob the journal holds, read from memory.
type memBlob struct{ *bytes.Reader }

func (memBlob) Close() error { return nil }

// StatBlob returns the size of blob h of repository name, for a client
// asking whether to push it (a HEAD): a blob it finds is protected from gc
// from this answer until a manifest holds it (see protections).
func (rs *Repositories) StatBlob(name string, h v1.Hash) (int64, error) {
	defer rs.layout.sweep.shared()()
	if data, ok := rs.journal.get(name, h); ok {
		rs.protected.add(h)
		return int64(len(data)), nil
	}
	if err := rs.checkBlob(name, h); err != nil {
		return 0, err
	}
	fi, err := os.Stat(rs.layout.blobPath(h))
	if os.IsNotExist(err) {
		return 0, fmt.Errorf("%s@%s: %w", name, h, ErrBlobUnknown)
	}
	if err != nil {
		return 0, err
	}
	rs.protected.add(h)
	return fi.Size(), nil
}

// checkBlob fails unless h is a blob of repository name: linked to it by a
// push or a mount, or reachable from one of its tags.
func (rs *Repositories) checkBlob(name string, h v1.Hash) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if !validDigest(h) {
		return fmt.Errorf("%w: %q", ErrDigestInvalid, h.String())
	}
	if _, ok := rs.journal.get(name, h); ok {
		return nil
	}
	if exists(rs.blobLink(name, h)) || exists(rs.manifestLink(name, h)) {
		return nil
	}
	if r, err := rs.reachable(name); err == nil && (r.blobs[h] || r.manifests[h] != "") {
		return nil
	}
	return fmt.Errorf("%s@%s: %w", name, h, ErrBlobUnknown)
}

// MountBlob makes blob h of repository from a blob of repository to.
func (rs *Repositories) MountBlob(from, to string, h v1.Hash) error {
	defer rs.layout.sweep.shared()()
	if err := rs.checkBlob(from, h); err != nil {
		return err
	}
	// Synced too: the new link shares the file, which a recovery would
	// replace rather than repair.
	if err := rs.journal.flushSync([]v1.Hash{h}, true); err != nil {
		return err
	}
	if err := ValidName(to); err != nil {
		return err
	}
	return rs.linkBlobDurably(to, h)
}

// FindBlob returns a repository that holds blob h through a push or a
// mount, among those readable allows.
func (rs *Repositories) FindBlob(h v1.Hash, readable func(name string) bool) (string, bool) {
	if !validDigest(h) {
		return "", false
	}
	for _, n := range rs.journal.repos(h) {
		if readable(n) {
			return n, true
		}
	}
	names, err := rs.Catalog()
	if err != nil {
		return "", false
	}
	for _, n := range names {
		if readable(n) && exists(rs.blobLink(n, h)) {
			return n, true
		}
	}
	return "", false
}

// DeleteBlob removes blob h from repository name. The bytes stay until gc
// finds nothing else referring to them.
func (rs *Repositories) DeleteBlob(name string, h v1.Hash) error {
	if err := ValidName(name); err != nil {
		return err
	}
	defer rs.layout.sweep.shared()()
	if validDigest(h) {
		if err := rs.journal.flush([]v1.Hash{h}); err != nil {
			return err
		}
		if exists(rs.blobLink(name, h)) {
			if err := rs.journal.forget(name, h); err != nil {
				return err
			}
		}
	}
	err := os.Remove(rs.blobLink(name, h))
	if os.IsNotExist(err) {
		return fmt.Errorf("%s@%s: %w", name, h, ErrBlobUnknown)
	}
	return err
}

// reach is what the tags of a repository lead to: the manifests, walked
// from index.json through manifest media types only, and the blobs
// (configs and layers) those manifests name.
type reach struct {
	manifests map[v1.Hash]types.MediaType
	blobs     map[v1.Hash]bool
}

func newReach() reach {
	return reach{manifests: map[v1.Hash]types.MediaType{}, blobs: map[v1.Hash]bool{}}
}

// reachable returns what the tags of repository name lead to, which is
// how content the CLI wrote (index.json only) is found. The walk reads
// every tagged manifest, so its result is kept until index.json changes
// (what a manifest refers to never does).
func (rs *Repositories) reachable(name string) (reach, error) {
	im, err := rs.layout.sharedIndex()
	if err != nil {
		return reach{}, err
	}
	rs.reachMu.Lock()
	if rs.reachIndex != im {
		rs.reachIndex, rs.reach = im, map[string]reach{}
	}
	r, ok := rs.reach[name]
	rs.reachMu.Unlock()
	if ok {
		return r, nil
	}
	tagged, err := rs.taggedIn(name)
	if err != nil {
		return reach{}, err
	}
	r = newReach()
	for _, d := range tagged {
		rs.walk(d.Digest, d.MediaType, r)
	}
	rs.reachMu.Lock()
	if rs.reachIndex == im {
		rs.reach[name] = r
	}
	rs.reachMu.Unlock()
	return r, nil
}

// walk adds manifest h, of media type mt, and everything it refers to, to
// r. Only a descriptor of a manifest media type is followed, and only a
// blob that parses as a manifest of that type counts as one: the digest of
// a layer or a config never becomes a manifest, however it is named.
// Unreadable, oversized or malformed manifests end the walk there.
func (rs *Repositories) walk(h v1.Hash, mt types.MediaType, r reach) {
	if _, seen := r.manifests[h]; seen || !manifestTypes[mt] || !validDigest(h) {
		return
	}
	raw, err := rs.layout.readManifest(h)
	if err != nil {
		return
	}
	var m manifestRefs
	if json.Unmarshal(raw, &m) != nil || m.SchemaVersion != 2 || (m.MediaType != "" && types.MediaType(m.MediaType) != mt) {
		return
	}
	r.manifests[h] = mt
	if m.Config != nil {
		r.blobs[m.Config.hash()] = true
	}
	for _, d := range m.Layers {
		r.blobs[d.hash()] = true
	}
	for _, d := range m.Manifests {
		rs.walk(d.hash(), d.MediaType, r)
	}
}

// refs are the digests m refers to.
func (m manifestRefs) refs() []v1.Hash {
	var hs []v1.Hash
	if m.Config != nil {
		hs = append(hs, m.Config.hash())
	}
	for _, d := range append(append([]descriptor{}, m.Layers...), m.Manifests...) {
		hs = append(hs, d.hash())
	}
	return hs
}

// manifestRefs is what an image manifest or an index refers to.
type manifestRefs struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *descriptor       `json:"config"`
	Layers        []descriptor      `json:"layers"`
	Manifests     []descriptor      `json:"manifests"`
	Subject       *descriptor       `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
}
