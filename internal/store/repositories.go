package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Repositories is the registry's storage: the layout served as
// repositories, on distribution's model of a blob store (the layout's
// blobs/), a linked per-repository store, a manifest store and an upload
// store, with the journal and gc beside them. Tags stay in index.json as
// "NAME:TAG" ref names, so the CLI and the registry share them; what a
// repository holds beyond its tags is recorded beside the layout:
//
//	DIR/                                   the Layout: oci-layout, index.json, blobs/
//	├── repositories/NAME/
//	│   ├── _blobs/<hex>                   linked store: a hard link, blob <hex> is in NAME
//	│   ├── _manifests/<hex>               manifest store: the media type of manifest <hex>
//	│   └── _referrers/<subject-hex>/<hex> manifest store: the descriptor JSON of a referrer
//	├── uploads/<id>                       upload store: a blob being received
//	└── journal                            small pushed blobs not yet files (OpenJournal)
//
// The methods say their room: …Blob (the linked store: blobs of one
// repository), …Manifest, Tags and Referrers (the manifest store),
// NewUpload and RemoveUploads (the upload store), Catalog, GC and the
// journal's Open/Close.
//
// Path components of a repository name start with [a-z0-9], so the
// underscore directories can never collide with a nested repository.
// Content written by the CLI (index.json only) is found by walking the
// repository's tags when a link is missing. A manifest is what was pushed
// as one (its _manifests record) or what that walk reaches from index.json
// through manifest media types alone (an image manifest, an index and
// their children): a layer or a config is never served as a manifest, and
// every manifest is read through MaxManifestBytes.
type Repositories struct {
	layout *Layout

	journal   *journal    // small blobs not yet files; nil unless OpenJournal
	protected protections // blobs answered to clients, not yet in a manifest

	reachMu    sync.Mutex
	reachIndex *v1.IndexManifest // the index the sets below were walked from
	reach      map[string]reach  // by repository: what its tags lead to
}

// Repositories returns the registry's storage over the layout: one per
// Layout, so that every request of a process shares its journal and its
// protections from gc.
func (l *Layout) Repositories() *Repositories {
	l.reposOnce.Do(func() { l.repos = &Repositories{layout: l} })
	return l.repos
}

// Errors a registry maps onto the distribution spec's codes.
var (
	ErrNameInvalid         = errors.New("invalid repository name")
	ErrNameUnknown         = errors.New("repository not known")
	ErrTagInvalid          = errors.New("invalid tag")
	ErrDigestInvalid       = errors.New("invalid digest")
	ErrBlobUnknown         = errors.New("blob unknown to repository")
	ErrManifestUnknown     = errors.New("manifest unknown to repository")
	ErrManifestInvalid     = errors.New("manifest invalid")
	ErrManifestBlobUnknown = errors.New("manifest references a blob unknown to the repository")
	ErrManifestTooLarge    = errors.New("manifest too large")
	ErrUploadUnknown       = errors.New("blob upload unknown")
	ErrUploadInvalid       = errors.New("blob upload invalid")
)

// The distribution spec's grammar for repository names and tags, compiled
// on first use: every kiln command links the store, few validate names.
var (
	nameRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	})
	tagRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`) })
)

// maxNameLen bounds a repository name (with the host part, 255 in all).
const maxNameLen = 255

// ValidName reports whether name is a repository name of the distribution
// spec; only such names become paths under the layout.
func ValidName(name string) error {
	if len(name) > maxNameLen || !nameRE().MatchString(name) {
		return fmt.Errorf("%w: %q (lower-case letters, digits and separators . _ __ - /)", ErrNameInvalid, name)
	}
	return nil
}

// ValidTag reports whether tag is a tag of the distribution spec.
func ValidTag(tag string) error {
	if !tagRE().MatchString(tag) {
		return fmt.Errorf("%w: %q (up to 128 of [A-Za-z0-9._-], not starting with . or -)", ErrTagInvalid, tag)
	}
	return nil
}

func (rs *Repositories) repoDir(name string) string {
	return filepath.Join(rs.layout.dir, "repositories", filepath.FromSlash(name))
}

func (rs *Repositories) blobLink(name string, h v1.Hash) string {
	return filepath.Join(rs.repoDir(name), "_blobs", h.Hex)
}

func (rs *Repositories) manifestLink(name string, h v1.Hash) string {
	return filepath.Join(rs.repoDir(name), "_manifests", h.Hex)
}

// linkBlob records that repository name holds blob h with a hard link to
// the blob: made in one step, so it is either there or not, and with no new
// inode, which costs a file system far more than a directory entry.
func (rs *Repositories) linkBlob(name string, h v1.Hash) error {
	path := rs.blobLink(name, h)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.Link(rs.layout.blobPath(h), path); err != nil && !os.IsExist(err) {
		return fmt.Errorf("linking blob %s into %s: %w", h, name, err)
	}
	return nil
}

// linkBlobDurably is linkBlob made durable before it returns: an
// acknowledged push or mount must survive a crash of the machine, and gc
// (see protections). Writers waiting at once share the directory's fsync.
// The caller holds the sweep lock shared.
func (rs *Repositories) linkBlobDurably(name string, h v1.Hash) error {
	if err := rs.linkBlob(name, h); err != nil {
		return err
	}
	rs.protected.add(h)
	return rs.layout.syncer(filepath.Dir(rs.blobLink(name, h))).Sync()
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// splitRefName splits "NAME:TAG" at the colon after the last slash.
func splitRefName(ref string) (name, tag string, ok bool) {
	i := strings.LastIndex(ref, ":")
	if i < 0 || i < strings.LastIndex(ref, "/") {
		return "", "", false
	}
	return ref[:i], ref[i+1:], true
}

// taggedIn returns the descriptors index.json names NAME:<tag>, by tag.
func (rs *Repositories) taggedIn(name string) (map[string]v1.Descriptor, error) {
	im, err := rs.layout.sharedIndex()
	if err != nil {
		return nil, err
	}
	tags := map[string]v1.Descriptor{}
	for _, d := range im.Manifests {
		if n, t, ok := splitRefName(d.Annotations[specs.AnnotationRefName]); ok && n == name {
			tags[t] = d
		}
	}
	return tags, nil
}

// Tags lists the tags of repository name, sorted. A repository that has
// neither tags nor manifests is ErrNameUnknown.
func (rs *Repositories) Tags(name string) ([]string, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	tagged, err := rs.taggedIn(name)
	if err != nil {
		return nil, err
	}
	if len(tagged) == 0 && !exists(filepath.Join(rs.repoDir(name), "_manifests")) {
		return nil, fmt.Errorf("%s: %w", name, ErrNameUnknown)
	}
	tags := make([]string, 0, len(tagged))
	for t := range tagged {
		tags = append(tags, t)
	}
	slices.Sort(tags)
	return tags, nil
}

// Repositories lists every repository with a tag or a stored manifest or
// blob, sorted.
func (rs *Repositories) Catalog() ([]string, error) {
	seen := map[string]bool{}
	im, err := rs.layout.readIndex()
	if err != nil {
		return nil, err
	}
	for _, d := range im.Manifests {
		if n, _, ok := splitRefName(d.Annotations[specs.AnnotationRefName]); ok && ValidName(n) == nil {
			seen[n] = true
		}
	}
	root := rs.root()
	err = rs.walkRoot(func(path string, d os.DirEntry) error {
		if !d.IsDir() || !strings.HasPrefix(d.Name(), "_") {
			return nil
		}
		if rel, err := filepath.Rel(root, filepath.Dir(path)); err == nil {
			if n := filepath.ToSlash(rel); ValidName(n) == nil {
				seen[n] = true
			}
		}
		return filepath.SkipDir
	})
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

// root is the directory of the repositories' links.
func (rs *Repositories) root() string { return filepath.Join(rs.layout.dir, "repositories") }

// walkRoot walks the repositories' tree (none yet is an empty walk).
func (rs *Repositories) walkRoot(fn func(path string, d os.DirEntry) error) error {
	return filepath.WalkDir(rs.root(), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		return fn(path, d)
	})
}
